"""The folders tell the truth: every ``core/`` is ROS-free, and the control process never loads torch.

- For each package, a fresh interpreter imports EVERY module under ``<pkg>/core/`` and reports any
  ROS or message module that came in (rclpy, ``*_msgs`` / ``*_srvs``, ``*.msg`` / ``*.srv``,
  rosbags, builtin_interfaces, rcl_interfaces), with the chain of modules that imported it.
- control_node is started as the launcher starts it (robot.launch.py's spec, its own process) and
  driven through a chunk; its memory map must then hold no torch library.
"""

from __future__ import annotations

import json
import os
import pathlib
import subprocess
import sys
import time

import numpy as np
import pytest

ROOT = pathlib.Path(__file__).resolve().parents[1]
SRC = ROOT / "ros2_ws" / "src"
PY_PACKAGES = sorted(p.name for p in SRC.iterdir() if (p / "setup.py").exists())
CORE_PACKAGES = sorted(p for p in PY_PACKAGES if (SRC / p / p / "core" / "__init__.py").exists())

# Runs in a fresh interpreter: imports every module of <pkg>.core and prints, as JSON, each
# forbidden module that came in (first arrival per top-level package) with its import chain.
_PROBE = r"""
import importlib, importlib.util, json, pathlib, sys, traceback

PKG = sys.argv[1]
TOPS = {"rclpy", "rosbags", "builtin_interfaces", "rcl_interfaces", "rosidl_runtime_py"}


def forbidden(name):
    parts = name.split(".")
    return (parts[0] in TOPS or parts[0].endswith(("_msgs", "_srvs"))
            or "msg" in parts[1:] or "srv" in parts[1:])


current = [None]
found = {}


class Spy:
    # A meta-path finder that never finds anything: it only watches what gets imported.
    def find_spec(self, name, path=None, target=None):
        top = name.split(".")[0]
        if forbidden(name) and top not in found:
            chain, f = [], sys._getframe(1)
            while f is not None:
                mod = f.f_globals.get("__name__") if f.f_code.co_name == "<module>" else None
                if mod and mod != "__main__" and (not chain or chain[-1] != mod):
                    chain.append(mod)
                f = f.f_back
            found[top] = {"core_module": current[0], "chain": [*reversed(chain), name]}
        return None


sys.meta_path.insert(0, Spy())
direct = {}  # core module -> forbidden modules its own import statements name (cached or not)
_import = __builtins__.__import__


def spy_import(name, globals=None, locals=None, fromlist=(), level=0):
    importer = (globals or {}).get("__name__", "")
    if level == 0 and forbidden(name) and importer.startswith(PKG + ".core"):
        direct.setdefault(importer, []).append(name)
    return _import(name, globals, locals, fromlist, level)


__builtins__.__import__ = spy_import
core_dir = pathlib.Path(importlib.util.find_spec(PKG + ".core").submodule_search_locations[0])
modules = sorted(
    ".".join((PKG, "core", *p.relative_to(core_dir).with_suffix("").parts)).removesuffix(".__init__")
    for p in core_dir.rglob("*.py")
)
errors = {}
for m in modules:
    current[0] = m
    try:
        importlib.import_module(m)
    except Exception:
        errors[m] = traceback.format_exc(limit=3)
left = sorted(m for m in sys.modules if forbidden(m) and m.split(".")[0] not in found)
print(json.dumps({"modules": modules, "found": found, "direct": direct, "untraced": left, "errors": errors}))
"""


def _env() -> dict:
    """The test's environment (venv, ROS overlay: rclpy is importable) with every package's source first."""
    paths = [str(SRC / p) for p in PY_PACKAGES]
    return dict(os.environ, PYTHONPATH=os.pathsep.join([*paths, os.environ.get("PYTHONPATH", "")]))


@pytest.mark.parametrize("pkg", CORE_PACKAGES)
def test_core_imports_no_ros(pkg):
    """Importing every module under <pkg>/core pulls in no rclpy, message, rosbags or interface module."""
    out = subprocess.run(
        [sys.executable, "-c", _PROBE, pkg], capture_output=True, text=True, env=_env(), timeout=300
    )
    assert out.returncode == 0, out.stderr[-3000:]
    report = json.loads(out.stdout.strip().splitlines()[-1])
    assert len(report["modules"]) > 1, f"{pkg}.core: found only {report['modules']}"
    assert not report["errors"], f"{pkg}.core modules fail to import: {report['errors']}"
    problems = [
        f"{top} (first imported while importing {hit['core_module']}: {' -> '.join(hit['chain'])})"
        for top, hit in sorted(report["found"].items())
    ]
    problems += [f"{m} (import chain not traced)" for m in report["untraced"]]
    problems += [
        f"{importer} imports {', '.join(sorted(set(names)))} itself"
        for importer, names in sorted(report["direct"].items())
    ]
    assert not problems, f"{pkg}.core imports ROS / message / bag modules:\n  " + "\n  ".join(problems)


def test_probe_names_the_offending_chain(tmp_path):
    """The probe itself: a core that imports rclpy through a helper module is caught and named."""
    core = tmp_path / "fake_pkg" / "core"
    core.mkdir(parents=True)
    (tmp_path / "fake_pkg" / "__init__.py").write_text("")
    (core / "__init__.py").write_text("")
    (core / "clean.py").write_text("import math\n")
    (core / "dirty.py").write_text("from fake_pkg import helper\n")
    (tmp_path / "fake_pkg" / "helper.py").write_text("import rclpy.qos\n")
    env = _env()
    env["PYTHONPATH"] = os.pathsep.join([str(tmp_path), env["PYTHONPATH"]])
    out = subprocess.run(
        [sys.executable, "-c", _PROBE, "fake_pkg"], capture_output=True, text=True, env=env, timeout=120
    )
    assert out.returncode == 0, out.stderr[-3000:]
    report = json.loads(out.stdout.strip().splitlines()[-1])
    assert report["modules"] == ["fake_pkg.core", "fake_pkg.core.clean", "fake_pkg.core.dirty"]
    hit = report["found"]["rclpy"]
    assert hit["core_module"] == "fake_pkg.core.dirty"
    assert hit["chain"][:3] == ["fake_pkg.core.dirty", "fake_pkg.helper", "rclpy"]
    assert report["direct"] == {}  # the helper, outside core, names rclpy; the core modules do not


def _mapped_files(pid: int) -> set[str]:
    with open(f"/proc/{pid}/maps") as f:
        return {line.split(None, 5)[5].strip() for line in f if len(line.split(None, 5)) == 6}


@pytest.mark.skipif(not pathlib.Path("/proc/self/maps").exists(), reason="needs Linux /proc")
def test_control_node_process_never_loads_torch(rclpy_context):
    """control_node, started as the launcher starts it and following a chunk, has no torch mapped."""
    import rclpy
    from rclpy.executors import SingleThreadedExecutor
    from sensor_msgs.msg import JointState
    from trajectory_msgs.msg import JointTrajectory

    from dp_common.launcher import ProcessRunner, load_launch_file, parse_launch_args
    from dp_common.msgs.chunk import build_chunk
    from dp_common.msgs.stamp import now_ns
    from dp_common.qos import chunk_qos, reliable_qos
    from dp_common.testing import spin_until
    from dp_control.core import PANDA_JOINTS
    from dp_msgs.msg import ActionChunk

    module = load_launch_file(ROOT / "launch" / "robot.launch.py")
    args = parse_launch_args(module.ARGUMENTS, ["checkpoint:=/unused", "autostart:=true"])
    specs = [s for s in module.node_specs(args) if s.executable == "control_node"]
    assert len(specs) == 1
    q0 = np.array([0.0, -0.6, 0.0, -2.2, 0.0, 1.6, 0.8])
    node = rclpy.create_node("torch_probe", context=rclpy_context)
    executor = SingleThreadedExecutor(context=rclpy_context)
    executor.add_node(node)
    commands: list = []
    node.create_subscription(
        JointTrajectory, "joint_trajectory_controller/joint_trajectory", commands.append, reliable_qos(10)
    )
    js_pub = node.create_publisher(JointState, "joint_states", reliable_qos(50))
    chunk_pub = node.create_publisher(ActionChunk, "dp/action_chunk", chunk_qos())
    last_js = [0.0]

    def feed() -> None:  # joint states at ~50 Hz while spinning
        if time.monotonic() - last_js[0] > 0.02:
            js_pub.publish(JointState(name=list(PANDA_JOINTS), position=q0.tolist()))
            last_js[0] = time.monotonic()

    def moved() -> bool:
        feed()
        return any(abs(c.points[0].positions[0] - q0[0]) > 1e-3 for c in commands if c.points)

    try:
        with ProcessRunner(specs) as runner:
            pid = runner.procs["control_node"].pid

            def commanding() -> bool:
                feed()
                assert not runner.dead(), f"control_node exited: {runner.dead()}"
                return bool(commands)

            assert spin_until(executor, commanding, timeout_s=30.0), "control_node sent no command"
            deadline, chunk_id = time.monotonic() + 15.0, 0
            while not moved() and time.monotonic() < deadline:  # a chunk moving joint 1, every 0.2 s
                dt, chunk_id = 0.1, chunk_id + 1
                rows = q0 + np.outer(np.arange(16) * dt, [0.3, 0, 0, 0, 0, 0, 0])
                chunk_pub.publish(build_chunk(now_ns(node), rows, PANDA_JOINTS, dt, chunk_id=chunk_id))
                spin_until(executor, moved, timeout_s=0.2)
            assert moved(), "control_node did not follow the chunk"
            files = _mapped_files(pid)
    finally:
        executor.shutdown()
        node.destroy_node()
    assert any("_rclpy_pybind11" in f for f in files), "the probe does not see the node's libraries"
    torch_files = sorted(f for f in files if "/torch/" in f or "libtorch" in f)
    assert not torch_files, f"control_node's process loaded torch: {torch_files[:5]}"
