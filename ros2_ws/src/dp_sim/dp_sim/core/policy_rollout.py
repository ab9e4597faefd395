"""A learned policy in the simulator without ROS: the runtime pieces of the real nodes, stepped in-process.

The closed loop of ``dp_sim.closed_loop`` (separate node processes on /clock) is the evaluation that
counts; this loop runs the same ROS-free cores on the simulator's time, with no middleware and no
wall clock, so timing is exact and it runs as fast as the CPU allows -- for diagnosing a checkpoint
(per-tick traces) and for the training CLI's closed-loop hook (``eval_every``)::

    every tick (tick_s = 1 / clock_hz of sim_node):
        joint state (7 arm + 2 finger positions)   -> PolicyRunner.add_joint_state
        every 1 / camera_hz: render + dp_perception.core preprocessing -> PolicyRunner.add_frame,
                             PolicyRunner.tick -> chunk, delivered to control `latency_s` later
        ControlCore.submit_chunk / step             -> SimScene.set_command / set_gripper
        SimScene.step(tick_s)                       -> success / timeout

What it leaves out: DDS transport, the node's camera sync wait and inference running beside the
control loop in wall time (replaced by a fixed `latency_s` of sim time).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from dp_control.core.chunk import ChunkError, RawChunk
from dp_control.core.config import ControlConfig
from dp_control.core.controller import ControlCore
from dp_control.core.limits import JointLimits
from dp_policy.core.runner import Chunk, PolicyRunner
from dp_sim.core.dataset import received_transform
from dp_sim.core.robot import FINGER_JOINTS, JOINT_NAMES
from dp_sim.core.scene import SimScene

NS = 1_000_000_000


@dataclass
class RolloutConfig:
    """Timing of the in-process loop (sim seconds)."""

    tick_s: float = field(default=0.02, metadata={"help": "physics / control tick (sim_node clock_hz 50)"})
    camera_period_s: float = field(
        default=0.1, metadata={"help": "camera period; the policy ticks on each cloud"}
    )
    latency_s: float = field(
        default=0.06, metadata={"help": "sim time from a cloud's stamp to its chunk reaching control"}
    )
    extra_s: float = field(default=0.0, metadata={"help": "keep running this long after success"})


@dataclass
class Trace:
    """Per-tick record of one episode (arrays stacked at the end)."""

    t: list = field(default_factory=list)
    q: list = field(default_factory=list)  # measured arm joints (7,)
    q_cmd: list = field(default_factory=list)  # commanded arm joints (7,) or NaN
    grip: list = field(default_factory=list)  # measured finger opening (m)
    grip_cmd: list = field(default_factory=list)  # gripper command (m) or NaN
    tcp: list = field(default_factory=list)  # TCP position (3,)
    cube: list = field(default_factory=list)  # cube centre (3,) or NaN
    cube_yaw: list = field(default_factory=list)  # cube yaw (rad) or NaN

    def arrays(self) -> dict[str, np.ndarray]:
        return {k: np.asarray(v, dtype=np.float64) for k, v in vars(self).items()}


def to_raw_chunk(chunk: Chunk) -> RawChunk:
    """The runner's chunk as control_node receives it (seconds on the shared clock)."""
    rows = np.asarray(chunk.rows, dtype=np.float64)
    return RawChunk(
        stamp=chunk.stamp_ns / NS,
        dt=chunk.dt,
        joint_names=tuple(chunk.joint_names),
        horizon=rows.shape[0],
        action_dim=rows.shape[1],
        data=rows.reshape(-1),
        chunk_id=chunk.chunk_id,
        policy_id=chunk.policy_id,
        action_space=chunk.action_space,
    )


def _frame(runner: PolicyRunner, scene: SimScene, preprocess, transform, seed: int) -> np.ndarray:
    obs = scene.render(rgb=bool(runner.image_key) or getattr(preprocess, "needs_rgb", True))
    if runner.image_key:
        from dp_policy.core.resize import fit_image

        return fit_image(obs["rgb_image"], tuple(runner.image_shape[-2:]))
    return np.asarray(preprocess(obs["xyz"], obs["rgb"], transform, seed), dtype=np.float32)


def run_policy_episode(
    scene: SimScene,
    runner: PolicyRunner,
    control_cfg: ControlConfig,
    limits: JointLimits,
    preprocess,
    seed: int,
    cfg: RolloutConfig | None = None,
    trace: bool = False,
) -> dict:
    """Reset the scene to `seed` and run the policy until success or the task's timeout.

    Args:
        scene: the simulator (its config chooses the task).
        runner: the policy runtime of policy_node (reset here).
        control_cfg, limits: control_node's configuration (a fresh ControlCore per episode).
        preprocess: ``fn(xyz, rgb, transform, seed)``, dp_perception.core.cloud_preprocessor's.
        seed: the episode's scene seed.
        cfg: timing.
        trace: also return per-tick arrays (``result["trace"]``).

    Returns:
        dict with seed, success, success_time, time, chunks, no_chunk (reason -> count),
        control_state (at the end) and, with `trace`, the trace arrays.
    """
    cfg = cfg or RolloutConfig()
    scene.reset(seed)
    runner.reset()
    control = ControlCore(control_cfg, limits)
    control.enable()
    transform = received_transform(scene.camera_transform)
    names = list(JOINT_NAMES) + list(FINGER_JOINTS)
    cam_every = max(1, int(round(cfg.camera_period_s / cfg.tick_s)))
    pending: list[tuple[float, RawChunk]] = []
    no_chunk: dict[str, int] = {}
    chunks = 0
    rejected = 0
    gripper_refused = 0
    tr = Trace()
    end_time = None
    k = 0
    while True:
        t = scene.time
        t_ns = int(round(t * NS))
        q = scene.q
        runner.check_clock(t_ns)  # a reset to t = 0 forgets the last episode (policy_node does it per frame)
        runner.add_joint_state(t_ns, names, np.concatenate([q, scene.finger_q]), t_ns)
        if k % cam_every == 0:
            if getattr(runner, "needs_frames", True):
                runner.add_frame(t_ns, _frame(runner, scene, preprocess, transform, seed * 1000 + k), t_ns)
            res = runner.tick(t_ns)
            if isinstance(res, Chunk):
                pending.append((t + cfg.latency_s, to_raw_chunk(res)))
                chunks += 1
            else:
                no_chunk[res.reason] = no_chunk.get(res.reason, 0) + 1
        while pending and pending[0][0] <= t + 1e-9:
            try:
                control.submit_chunk(pending.pop(0)[1], t)
            except ChunkError:
                rejected += 1
        cmd = control.step(t, q)
        if cmd is not None:
            scene.set_command(cmd.positions)
            if cmd.gripper is not None:
                try:  # as sim_node: an out-of-range command is refused, the hand keeps the last one
                    scene.set_gripper(cmd.gripper)
                except ValueError:
                    gripper_refused += 1
        if trace:
            tr.t.append(t)
            tr.q.append(q)
            tr.q_cmd.append(cmd.positions if cmd is not None else np.full(7, np.nan))
            tr.grip.append(scene.gripper_opening)
            tr.grip_cmd.append(np.nan if cmd is None or cmd.gripper is None else cmd.gripper)
            tr.tcp.append(scene.tcp_position())
            tr.cube.append(scene.cube_position() if scene.spec.gripper else np.full(3, np.nan))
            tr.cube_yaw.append(scene.cube_yaw() if scene.spec.gripper else np.nan)
        scene.step(cfg.tick_s)
        k += 1
        if end_time is None and scene.success_time is not None:
            end_time = scene.time + cfg.extra_s
        if (end_time is not None and scene.time >= end_time - 1e-9) or scene.is_timeout():
            break
    out = {
        "seed": int(seed),
        "success": scene.success_time is not None,
        "success_time": scene.success_time,
        "time": scene.time,
        "chunks": chunks,
        "chunks_rejected": rejected,
        "gripper_refused": gripper_refused,
        "no_chunk": no_chunk,
        "control_state": control.state.value,
        "control_reason": control.reason,
    }
    if trace:
        out["trace"] = tr.arrays()
    return out


class OracleSource:
    """The oracle baseline (:class:`dp_sim.core.oracle.OraclePlanner`) behind the runner's interface.

    It reads the true poses from `scene` at every reset, as oracle_node reads sim/episode_status, and
    returns its chunks with the policy's format and timing -- the ceiling through the same control.
    """

    image_key = None
    needs_frames = False

    def __init__(self, scene: SimScene, dt: float = 0.1, rows: int = 15) -> None:
        from dp_sim.core.oracle import OraclePlanner

        self.scene = scene
        self.planner = OraclePlanner(scene.cfg.task, dt, rows, kin=scene.kin)
        self._q: np.ndarray | None = None
        self._last_ns: int | None = None
        self.chunk_id = 0

    def reset(self) -> None:
        self.planner.start(self.scene.task_state(), self.scene.q)
        self._last_ns = None

    def check_clock(self, now_ns: int) -> bool:
        return False

    def add_joint_state(self, stamp_ns: int, names, positions, now_ns: int) -> None:
        self._q = np.asarray(positions, float)[:7]

    def add_frame(self, stamp_ns: int, frame, now_ns: int) -> None:
        pass

    def tick(self, now_ns: int) -> Chunk:
        elapsed = 0.0 if self._last_ns is None else (now_ns - self._last_ns) / NS
        self._last_ns = now_ns
        rows = self.planner.chunk(self._q, elapsed)
        self.chunk_id += 1
        return Chunk(now_ns, rows, tuple(self.planner.joint_names), self.planner.dt, self.chunk_id,
                     "oracle", "joint_position", (now_ns,), 0.0)  # fmt: skip
