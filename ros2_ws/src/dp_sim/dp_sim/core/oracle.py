"""Oracle baseline: action chunks from the scripted expert's plan on the true object poses (ROS-free).

The ceiling that perception should approach (issue 13): the oracle is *given* the cube and tray
poses (the simulator's ``sim/episode_status``) instead of seeing them, and runs the same scripted
expert that wrote the demonstrations. It replaces only the policy: its chunks have the policy's
format and timing (``dt`` between rows, ``rows`` rows from "now", a fresh chunk per policy tick)
and go through the same control_node, so the comparison with learned policies differs only in
where the action chunk comes from::

    tick k (every 1/rate s of sim time, stamp = newest joint_states)
      row 0      = expert.act(elapsed, q_measured)      the expert itself advances (waits on q)
      row 1..R-1 = a look-ahead copy acting dt at a time  (phase waits assume perfect tracking)

This is exactly what a learned policy is trained to output: the demonstration's action at "now"
and the following rows of the chunk.
"""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np

from dp_sim.core.pick_expert import make_expert
from dp_sim.core.robot import GRIPPER_JOINT, JOINT_NAMES
from dp_sim.core.tasks import Layout, get_task

_FIXED = ("ik", "cfg", "rot_down", "wp", "goal", "place")  # not mutated while acting


def layout_from_status(status: dict) -> Layout:
    """The episode's true object layout from a ``sim/episode_status`` dict (SimScene.task_state)."""
    try:
        cubes = np.asarray(status["cubes"], float).reshape(-1, 4)
        size = float(status.get("cube_size", 2.0 * cubes[0, 2]))  # resting cube: centre z = size / 2
        trays = np.asarray(status.get("trays", []), float).reshape(-1, 2)
    except (KeyError, ValueError, IndexError) as exc:
        raise ValueError(f"episode status lacks the object poses (cubes, trays): {exc}") from exc
    return Layout(cubes, size, np.ones(4), trays, None)


class OraclePlanner:
    """Scripted-expert chunks from true poses.

    Usage::

        oracle = OraclePlanner("place")
        oracle.start(status, q_measured)              # at the start of every episode
        rows = oracle.chunk(q_measured, elapsed_s)    # (rows, 7 | 8) absolute targets from "now"
    """

    def __init__(self, task: str, dt: float = 0.1, rows: int = 15, kin=None) -> None:
        if not dt > 0 or rows < 1:
            raise ValueError(f"oracle: dt must be > 0 s and rows >= 1. Got dt={dt}, rows={rows}")
        self.spec = get_task(task)
        self.dt = float(dt)
        self.rows = int(rows)
        self.expert = make_expert(task, kin=kin)
        self.joint_names = list(JOINT_NAMES) + ([GRIPPER_JOINT] if self.spec.gripper else [])
        self.seed: int | None = None

    def start(self, status: dict, q: np.ndarray) -> None:
        """Plan a new episode from its status (seed + true poses) and the measured joints q (7,)."""
        lay = layout_from_status(status)
        if len(lay.trays) != self.spec.num_trays or len(lay.cubes) < 1:
            raise ValueError(
                f"task {self.spec.name} needs >= 1 cube and {self.spec.num_trays} tray pose(s) in the "
                f"episode status. Got {len(lay.cubes)} cube(s), {len(lay.trays)} tray(s)"
            )
        self.seed = int(status["seed"])
        q = np.asarray(q, float)[:7].copy()
        if self.spec.gripper:
            self.expert.start(SimpleNamespace(layout=lay, q=q, seed=self.seed))
        else:  # reach: the cubes' top centres
            goals = lay.cubes[:, :3] + np.array([0.0, 0.0, lay.cube_size / 2])
            self.expert.reset(q, goals, self.seed)

    def _act(self, dt: float, q_meas: np.ndarray | None) -> np.ndarray:
        e = self.expert
        return np.asarray(e.act(dt, q_meas) if e.action_dim == 8 else e.act(dt), float)

    def chunk(self, q_meas: np.ndarray, elapsed_s: float) -> np.ndarray:
        """Advance the expert by ``elapsed_s`` of measured time; (rows, action_dim) float32 from "now"."""
        if self.seed is None:
            raise RuntimeError("OraclePlanner.chunk before start()")
        out = [self._act(max(float(elapsed_s), 1e-3), np.asarray(q_meas, float)[:7])]
        saved = {k: (v.copy() if isinstance(v, np.ndarray) else v) for k, v in vars(self.expert).items()
                 if k not in _FIXED}  # fmt: skip
        for _ in range(self.rows - 1):
            out.append(self._act(self.dt, None))
        vars(self.expert).update(saved)
        return np.asarray(out, np.float32)
