"""control_node's ``moveit`` backend against the current planning scene, in a real rclpy graph
(moveit_scene_graph.py), with the moveit_py fake of ``fakes/moveit_py`` first on PYTHONPATH of a
subprocess (so that this process never sees a ``moveit`` module: the refusal without moveit_py is
tested in test_control_node.py)."""

from __future__ import annotations

import os
import pathlib
import subprocess
import sys

HERE = pathlib.Path(__file__).resolve().parent
ROOT = HERE.parents[3]


def test_moveit_backend_against_the_current_scene():
    env = dict(os.environ)
    fake = str(HERE / "fakes" / "moveit_py")
    env["PYTHONPATH"] = f"{fake}{os.pathsep}{env['PYTHONPATH']}" if env.get("PYTHONPATH") else fake
    out = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-x", "-p", "no:cacheprovider",
         str(HERE / "moveit_scene_graph.py")],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert out.returncode == 0, out.stdout[-8000:] + out.stderr[-3000:]
    assert "2 passed" in out.stdout
