"""Scripted expert for the reach task: Cartesian approach-then-descend with pinocchio IK (ROS-free).

Every control step (dt) the expert moves a Cartesian set-point of the TCP at most
`speed_mps * dt` toward its current waypoint (first `approach_height_m` above the cube top, then
`touch_offset_m` above it), keeps the gripper pointing down at the home orientation, and solves
damped-least-squares IK warm-started from its previous command. Its output is the absolute joint
target for the next step, i.e. exactly what a policy must learn to produce.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

import numpy as np

from dp_sim.core.robot import HOME_Q, PandaKinematics, load_panda

logger = logging.getLogger(__name__)


@dataclass
class ExpertConfig:
    """Parameters of the scripted expert (validated in __post_init__)."""

    speed_mps: float = field(default=0.3, metadata={"help": "Cartesian TCP speed (m/s)"})
    approach_height_m: float = field(
        default=0.08, metadata={"help": "height above the cube top of the approach point (m)"}
    )
    touch_offset_m: float = field(default=0.005, metadata={"help": "final TCP height above the cube top (m)"})
    waypoint_tol_m: float = field(
        default=0.01, metadata={"help": "distance at which a waypoint counts as reached (m)"}
    )
    ik_iters: int = field(default=50, metadata={"help": "max IK iterations per step"})
    ik_damping: float = field(default=1e-3, metadata={"help": "IK damping (DLS lambda)"})
    ik_tol: float = field(default=1e-5, metadata={"help": "IK convergence tolerance (m / rad)"})
    posture_gain: float = field(default=0.05, metadata={"help": "null-space pull toward the home posture"})

    def __post_init__(self) -> None:
        for name in ("speed_mps", "waypoint_tol_m", "ik_damping", "ik_tol"):
            if getattr(self, name) <= 0:
                raise ValueError(f"{name}: expected > 0. Got {getattr(self, name)}")
        if self.approach_height_m < 0 or self.touch_offset_m < 0:
            raise ValueError(
                "approach_height_m, touch_offset_m: expected >= 0. "
                f"Got {self.approach_height_m}, {self.touch_offset_m}"
            )
        if self.ik_iters < 1:
            raise ValueError(f"ik_iters: expected >= 1. Got {self.ik_iters}")
        if self.posture_gain < 0:
            raise ValueError(f"posture_gain: expected >= 0. Got {self.posture_gain}")


class PandaIK:
    """Damped-least-squares IK of the TCP frame with a null-space posture term."""

    def __init__(self, kin: PandaKinematics | None = None, cfg: ExpertConfig | None = None):
        import pinocchio as pin

        self._pin = pin
        self.kin = kin or load_panda()
        self.cfg = cfg or ExpertConfig()
        self.model = self.kin.model
        self.data = self.model.createData()
        self.fid = self.kin.tcp_frame_id
        self.lower, self.upper = self.kin.lower, self.kin.upper

    def fk(self, q: np.ndarray) -> np.ndarray:
        """TCP pose (4, 4) for joints q (7,)."""
        pin = self._pin
        pin.framesForwardKinematics(self.model, self.data, np.asarray(q, float))
        return np.asarray(self.data.oMf[self.fid].homogeneous).copy()

    def solve(self, target: np.ndarray, q0: np.ndarray) -> tuple[np.ndarray, float]:
        """IK for a (4, 4) TCP target from q0. Returns (q (7,), final 6D error norm)."""
        pin = self._pin
        c = self.cfg
        o_m_des = pin.SE3(target[:3, :3], target[:3, 3])
        q = np.asarray(q0, float).copy()
        err_norm = np.inf
        eye = np.eye(7)
        for _ in range(c.ik_iters):
            pin.framesForwardKinematics(self.model, self.data, q)
            cur = self.data.oMf[self.fid]
            err = pin.log6(cur.actInv(o_m_des)).vector
            err_norm = float(np.linalg.norm(err))
            if err_norm < c.ik_tol:
                break
            jac = pin.computeFrameJacobian(self.model, self.data, q, self.fid, pin.LOCAL)
            jjt = jac @ jac.T + (c.ik_damping**2) * np.eye(6)
            jpinv = jac.T @ np.linalg.solve(jjt, np.eye(6))
            dq = jpinv @ err + (eye - jpinv @ jac) @ (c.posture_gain * (HOME_Q - q))
            q = np.clip(q + dq, self.lower, self.upper)
        return q, err_norm


class ReachExpert:
    """Scripted reach-and-touch expert (7-column actions).

    Usage::

        expert = ReachExpert()
        expert.reset(q0, goal_points, seed)   # goal_points (K, 3): cube top centres, world
        q_target = expert.act(dt=0.1)         # (7,) absolute joint targets for the next step
    """

    def __init__(self, cfg: ExpertConfig | None = None, kin: PandaKinematics | None = None):
        self.cfg = cfg or ExpertConfig()
        self.ik = PandaIK(kin, self.cfg)
        self.rot_down = self.ik.fk(HOME_Q)[:3, :3]
        self.q_cmd = HOME_Q.copy()
        self.p_cmd = np.zeros(3)
        self.goal = np.zeros(3)
        self.target_index = 0
        self.phase = 0
        self.max_ik_error = 0.0

    action_dim = 7

    def start(self, scene) -> None:
        """Start an episode from a freshly reset SimScene."""
        self.reset(scene.q, scene.goal_points(), scene.seed)

    def reset(self, q0: np.ndarray, goal_points: np.ndarray, seed: int = 0) -> None:
        """Start an episode from joints q0 (7,) toward one of goal_points (K, 3).

        With K > 1 (bimodal) the target is drawn uniformly from `seed`.
        """
        goals = np.asarray(goal_points, float).reshape(-1, 3)
        rng = np.random.default_rng([int(seed), 7])
        self.target_index = int(rng.integers(len(goals))) if len(goals) > 1 else 0
        self.goal = goals[self.target_index].copy()
        self.q_cmd = np.asarray(q0, float).copy()
        self.p_cmd = self.ik.fk(self.q_cmd)[:3, 3]
        self.phase = 0
        self.max_ik_error = 0.0

    def _waypoint(self) -> np.ndarray:
        if self.phase == 0:
            return self.goal + np.array([0.0, 0.0, self.cfg.approach_height_m])
        return self.goal + np.array([0.0, 0.0, self.cfg.touch_offset_m])

    def act(self, dt: float) -> np.ndarray:
        """Advance the Cartesian set-point by one step of `dt` seconds; return joint targets (7,)."""
        wp = self._waypoint()
        if self.phase == 0 and np.linalg.norm(wp - self.p_cmd) < self.cfg.waypoint_tol_m:
            self.phase = 1
            wp = self._waypoint()
        delta = wp - self.p_cmd
        dist = float(np.linalg.norm(delta))
        max_step = self.cfg.speed_mps * dt
        if dist > max_step:
            delta *= max_step / dist
        self.p_cmd = self.p_cmd + delta
        target = np.eye(4)
        target[:3, :3] = self.rot_down
        target[:3, 3] = self.p_cmd
        self.q_cmd, err = self.ik.solve(target, self.q_cmd)
        self.max_ik_error = max(self.max_ik_error, err)
        return self.q_cmd.copy()

    @property
    def done(self) -> bool:
        """True once the set-point reached the touch waypoint."""
        return self.phase == 1 and np.linalg.norm(self._waypoint() - self.p_cmd) < 1e-6
