"""Builds the stand-in interface packages of ``fakes/`` (control_msgs, moveit_msgs) for tests.

Neither package has a PyPI wheel. Only the packages that do not import here are built (where the real
one is installed, a robot or the Docker image, the test uses it), with colcon, into
``ros2_ws/build/test_fakes`` (cached by content: one build per change of the fakes), and
:func:`fake_interfaces_env` returns an environment whose subprocesses import them.
"""

from __future__ import annotations

import fcntl
import hashlib
import importlib.util
import os
import pathlib
import shutil
import subprocess
import sys

HERE = pathlib.Path(__file__).resolve().parent
ROOT = HERE.parents[3]
FAKES = HERE / "fakes"
#: The stand-in interface packages (directories of ``fakes/``).
PACKAGES = ("control_msgs", "moveit_msgs")


def missing_packages(packages=PACKAGES) -> list[str]:
    """The packages of ``packages`` that do not import here."""
    return [p for p in packages if importlib.util.find_spec(p) is None]


def _build(packages: list[str]) -> pathlib.Path:
    """Builds (once per content) the stand-ins of ``packages``; returns the install base."""
    digest = hashlib.sha256()
    for pkg in packages:
        for path in sorted((FAKES / pkg).rglob("*")):
            if path.is_file():
                digest.update(str(path.relative_to(FAKES)).encode() + path.read_bytes())
    base = ROOT / "ros2_ws" / "build" / "test_fakes" / f"{'+'.join(packages)}-{digest.hexdigest()[:12]}"
    install = base / "install"
    base.mkdir(parents=True, exist_ok=True)
    with open(base / ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not all((install / p / "share" / p / "package.xml").exists() for p in packages):
            shutil.rmtree(base / "src", ignore_errors=True)
            for pkg in packages:
                shutil.copytree(FAKES / pkg, base / "src" / pkg)
            cmd = [sys.executable, "-m", "colcon", "--log-base", "log", "build", "--base-paths", "src",
                   "--build-base", "build", "--install-base", "install", "--cmake-args",
                   f"-DPython3_EXECUTABLE={sys.executable}", "-DBUILD_TESTING=OFF"]  # fmt: skip
            out = subprocess.run(cmd, cwd=base, capture_output=True, text=True, timeout=1800)
            if out.returncode != 0:
                raise RuntimeError(f"building the stand-ins {packages} failed:\n{out.stdout}\n{out.stderr}")
    return install


def _prepend(env: dict, key: str, value: pathlib.Path) -> None:
    env[key] = f"{value}{os.pathsep}{env[key]}" if env.get(key) else str(value)


def fake_interfaces_env(packages=PACKAGES) -> dict:
    """A copy of ``os.environ`` in which every package of ``packages`` imports (real or stand-in)."""
    env = dict(os.environ)
    missing = missing_packages(packages)
    if not missing:
        return env
    install = _build(missing)
    pyver = f"python{sys.version_info.major}.{sys.version_info.minor}"
    for pkg in missing:
        prefix = install / pkg
        _prepend(env, "AMENT_PREFIX_PATH", prefix)
        _prepend(env, "LD_LIBRARY_PATH", prefix / "lib")
        _prepend(env, "PYTHONPATH", prefix / "lib" / pyver / "site-packages")
    return env
