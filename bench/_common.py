"""Helpers shared by the benchmarks: the packages' source paths, child-process environments, stats.

The benchmarks run from a source checkout (``python bench/bench_x.py``), so they put the packages'
source folders on ``sys.path`` themselves (:func:`use_sources`) and hand them to the processes
they start (:func:`ros_env`).
"""

from __future__ import annotations

import os
import pathlib
import platform
import subprocess
import sys

ROOT = pathlib.Path(__file__).resolve().parents[1]
SRC = ROOT / "ros2_ws" / "src"


def use_sources(*pkgs: str) -> None:
    """Put ``ros2_ws/src/<pkg>`` of each package first on ``sys.path`` (the last one first)."""
    for pkg in pkgs:
        sys.path.insert(0, str(SRC / pkg))


def with_pythonpath(env: dict, pkgs: tuple[str, ...] | list[str]) -> dict:
    """``env`` with the packages' source folders prepended to PYTHONPATH (for child processes)."""
    env["PYTHONPATH"] = os.pathsep.join([str(SRC / p) for p in pkgs] + [env.get("PYTHONPATH", "")])
    return env


def ros_env(domain: int, pkgs: tuple[str, ...] | list[str] = ()) -> dict:
    """This process's environment for a ROS child: its own domain, localhost discovery, Fast DDS.

    ``RMW_IMPLEMENTATION`` is kept when set; ``pkgs`` are prepended to PYTHONPATH.
    """
    env = dict(os.environ)
    env["ROS_DOMAIN_ID"] = str(domain)
    env["ROS_AUTOMATIC_DISCOVERY_RANGE"] = "LOCALHOST"
    env.setdefault("RMW_IMPLEMENTATION", "rmw_fastrtps_cpp")
    return with_pythonpath(env, pkgs) if pkgs else env


def cpu_model() -> str:
    """The CPU model name (from /proc/cpuinfo), else the platform's processor string."""
    try:
        for line in pathlib.Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown CPU"


def pct(values, q) -> float:
    """The ``q``-th percentile of ``values`` (nan when empty)."""
    import numpy as np

    return float(np.percentile(np.asarray(values, dtype=float), q)) if len(values) else float("nan")


def stop_process(proc: subprocess.Popen, timeout_s: float = 10.0) -> None:
    """Terminate a child process, killing it when it does not exit within ``timeout_s``."""
    if proc.poll() is None:
        proc.terminate()
    try:
        proc.wait(timeout=timeout_s)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
