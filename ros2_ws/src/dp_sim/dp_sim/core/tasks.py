"""Task registry: what each task randomizes and how its success is judged (ROS-free).

=================  =======  ===========================================================================
task               gripper  success (judged on the physical state after every step)
=================  =======  ===========================================================================
reach              no       TCP within `success_radius_m` of the cube's top centre (cube is static)
reach_bimodal      no       the same with two cubes, either counts
lift               yes      cube centre >= `lift_height_m` above its start, continuously for `hold_s`
place              yes      cube resting (speed < 5 cm/s) inside the tray, not touched by the fingers,
                            continuously for 0.3 s
place_bimodal      yes      `place` with two identical trays, either counts
=================  =======  ===========================================================================

Manipulation tasks randomize the cube's x, y, yaw, size (+-`cube_size_jitter`) and colour; place
tasks also the tray position(s). The expert for every task is `dp_sim.core.expert.make_expert`.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

PLACE_SETTLE_S = 0.3
PLACE_REST_SPEED = 0.05  # m/s
CUBE_COLOURS = np.array(
    [
        [0.85, 0.12, 0.10],
        [0.10, 0.55, 0.85],
        [0.15, 0.70, 0.20],
        [0.90, 0.75, 0.10],
        [0.60, 0.20, 0.75],
        [0.95, 0.45, 0.10],
    ]
)


@dataclass(frozen=True)
class TaskSpec:
    """Static description of a task.

    Attributes:
        name: registry key.
        gripper: the hand is part of the action (8 columns) and the cube is a free, colliding body.
        num_cubes: cubes in the scene (static touch targets for reach tasks).
        num_trays: trays in the scene.
        realism: sensor realism when SimConfig.sensor_realism is 'auto'.
        timeout_s: default episode timeout (s).
        camera_size: default camera image (width, height) px. Manipulation needs 320 x 240: at
            160 x 120 a 4-6 cm cube 1.1 m from the camera is 20-40 pixels, too few to grasp from.
        cube_range: default cube (x, y) ranges. Manipulation: 20 x 30 cm (with yaw +-45 deg, size
            +-20 %, colour and a distractor), between MetaWorld pick-place (20 x 10 cm, no yaw) and
            the 50 x 30 cm that reach uses; place tasks draw y from their own layouts.
        cube_size: default nominal cube edge (m). Manipulation: 4 cm (3.2-4.8 cm with the +-20 %
            size jitter; robosuite Lift's cube is 4-4.4 cm), leaving the open Panda hand (8 cm)
            1.6-2.4 cm per side; reach keeps the 5 cm of its shipped checkpoint.
    """

    name: str
    gripper: bool
    num_cubes: int
    num_trays: int
    realism: bool
    timeout_s: float

    @property
    def camera_size(self) -> tuple[int, int]:
        return (320, 240) if self.gripper else (160, 120)

    @property
    def cube_size(self) -> float:
        return 0.04 if self.gripper else 0.05

    @property
    def cube_range(self) -> tuple[tuple[float, float], tuple[float, float]]:
        """Default cube centre (x, y) ranges (m): reach 30 x 50 cm; manipulation 20 x 30 cm."""
        return ((0.4, 0.6), (-0.15, 0.15)) if self.gripper else ((0.35, 0.65), (-0.25, 0.25))


TASKS: dict[str, TaskSpec] = {
    t.name: t
    for t in (
        TaskSpec("reach", False, 1, 0, False, 10.0),
        TaskSpec("reach_bimodal", False, 2, 0, False, 10.0),
        TaskSpec("lift", True, 1, 0, True, 12.0),
        TaskSpec("place", True, 1, 1, True, 16.0),
        TaskSpec("place_bimodal", True, 1, 2, True, 16.0),
    )
}


def get_task(name: str) -> TaskSpec:
    """TaskSpec by name; raises ValueError naming the known tasks."""
    if name not in TASKS:
        raise ValueError(f"unknown task {name!r}; expected one of {tuple(TASKS)}")
    return TASKS[name]


@dataclass
class Layout:
    """One episode's randomized object placement (world frame, m / rad)."""

    cubes: np.ndarray  # (K, 4) x, y, z (centre), yaw
    cube_size: float  # edge length (m)
    cube_rgba: np.ndarray  # (4,)
    trays: np.ndarray  # (M, 2) x, y of the tray centres
    distractor: np.ndarray | None  # (2,) x, y, or None


def _far_enough(p, others, min_dist) -> bool:
    return all(np.linalg.norm(np.subtract(p, o)) >= min_dist for o in others)


def sample_layout(cfg, rng: np.random.Generator, with_distractor: bool) -> Layout:
    """Draw the object layout of an episode for `cfg` (a SimConfig) from `rng`."""
    spec = get_task(cfg.task)
    size = cfg.cube_size_m
    rgba = np.array([0.85, 0.12, 0.10, 1.0])
    if spec.gripper:
        size *= 1.0 + rng.uniform(-cfg.cube_size_jitter, cfg.cube_size_jitter)
        rgba = np.append(CUBE_COLOURS[rng.integers(len(CUBE_COLOURS))], 1.0)
    h = size / 2
    xlo, xhi = cfg.cube_x_range
    ylo, yhi = cfg.cube_y_range
    cubes, trays = [], []
    if spec.name == "reach_bimodal":
        half = cfg.bimodal_min_gap_m / 2
        for lo, hi in ((max(ylo, half), yhi), (ylo, min(yhi, -half))):
            cubes.append([rng.uniform(xlo, xhi), rng.uniform(lo, hi), h, rng.uniform(*cfg.cube_yaw_range)])
    elif spec.name == "place_bimodal":
        # cube in a central strip, one tray on each side: either tray is an equally good goal
        cubes.append([rng.uniform(xlo, xhi), rng.uniform(-0.06, 0.06), h, rng.uniform(*cfg.cube_yaw_range)])
        for sign in (1.0, -1.0):
            trays.append([rng.uniform(*cfg.tray_x_range), sign * rng.uniform(0.2, 0.28)])
    elif spec.name == "place":
        side = 1.0 if rng.random() < 0.5 else -1.0
        cubes.append(
            [rng.uniform(xlo, xhi), -side * rng.uniform(0.0, 0.2), h, rng.uniform(*cfg.cube_yaw_range)]
        )
        trays.append([rng.uniform(*cfg.tray_x_range), side * rng.uniform(0.12, 0.28)])
        # keep the cube clear of the tray rim
        while np.linalg.norm(np.subtract(cubes[0][:2], trays[0])) < cfg.tray_inner_m / 2 + 0.1:
            cubes[0][1] -= side * 0.02
    else:
        cubes.append([rng.uniform(xlo, xhi), rng.uniform(ylo, yhi), h, rng.uniform(*cfg.cube_yaw_range)])
    distractor = None
    if with_distractor:
        keep_out = [c[:2] for c in cubes] + list(trays)
        for _ in range(100):
            p = [rng.uniform(0.3, 0.7), rng.uniform(-0.35, 0.35)]
            if _far_enough(p, [c[:2] for c in cubes], 0.15) and _far_enough(
                p, trays, cfg.tray_inner_m / 2 + 0.08
            ):
                distractor = np.asarray(p)
                break
        if distractor is None:  # crowded layout: put it far to the side
            distractor = np.array([0.3, 0.38 if np.mean([k[1] for k in keep_out]) < 0 else -0.38])
    return Layout(
        np.asarray(cubes, float), float(size), rgba, np.asarray(trays, float).reshape(-1, 2), distractor
    )


class SuccessMonitor:
    """Judges a task's success from the physical state, step by step.

    `update(scene)` is called after every step; `success_time` is the sim time at which the
    success condition was first met for the required duration (None until then).
    """

    def __init__(self, spec: TaskSpec, cfg) -> None:
        self.spec = spec
        self.cfg = cfg
        self.success_time: float | None = None
        self._since: float | None = None

    def reset(self) -> None:
        """Forget the previous episode."""
        self.success_time = None
        self._since = None

    def condition(self, scene) -> bool:
        """Whether the success condition holds now (before the duration requirement)."""
        name = self.spec.name
        if name.startswith("reach"):
            return scene.goal_distance() < self.cfg.success_radius_m
        pos = scene.cube_position()
        if name == "lift":
            return pos[2] - scene.layout.cubes[0, 2] >= self.cfg.lift_height_m
        return (
            scene.tray_index_containing(pos) is not None
            and np.linalg.norm(scene.cube_velocity()) < PLACE_REST_SPEED
            and not scene.fingers_touch_cube()
        )

    def required_s(self) -> float:
        """How long the condition must hold continuously (s)."""
        name = self.spec.name
        if name == "lift":
            return self.cfg.hold_s
        if name.startswith("place"):
            return PLACE_SETTLE_S
        return 0.0

    def update(self, scene) -> bool:
        """Evaluate at scene.time; returns whether the episode has succeeded."""
        if self.success_time is not None:
            return True
        if self.condition(scene):
            if self._since is None:
                self._since = scene.time
            if scene.time - self._since >= self.required_s() - 1e-9:
                self.success_time = scene.time
        else:
            self._since = None
        return self.success_time is not None
