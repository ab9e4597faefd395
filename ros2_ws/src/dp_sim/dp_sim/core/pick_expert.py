"""Scripted pick / pick-and-place expert with pinocchio IK (ROS-free).

Phases (a Cartesian TCP set-point moves at most `speed_mps * dt` per step toward each waypoint; the
hand turns to the cube's nearest face yaw on the way down):

    approach   above the cube, hand open           (approach_height_m over the cube centre)
    pregrasp   down to the grasp height, hand open (waits until the measured TCP is there)
    grasp      close (command 0: the servo squeezes with its force limit), dwell grasp_s
    lift       up by lift_m                         ── lift: holds here to the end
    transport  above the chosen tray               ── place / place_bimodal
    lower      down until the cube is just above the tray floor
    release    open, dwell release_s
    retreat    up, hand open

The action is 8 values: 7 absolute arm joint targets + the per-finger opening (m) of
`panda_finger_joint1`. In place_bimodal the tray is drawn per episode from the seed.

Success over seeds 0-199 (`python -m dp_sim.eval_expert --task <t> --episodes 200`): lift, place and
place_bimodal 200/200 each (figures in dp_sim.eval_expert's docstring and the README).
"""

from __future__ import annotations

import numpy as np

from dp_sim.core.expert import ExpertConfig, PandaIK
from dp_sim.core.model import TRAY_FLOOR_M
from dp_sim.core.robot import GRIPPER_MAX_M, HOME_Q, PandaKinematics

PHASES = ("approach", "pregrasp", "grasp", "lift", "transport", "lower", "release", "retreat")


def face_yaw(a):
    """Yaw (rad) wrapped into [-pi/4, pi/4): a square's faces repeat every 90 degrees, so this is the
    smallest turn that lines the hand up with the nearest face (arrays work element-wise)."""
    return (np.asarray(a) + np.pi / 4) % (np.pi / 2) - np.pi / 4


def _rz(a: float) -> np.ndarray:
    c, s = np.cos(a), np.sin(a)
    return np.array([[c, -s, 0.0], [s, c, 0.0], [0.0, 0.0, 1.0]])


class PickPlaceExpert:
    """Scripted grasp / lift / place expert; `act(dt, q_meas)` returns the 8-column action.

    Usage::

        expert = PickPlaceExpert(place=True)
        expert.start(scene)                  # reads the layout, q and seed of the reset scene
        action = expert.act(0.1, scene.q)    # (8,): q targets (7,) rad + finger opening (m)
    """

    action_dim = 8

    def __init__(
        self,
        cfg: ExpertConfig | None = None,
        kin: PandaKinematics | None = None,
        place: bool = False,
        approach_height_m: float = 0.12,
        lift_m: float = 0.15,
        descend_speed_mps: float = 0.15,
        grasp_s: float = 0.8,
        release_s: float = 0.5,
        yaw_rate: float = 1.0,
        ramp_s: float = 0.5,
    ) -> None:
        self.cfg = cfg or ExpertConfig()
        self.ik = PandaIK(kin, self.cfg)
        self.rot_down = self.ik.fk(HOME_Q)[:3, :3]
        self.place = place
        self.approach_height_m = approach_height_m
        self.lift_m = lift_m
        self.descend_speed_mps = descend_speed_mps
        self.grasp_s = grasp_s
        self.release_s = release_s
        self.yaw_rate = yaw_rate
        self.ramp_s = ramp_s
        self.target_index = 0
        self.phase = 0
        self.q_cmd = HOME_Q.copy()
        self.max_ik_error = 0.0

    def start(self, scene) -> None:
        """Plan the episode from a freshly reset SimScene (layout, q, seed)."""
        lay = scene.layout
        x, y, z, yaw = lay.cubes[0]
        h = lay.cube_size / 2
        rng = np.random.default_rng([int(scene.seed), 7])
        self.target_index = int(rng.integers(len(lay.trays))) if len(lay.trays) > 1 else 0
        # the faces repeat every 90 deg: turn the hand by the smallest equivalent angle
        self.grasp_yaw = float(face_yaw(yaw))
        z_grasp = max(h, 0.014)
        self.wp = {
            "approach": np.array([x, y, z + self.approach_height_m]),
            "pregrasp": np.array([x, y, z_grasp]),
            "lift": np.array([x, y, z_grasp + self.lift_m]),
        }
        if self.place:
            tx, ty = lay.trays[self.target_index]
            carry = z_grasp + self.lift_m
            self.wp["transport"] = np.array([tx, ty, carry])
            self.wp["lower"] = np.array([tx, ty, TRAY_FLOOR_M + h + 0.012 + (z_grasp - h)])
            self.wp["retreat"] = np.array([tx, ty, carry])
        self.q_cmd = scene.q.copy()
        self.p_cmd = self.ik.fk(self.q_cmd)[:3, 3]
        self.yaw_cmd = 0.0
        self.grip = GRIPPER_MAX_M
        self.phase = 0
        self.phase_time = 0.0
        self.time = 0.0
        self.max_ik_error = 0.0

    @property
    def phase_name(self) -> str:
        """Name of the current phase."""
        return PHASES[self.phase]

    @property
    def done(self) -> bool:
        """True once the last phase of the task reached its waypoint."""
        last = "retreat" if self.place else "lift"
        return self.phase_name == last and np.linalg.norm(self.wp[last] - self.p_cmd) < 1e-6

    def _next(self) -> None:
        self.phase += 1
        self.phase_time = 0.0

    def _advance(self, q_meas: np.ndarray | None) -> None:
        name = self.phase_name
        at_wp = name in self.wp and np.linalg.norm(self.wp[name] - self.p_cmd) < 1e-6
        if name == "approach" and at_wp and abs(self.yaw_cmd - self.grasp_yaw) < 1e-6:
            self._next()
        elif name == "pregrasp" and at_wp:
            settled = q_meas is None or np.linalg.norm(self.ik.fk(q_meas)[:3, 3] - self.p_cmd) < 0.004
            if settled or self.phase_time > 1.5:
                self._next()
        elif name == "grasp" and self.phase_time >= self.grasp_s:
            self._next()
        elif name == "lift" and at_wp and self.place:
            self._next()
        elif name in ("transport", "lower") and at_wp:
            if name == "lower":
                settled = q_meas is None or np.linalg.norm(self.ik.fk(q_meas)[:3, 3] - self.p_cmd) < 0.006
                if not (settled or self.phase_time > 1.5):
                    return
            self._next()
        elif name == "release" and self.phase_time >= self.release_s:
            self._next()

    def act(self, dt: float, q_meas: np.ndarray | None = None) -> np.ndarray:
        """One control step of `dt` s; q_meas (7,) = measured joints (phase changes wait for them).

        Returns:
            (8,) float: arm joint targets (rad) and the per-finger opening command (m).
        """
        self.phase_time += dt
        self.time += dt
        self._advance(q_meas)
        # soft start: the set-point's speeds ramp up over ramp_s, so the first targets stay near the
        # measured state (control_node engages only on a first chunk within max_start_distance)
        ramp = min(1.0, self.time / self.ramp_s) if self.ramp_s > 0 else 1.0
        name = self.phase_name
        self.grip = 0.0 if name in ("grasp", "lift", "transport", "lower") else GRIPPER_MAX_M
        wp = self.wp.get(name, self.p_cmd)
        speed = self.descend_speed_mps if name in ("pregrasp", "lower") else self.cfg.speed_mps
        delta = wp - self.p_cmd
        dist = float(np.linalg.norm(delta))
        if dist > ramp * speed * dt:
            delta *= ramp * speed * dt / dist
        self.p_cmd = self.p_cmd + delta
        max_dyaw = ramp * self.yaw_rate * dt
        dyaw = np.clip(self.grasp_yaw - self.yaw_cmd, -max_dyaw, max_dyaw)
        self.yaw_cmd += float(dyaw)
        target = np.eye(4)
        target[:3, :3] = _rz(self.yaw_cmd) @ self.rot_down
        target[:3, 3] = self.p_cmd
        self.q_cmd, err = self.ik.solve(target, self.q_cmd)
        self.max_ik_error = max(self.max_ik_error, err)
        return np.concatenate([self.q_cmd, [self.grip]])


def make_expert(task: str, cfg: ExpertConfig | None = None, kin: PandaKinematics | None = None):
    """The scripted expert of `task`: ReachExpert (7-column actions) or PickPlaceExpert (8)."""
    from dp_sim.core.expert import ReachExpert
    from dp_sim.core.tasks import get_task

    spec = get_task(task)
    if not spec.gripper:
        return ReachExpert(cfg, kin)
    return PickPlaceExpert(cfg, kin, place=spec.num_trays > 0)


def expert_step(scene, expert, dt: float) -> np.ndarray:
    """Compute the expert's action for the scene's current state and apply it (no stepping).

    Returns:
        the action: (7,) joint targets, or (8,) with the per-finger gripper opening last.
    """
    action = np.asarray(expert.act(dt, scene.q) if expert.action_dim == 8 else expert.act(dt), float)
    apply_action(scene, action)
    return action


def apply_action(scene, action) -> None:
    """Send a 7- or 8-column action (joint targets [+ gripper opening]) to a SimScene."""
    a = np.asarray(action, float).reshape(-1)
    scene.set_command(a[:7])
    if a.shape[0] == 8:
        scene.set_gripper(float(np.clip(a[7], 0.0, GRIPPER_MAX_M)))
    elif a.shape[0] != 7:
        raise ValueError(f"action: expected 7 or 8 values. Got {a.shape[0]}")
