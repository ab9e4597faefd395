"""The set-up script is idempotent and leaves the wheels' CMake include paths resolvable."""

from __future__ import annotations

import os
import pathlib
import re
import subprocess
import sys

ROOT = pathlib.Path(__file__).resolve().parents[1]


def test_second_setup_is_a_no_op():
    out = subprocess.run(
        ["bash", str(ROOT / "scripts" / "setup.sh")], capture_output=True, text=True, timeout=600, cwd=ROOT
    )
    assert out.returncode == 0, out.stderr
    assert "workspace up to date" in out.stderr, out.stderr
    assert "installing requirements" not in out.stderr


def test_cmake_include_paths_resolve():
    venv = pathlib.Path(sys.prefix)
    pattern = re.compile(r"(/[^;\"\s)]*?(?:/include/python3\.\d+|/numpy/(?:_core|core)/include))(?=[;\"\s)])")
    unresolved = set()
    files = list((venv / "share").rglob("*__rosidl_generator_pyExport.cmake"))
    assert files, f"no rosidl python export files under {venv}/share: is the venv the project venv?"
    for f in files:
        for path in pattern.findall(f.read_text(errors="replace")):
            if not os.path.isdir(path):
                unresolved.add(path)
    assert not unresolved, f"CMake files name include paths that do not exist here: {sorted(unresolved)}"


def test_env_sh_gives_nodes_and_packages():
    code = "import rclpy, dp_msgs.msg, dp_common.core; print('ok')"
    out = subprocess.run(
        ["bash", "-c", f"source '{ROOT}/env.sh' >/dev/null && python -c \"{code}\""],
        capture_output=True,
        text=True,
        timeout=120,
        cwd="/",
    )
    assert out.returncode == 0 and out.stdout.strip() == "ok", out.stderr
