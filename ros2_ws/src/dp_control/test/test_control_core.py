"""Tests of dp_control's ROS-free core: validation, interpolation, limits, hand-over, safety."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from dp_control.core import (
    ChunkError,
    ControlConfig,
    ControlCore,
    ControlState,
    Crossfade,
    HoldReference,
    JointInterpolator,
    JointLimits,
    MotionLimiter,
    RawChunk,
    build_joint_limits,
    default_limits_file,
    limits_from_config,
    load_joint_limits_yaml,
    parse_urdf_limits,
    validate_chunk,
)
from dp_control.core.preview import preview_trajectory, preview_unlimited

PKG = Path(__file__).resolve().parents[1]
JOINTS = [f"panda_joint{i}" for i in range(1, 8)]
Q0 = np.array([0.0, -0.4, 0.0, -2.0, 0.0, 1.6, 0.8])
PHASE = np.linspace(0.0, 2.0, 7)


def make_core(**overrides) -> ControlCore:
    cfg = ControlConfig(**overrides)
    core = ControlCore(cfg, limits_from_config(cfg, default_limits_file()))
    core.enable()
    return core


def smooth_traj(t, q0=Q0, amp=0.15, freq=0.3):
    """A smooth in-limit joint trajectory: (n,) for a scalar t, (M, n) for (M,) t."""
    t = np.asarray(t, dtype=np.float64)
    return q0 + amp * np.sin(2 * np.pi * freq * t[..., None] + PHASE)


def chunk_from(fn, stamp, dt=0.1, horizon=15, names=JOINTS, chunk_id=0) -> RawChunk:
    rows = fn(stamp + dt * np.arange(horizon))
    return RawChunk(
        stamp=stamp,
        dt=dt,
        joint_names=tuple(names),
        horizon=horizon,
        action_dim=len(names),
        data=rows.astype(np.float32).ravel(),
        chunk_id=chunk_id,
    )


class Sim:
    """Runs a core at its rate; chunks are delivered at their arrival times between ticks."""

    def __init__(self, core: ControlCore, q_start: np.ndarray) -> None:
        self.core = core
        self.T = core.cfg.period_s
        self.tick = 0
        self.measured = np.array(q_start, dtype=np.float64)
        self.log: list = []  # (t, Command)
        self.pending: list[tuple[float, RawChunk]] = []
        self.outcomes: list[tuple[float, str]] = []
        self.delivered: dict[float, RawChunk] = {}
        self.state_silent = False
        self.measured_offset = np.zeros(len(q_start))

    @property
    def t(self) -> float:
        return self.tick * self.T

    def run_until(self, t_end: float) -> None:
        while self.t < t_end - 1e-12:
            self.tick += 1
            t = self.t
            for arrival, raw in sorted(self.pending, key=lambda p: p[0]):
                if arrival <= t:
                    self.pending.remove((arrival, raw))
                    self.delivered[arrival] = raw
                    try:
                        self.outcomes.append((arrival, self.core.submit_chunk(raw, arrival)))
                    except ChunkError as exc:
                        self.outcomes.append((arrival, f"rejected: {exc.reason}"))
            meas = None if self.state_silent else self.measured + self.measured_offset
            cmd = self.core.step(t, meas)
            if cmd is not None:
                self.measured = cmd.positions.copy()  # ideal tracking controller
            self.log.append((t, cmd))

    def commands(self):
        ts = np.array([t for t, c in self.log if c is not None])
        q = np.array([c.positions for _, c in self.log if c is not None])
        v = np.array([c.velocities for _, c in self.log if c is not None])
        return ts, q, v

    def checked_commands(self):
        """commands(), after asserting that the whole command stream kept every limit."""
        ts, q, v = self.commands()
        assert_within_limits(self.core, q, v)
        return ts, q, v


def assert_within_limits(core: ControlCore, q: np.ndarray, v: np.ndarray, q_prev0=None) -> None:
    lim = core.limits
    T = core.cfg.period_s
    eps = 1e-9
    assert (q >= lim.lower - eps).all() and (q <= lim.upper + eps).all(), "position limit"
    lo, hi = core.limiter.lower, core.limiter.upper
    assert (q >= lo - eps).all() and (q <= hi + eps).all(), "soft position limit"
    assert (np.abs(v) <= lim.max_velocity * (1 + 1e-9) + eps).all(), "velocity limit"
    dv = np.diff(np.vstack([np.zeros((1, q.shape[1])), v]), axis=0)
    assert (np.abs(dv) <= lim.max_acceleration * T * (1 + 1e-9) + eps).all(), "acceleration limit"
    dq = np.diff(q, axis=0)
    assert (np.abs(dq) <= lim.max_velocity * T * (1 + 1e-9) + eps).all(), "position step"
    # Finite-difference jerk (the stream starts at rest: v = a = 0 before the first command).
    a = np.diff(np.vstack([np.zeros((1, q.shape[1])), v]), axis=0) / T
    jerk = np.diff(np.vstack([np.zeros((1, q.shape[1])), a]), axis=0) / T
    assert (np.abs(jerk) <= lim.max_jerk * (1 + JERK_RTOL) + JERK_ATOL).all(), "jerk limit"


#: Tolerance of the jerk checks: floating-point round-off of second differences of positions
#: (|q| ~ 3 rad, T = 0.02 s: 1e-15 rad / T^3 ~ 1e-10 rad/s^3), far below any real limit.
JERK_RTOL, JERK_ATOL = 1e-9, 1e-6


# ---------------------------------------------------------------------------------------- limits
URDF = """<robot name="r">
  <link name="a"/><link name="b"/><link name="c"/><link name="d"/>
  <joint name="j1" type="revolute"><parent link="a"/><child link="b"/>
    <limit lower="-1.0" upper="2.0" velocity="1.5" effort="10"/></joint>
  <joint name="j2" type="continuous"><parent link="b"/><child link="c"/>
    <limit velocity="3.0" effort="10"/></joint>
  <joint name="fixed" type="fixed"><parent link="c"/><child link="d"/></joint>
</robot>"""


def test_parse_urdf_limits_handles_continuous_and_fixed():
    lim = parse_urdf_limits(URDF)
    assert set(lim) == {"j1", "j2"}
    assert lim["j1"] == {"lower": -1.0, "upper": 2.0, "velocity": 1.5, "continuous": False}
    assert lim["j2"]["continuous"] and lim["j2"]["lower"] == -math.inf
    with pytest.raises(ValueError, match="not valid XML"):
        parse_urdf_limits("<robot")


def test_build_limits_urdf_overrides_yaml_positions_and_caps_velocity():
    yaml_limits = {
        "j1": {"lower": -0.5, "upper": 0.5, "velocity": 2.0, "acceleration": 4.0},
        "j2": {"lower": -0.5, "upper": 0.5, "velocity": 2.0, "acceleration": 4.0},
    }
    lim = build_joint_limits(["j1", "j2"], yaml_limits, parse_urdf_limits(URDF), velocity_scale=0.5)
    assert lim.source == "urdf"
    np.testing.assert_allclose(lim.lower, [-1.0, -np.inf])
    np.testing.assert_allclose(lim.max_velocity, [0.75, 1.0])
    np.testing.assert_allclose(lim.max_acceleration, [4.0, 4.0])
    with pytest.raises(ValueError, match="finite limit"):
        build_joint_limits(["j1"], {"j1": {"lower": -1, "upper": 1, "velocity": 1.0}})


def test_default_yaml_has_panda_limits():
    lim = load_joint_limits_yaml(PKG / "config" / "joint_limits.yaml")
    assert list(lim) == JOINTS
    assert lim["panda_joint4"]["upper"] == pytest.approx(-0.0698)
    assert all(math.isfinite(v["acceleration"]) for v in lim.values())


def test_limiter_brakes_before_position_limit_instead_of_clipping():
    lim = JointLimits(("j",), [-1.0], [1.0], [2.0], [4.0])
    limiter = MotionLimiter(lim, 0.02, margin=0.1)
    q, v = np.array([0.0]), np.array([0.0])
    qs, vs, pos_clamps = [], [], 0
    for _ in range(200):  # reference far beyond the upper limit
        r = limiter.step(q, v, np.array([5.0]), np.array([0.0]))
        q, v = r.positions, r.velocities
        qs.append(q[0])
        vs.append(v[0])
        pos_clamps += int(r.kinds[0])
    qs, vs = np.array(qs), np.array(vs)
    assert qs.max() <= 0.9 + 1e-12  # never beyond the soft limit
    assert qs[-1] > 0.89  # but gets there
    assert np.abs(np.diff(vs)).max() <= 4.0 * 0.02 + 1e-12  # decelerates, no clip at the wall
    assert abs(vs[-1]) < 1e-6 and pos_clamps > 0


def test_limiter_tracks_feasible_reference_exactly():
    lim = JointLimits(("j",), [-3.0], [3.0], [2.0], [10.0])
    limiter = MotionLimiter(lim, 0.02, margin=0.0)
    ts = 0.02 * np.arange(1, 100)
    ref = 0.3 * np.sin(ts)
    q, v = np.array([0.0]), np.array([0.3])
    for t, r_t in zip(ts, ref, strict=True):
        r = limiter.step(q, v, np.array([r_t]), np.array([0.3 * np.cos(t)]))
        assert not r.clamped.any()
        q, v = r.positions, r.velocities
        assert q[0] == pytest.approx(r_t, abs=1e-12)


# ---------------------------------------------------------------------------------- validation
@pytest.mark.parametrize(
    ("mutate", "reason", "message"),
    [
        (dict(data=np.full(14, np.nan, np.float32)), "nan", "non-finite"),
        (dict(joint_names=("a", "b")), "size", "action_dim is 7 but joint_names has 2"),
        (dict(data=np.zeros(13, np.float32)), "size", "expected horizon\\*action_dim"),
        (dict(joint_names=tuple(JOINTS[:6] + ["elbow"])), "names", "missing \\['panda_joint7'\\]"),
        (dict(joint_names=tuple(JOINTS[:6] + ["panda_joint1"])), "names", "duplicates"),
        (dict(stamp=10.5), "future", "in the future"),
        (dict(stamp=9.0), "age", "old on arrival"),
        (dict(dt=0.0), "dt", "dt is 0.0"),
        (dict(action_space="ee_pose"), "action_space", "ee_pose"),
    ],
)
def test_validate_chunk_rejects_with_explanation(mutate, reason, message):
    base = dict(
        stamp=10.0,
        dt=0.1,
        joint_names=tuple(JOINTS),
        horizon=2,
        action_dim=7,
        data=np.zeros(14, np.float32),
    )
    base.update(mutate)
    with pytest.raises(ChunkError, match=message) as info:
        validate_chunk(RawChunk(**base), JOINTS, "gripper", 10.0, 0.05, 0.5)
    assert info.value.reason == reason
    assert isinstance(info.value, ValueError)


def test_validate_reorders_columns_and_splits_gripper():
    names = ("gripper", *reversed(JOINTS))
    data = np.tile(np.arange(8, dtype=np.float32), 3)
    raw = RawChunk(10.0, 0.1, names, 3, 8, data)
    chunk = validate_chunk(raw, JOINTS, "gripper", 10.05, 0.05, 0.5)
    np.testing.assert_array_equal(chunk.arm[0], np.arange(7, 0, -1))
    np.testing.assert_array_equal(chunk.gripper, [0, 0, 0])
    times, rows = chunk.schedule(10.15)  # row 0 is past, row 1 is the anchor
    np.testing.assert_allclose(times, [10.1, 10.2])
    assert chunk.gripper_at(9.0) == 0.0


# --------------------------------------------------------------------------------- interpolation
@pytest.mark.parametrize("mode", ["linear", "cubic", "quintic"])
def test_interpolator_passes_knots_and_velocity_is_derivative(mode):
    times = np.linspace(0.0, 1.0, 8)
    pos = smooth_traj(times)
    interp = JointInterpolator(times, pos, mode)
    np.testing.assert_allclose(interp(times), pos, atol=1e-9)
    t = np.array([0.33, 0.61])
    h = 1e-6
    numeric = (interp(t + h) - interp(t - h)) / (2 * h)
    np.testing.assert_allclose(interp.velocity(t), numeric, atol=1e-5)
    q, v = interp.sample(2.0)  # after the end: hold with zero velocity
    np.testing.assert_allclose(q, pos[-1])
    assert not v.any()
    trimmed = interp.trim(0.2, 0.7)
    np.testing.assert_allclose(trimmed(0.45), interp(0.45), atol=1e-2)


def test_crossfade_is_continuous_in_position_and_velocity():
    old = HoldReference(Q0)
    new = JointInterpolator(np.linspace(0, 1, 11), smooth_traj(np.linspace(0, 1, 11)) + 0.1)
    fade = Crossfade(old, new, 0.2, 0.3)
    for t_edge in (0.2, 0.5):
        q_a, v_a = fade.sample(t_edge - 1e-7)
        q_b, v_b = fade.sample(t_edge + 1e-7)
        np.testing.assert_allclose(q_a, q_b, atol=1e-5)
        np.testing.assert_allclose(v_a, v_b, atol=1e-4)


# ---------------------------------------------------------------------------- acceptance: stream
def stream_sim(core, duration, seed=0, fn=smooth_traj, t0=0.0):
    """10 Hz chunks with 50-100 ms latency and +-10 ms stamp jitter."""
    rng = np.random.default_rng(seed)
    sim = Sim(core, fn(0.0))
    i = 0
    while 0.1 * i < duration:
        stamp = t0 + 0.1 * i + rng.uniform(-0.01, 0.01)
        arrival = stamp + rng.uniform(0.05, 0.1)
        sim.pending.append((arrival, chunk_from(fn, stamp, chunk_id=i)))
        i += 1
    return sim


@pytest.mark.parametrize("interp", ["cubic", "quintic"])
def test_stream_replace_zero_clamps_tracks_reference_and_steps_bounded(interp):
    core = make_core(interpolation=interp, handover="replace")
    sim = stream_sim(core, duration=4.0, seed=1)
    sim.run_until(4.0)
    assert core.state == ControlState.RUNNING
    assert core.stats.clamp_ticks == 0
    assert core.stats.chunks_accepted >= 38
    engaged = min(t for t, o in sim.outcomes if o == "engaged")
    errs = []
    for t, cmd in sim.log:
        if t > engaged + core.cfg.ramp_in_s + 1e-9:
            # The chunk in use, interpolated over all of its rows, is the reference.
            chunk = core_chunk_at(sim, t)
            ref = JointInterpolator(chunk.times, chunk.arm, interp)(t)
            errs.append(np.abs(cmd.positions - ref).max())
    assert len(errs) > 150
    assert max(errs) < 1e-3, max(errs)
    sim.checked_commands()


def core_chunk_at(sim, t):
    """Validated chunk that was newest at time t (re-validated from the delivered raw chunks)."""
    best = None
    for arrival, outcome in sim.outcomes:
        if arrival <= t and outcome in ("engaged", "accepted"):
            best = arrival
    raw = sim.delivered[best]
    return validate_chunk(raw, JOINTS, "", best, 1.0, 1.0)


@pytest.mark.parametrize("handover", ["blend", "ensemble"])
def test_stream_other_handovers_stay_smooth(handover):
    core = make_core(handover=handover)
    sim = stream_sim(core, duration=3.0, seed=2)
    sim.run_until(3.0)
    assert core.state == ControlState.RUNNING
    assert core.stats.clamp_ticks == 0
    ts, q, v = sim.checked_commands()
    late = ts > 1.0
    assert np.abs(q[late] - smooth_traj(ts[late])).max() < 5e-3


def test_linear_interpolation_stays_within_limits():
    core = make_core(interpolation="linear")
    sim = stream_sim(core, duration=2.0, seed=3)
    sim.run_until(2.0)
    sim.checked_commands()


def test_gripper_column_is_a_step():
    core = make_core(gripper_joint="finger")

    def fn(t):
        arm = smooth_traj(t)
        grip = (np.asarray(t) > 0.3).astype(float)[..., None] * 0.04
        return np.concatenate([arm, grip], axis=-1)

    sim = Sim(core, smooth_traj(0.0))
    for i in range(6):
        s = 0.1 * i
        sim.pending.append((s + 0.05, chunk_from(fn, s, names=[*JOINTS, "finger"])))
    sim.run_until(0.6)
    grips = [(t, c.gripper) for t, c in sim.log if c is not None and c.gripper is not None]
    values = {round(g, 6) for _, g in grips}
    assert values == {0.0, 0.04}
    assert all((g > 0) == (t >= 0.3 - 0.025) for t, g in grips if abs(t - 0.3) > 0.03)


def test_gripper_target_is_forgotten_on_disable_and_re_enable():
    """A new episode must not start by re-sending the last episode's gripper step (e.g. closed)."""
    core = make_core(gripper_joint="finger")

    def closed(t):
        return np.concatenate([smooth_traj(t), np.zeros(np.shape(t) + (1,))], axis=-1)

    sim = Sim(core, smooth_traj(0.0))
    sim.pending.append((0.05, chunk_from(closed, 0.0, names=[*JOINTS, "finger"])))
    sim.run_until(0.3)
    assert sim.log[-1][1].gripper == 0.0
    core.disable()
    sim.run_until(1.0)
    assert core.state == ControlState.INACTIVE
    core.enable()
    sim.log.clear()
    sim.run_until(1.3)  # armed, no chunk yet: holds the arm and sends no gripper command
    assert core.state == ControlState.ARMED
    cmds = [c for _, c in sim.log if c is not None]
    assert cmds and all(c.gripper is None for c in cmds)


# ---------------------------------------------------------------------------- acceptance: safety
def test_watchdog_brakes_to_rest_within_one_period_and_resumes_without_jump():
    core = make_core()
    sim = stream_sim(core, duration=2.0, seed=4)
    sim.run_until(3.0)
    T = core.cfg.period_s
    last_chunk = max(t for t, o in sim.outcomes if o in ("engaged", "accepted"))
    first_hold = min(t for t, c in sim.log if c.state == ControlState.HOLDING)
    assert last_chunk + core.cfg.chunk_timeout < first_hold <= last_chunk + core.cfg.chunk_timeout + T
    assert "chunk_timeout" in core.reason
    ts, q, v = sim.checked_commands()
    assert np.abs(v[-1]).max() < 1e-9  # at rest and holding
    held = q[-1].copy()
    # Chunks return around the held position.
    fn = lambda t: smooth_traj(np.asarray(t) - 3.0, q0=held - smooth_traj(0.0, q0=0.0))  # noqa: E731
    for i in range(20):
        s = 3.0 + 0.1 * i
        sim.pending.append((s + 0.06, chunk_from(fn, s, chunk_id=100 + i)))
    sim.run_until(5.0)
    assert core.state == ControlState.RUNNING
    assert core.stats.holds["chunk_timeout"] == 1
    ts, q, v = sim.commands()
    assert_within_limits(core, q, v)  # includes the resume: no position or velocity jump


def test_state_timeout_holds_within_one_period():
    core = make_core()
    sim = stream_sim(core, duration=3.0, seed=5)
    sim.run_until(1.0)
    sim.state_silent = True
    t_silent = sim.t  # last measurement was delivered at this tick
    sim.run_until(1.5)
    first_hold = min(t for t, c in sim.log if c.state == ControlState.HOLDING)
    T = core.cfg.period_s
    assert t_silent + core.cfg.state_timeout < first_hold <= t_silent + core.cfg.state_timeout + T
    assert "joint_states silent" in core.reason
    sim.checked_commands()
    # Chunks arriving while states are silent are not followed.
    assert core.state == ControlState.HOLDING
    sim.state_silent = False
    sim.run_until(2.5)  # states and chunks back: resumes (ramp-in) without a jump
    assert core.state == ControlState.RUNNING
    sim.checked_commands()


def test_tracking_error_trips_fault_within_one_period():
    core = make_core()
    sim = stream_sim(core, duration=2.0, seed=6)
    sim.run_until(1.0)
    sim.measured_offset[2] = core.cfg.max_tracking_error + 0.05
    t_err = sim.t + sim.T
    sim.run_until(1.3)
    first_fault = min(t for t, c in sim.log if c.state == ControlState.FAULT)
    assert first_fault <= t_err + 1e-9
    assert "tracking error" in core.reason and "panda_joint3" in core.reason
    sim.checked_commands()
    assert core.submit_chunk(chunk_from(smooth_traj, sim.t - 0.05), sim.t).startswith("ignored")
    sim.measured_offset[:] = 0.0
    assert core.enable() == "armed"  # re-enable resets the fault and re-captures the state
    assert core.state == ControlState.ARMED


def test_far_first_chunk_is_refused_and_holds():
    core = make_core()
    sim = Sim(core, Q0)
    sim.run_until(0.2)
    assert core.state == ControlState.ARMED
    far = lambda t: smooth_traj(t, q0=Q0 + 0.5)  # noqa: E731
    out = core.submit_chunk(chunk_from(far, sim.t - 0.05), sim.t)
    assert out.startswith("refused") and "max_start_distance" in out
    assert core.state == ControlState.HOLDING
    sim.run_until(0.3)
    ts, q, v = sim.commands()
    np.testing.assert_allclose(q[-1], Q0)  # did not move
    near = lambda t: smooth_traj(t, q0=Q0 - smooth_traj(0.3, q0=0.0))  # noqa: E731
    for i in range(10):
        sim.pending.append((0.3 + 0.1 * i + 0.05, chunk_from(near, 0.3 + 0.1 * i)))
    sim.run_until(1.5)
    assert core.state == ControlState.RUNNING
    sim.checked_commands()


def test_disable_brakes_then_inactive_and_enable_rearms():
    core = make_core()
    sim = stream_sim(core, duration=2.0, seed=7)
    sim.run_until(1.0)
    assert core.disable().startswith("braking")
    sim.run_until(1.5)
    assert core.state == ControlState.INACTIVE
    sim.checked_commands()
    assert sim.log[-1][1] is None
    core.enable()
    assert core.state == ControlState.ARMED


def test_preview_is_limited_and_ends_at_rest():
    core = make_core()
    sim = stream_sim(core, duration=1.5, seed=8)
    sim.run_until(1.2)
    cmd = sim.log[-1][1]
    assert cmd.preview_positions.shape[0] >= round(core.cfg.preview_s * core.cfg.rate_hz)
    np.testing.assert_allclose(np.diff(cmd.preview_times), core.cfg.period_s)
    assert not cmd.preview_velocities[-1].any()
    q = np.vstack([cmd.positions, cmd.preview_positions])
    v = np.diff(q, axis=0) / core.cfg.period_s
    assert (np.abs(v) <= core.limits.max_velocity * (1 + 1e-9)).all()
    # The preview follows the reference (within the limiter) for its first part.
    np.testing.assert_allclose(cmd.preview_positions[:5], smooth_traj(cmd.preview_times[:5]), atol=2e-3)


# ---------------------------------------------------------------------- property: random chunks
KINDS = ["near", "to_limit", "to_limit", "wild", "out_of_limits", "nan", "wrong_name", "wrong_size", "future"]


@settings(max_examples=40, deadline=None, database=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    seed=st.integers(0, 2**31 - 1),
    kinds=st.lists(st.sampled_from(KINDS), min_size=3, max_size=12),
    handover=st.sampled_from(["replace", "blend", "ensemble"]),
    interp=st.sampled_from(["linear", "cubic", "quintic"]),
)
def test_property_limits_always_hold_and_bad_chunks_rejected(seed, kinds, handover, interp):
    rng = np.random.default_rng(seed)
    core = make_core(handover=handover, interpolation=interp, handover_s=float(rng.uniform(0, 0.2)))
    lo, hi = core.limiter.lower, core.limiter.upper
    if rng.random() < 0.5:
        q_start = lo + (hi - lo) * rng.uniform(0.2, 0.8, size=7)
    else:  # close to a soft limit
        q_start = np.where(rng.random(7) < 0.5, lo + 0.1, hi - 0.1)
    sim = Sim(core, q_start)
    sim.run_until(0.04)
    expected = {"nan": "nan", "wrong_name": "names", "wrong_size": "size", "future": "future"}
    for kind in kinds:
        t = sim.t
        stamp = t - rng.uniform(0.0, 0.1)
        h = int(rng.integers(1, 17))
        base = core.q_cmd
        if kind == "near":
            rows = base + np.cumsum(rng.normal(0, 0.03, (h, 7)), axis=0)
        elif kind == "to_limit":  # starts at the command, ends beyond a position limit
            direction = np.where(rng.random(7) < 0.5, -1.0, 1.0)
            stamp = t - 0.05
            rows = base + 1.5 * direction * (0.1 * np.arange(h) - 0.05)[:, None]
        elif kind == "out_of_limits":
            rows = base + np.cumsum(rng.normal(0, 1.0, (h, 7)), axis=0) + rng.choice([-4, 4])
        else:
            rows = base + np.cumsum(rng.normal(0, 0.3, (h, 7)), axis=0)
        names = list(JOINTS)
        data = rows.astype(np.float32).ravel()
        if kind == "nan":
            data[rng.integers(data.size)] = np.nan
        elif kind == "wrong_name":
            names[int(rng.integers(7))] = "elbow"
        elif kind == "wrong_size":
            data = data[:-1]
        elif kind == "future":
            stamp = t + 0.2
        raw = RawChunk(stamp, 0.1, tuple(names), h, 7, data)
        if kind in expected:
            with pytest.raises(ChunkError) as info:
                core.submit_chunk(raw, t)
            assert info.value.reason == expected[kind]
        else:
            core.submit_chunk(raw, t)
        sim.run_until(t + rng.uniform(0.02, 0.3))
    sim.run_until(sim.t + 0.6)  # watchdog and braking included
    sim.checked_commands()
    assert core.state in (ControlState.HOLDING, ControlState.ARMED, ControlState.RUNNING)


def test_preview_fast_path_equals_limiter_loop():
    core = make_core()
    sim = stream_sim(core, duration=1.5, seed=9)
    sim.run_until(1.2)
    args = (core._ref, core.limiter, core.q_cmd, core.v_cmd, sim.t, core.cfg.preview_s)
    fast = preview_trajectory(*args)
    T = core.limiter.period_s
    q_ref = core._ref.sample(fast[0][: round(core.cfg.preview_s / T)])[0]
    assert preview_unlimited(core.limiter, core.q_cmd, core.v_cmd, q_ref, T) is not None  # fast path taken
    slow = preview_trajectory(*args, fast_path=False)  # the step-by-step limiter
    for a, b in zip(fast, slow, strict=True):
        np.testing.assert_allclose(a, b, atol=1e-9)


# ----------------------------------------------------------------------------- jerk-limited stream
def test_franka_jerk_limits_load_and_do_not_bind_at_50_hz():
    core = make_core()
    np.testing.assert_allclose(core.limits.max_jerk, 0.5 * np.array([7500, 3750, 5000, 6250, 7500, 1e4, 1e4]))
    assert not core.limiter.jerk_active()  # |jerk| <= 2 a_max / T < j_max: the acceleration limit suffices
    assert core.limiter.jerk_active(1.0 / 1000.0)  # at 1 kHz it would bind


def test_jerk_limited_limiter_brakes_before_position_limit():
    lim = JointLimits(("j",), [-1.0], [1.0], [2.0], [4.0], max_jerk=[20.0])
    limiter = MotionLimiter(lim, 0.02, margin=0.1)
    assert limiter.jerk_active()
    q, v, a = np.array([0.0]), np.array([0.0]), np.array([0.0])
    qs, vs, acc = [], [], []
    for _ in range(300):  # reference far beyond the upper limit
        r = limiter.step(q, v, np.array([5.0]), np.array([0.0]), a_prev=a)
        q, v, a = r.positions, r.velocities, r.accelerations
        qs.append(q[0])
        vs.append(v[0])
        acc.append(a[0])
    qs, acc = np.array(qs), np.array(acc)
    assert qs.max() <= 0.9 + 1e-9  # never beyond the soft limit (round-off only)
    assert qs[-1] > 0.85  # but gets close
    jerk = np.diff(np.concatenate([[0.0], acc])) / 0.02
    assert np.abs(jerk).max() <= 20.0 * (1 + JERK_RTOL) + JERK_ATOL
    assert np.abs(acc).max() <= 4.0 * (1 + 1e-9)
    assert abs(vs[-1]) < 1e-9  # at rest against the soft limit


def test_jerk_brake_reaches_rest_within_limits_from_random_states():
    lim = JointLimits(tuple("abcdefg"), [-3.0] * 7, [3.0] * 7, [1.0] * 7, [4.0] * 7, max_jerk=[30.0] * 7)
    limiter = MotionLimiter(lim, 0.02, margin=0.0)
    rng = np.random.default_rng(0)
    T = 0.02
    for _ in range(50):
        v, a = rng.uniform(-1, 1, 7), rng.uniform(-4, 4, 7)
        _, vs, rest = limiter.brake_sequence(np.zeros(7), v, a, T)
        assert rest.all()
        acc = np.diff(np.vstack([v, vs]), axis=0) / T
        jerk = np.diff(np.vstack([a, acc]), axis=0) / T
        assert np.abs(acc).max() <= 4.0 * (1 + 1e-9)
        assert np.abs(jerk).max() <= 30.0 * (1 + JERK_RTOL) + JERK_ATOL


def segments(log):
    """Contiguous runs of commands (a None, i.e. inactive, ends a run): [(positions, velocities)]."""
    out, cur = [], []
    for _, c in log:
        if c is None:
            if cur:
                out.append(cur)
            cur = []
        else:
            cur.append(c)
    if cur:
        out.append(cur)
    return [(np.array([c.positions for c in r]), np.array([c.velocities for c in r])) for r in out]


@settings(max_examples=12, deadline=None, database=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    seed=st.integers(0, 2**31 - 1),
    events=st.lists(
        st.sampled_from(["near", "near", "to_limit", "wild", "pause", "disable_enable"]),
        min_size=3,
        max_size=8,
    ),
    handover=st.sampled_from(["replace", "blend", "ensemble"]),
    interp=st.sampled_from(["linear", "cubic", "quintic"]),
)
def test_property_jerk_limit_holds_over_streams_handovers_and_stops(seed, events, handover, interp):
    """Random chunk streams, every hand-over mode, watchdog stops and disable/enable: every command
    keeps the position, velocity, acceleration and (binding) jerk limits, and every preview too."""
    rng = np.random.default_rng(seed)
    jerk = rng.uniform(15.0, 300.0, 7)  # binds: 2 a_max / T is 375..1000 rad/s^3 here
    core = make_core(
        handover=handover, interpolation=interp, handover_s=float(rng.uniform(0, 0.2)), max_jerk=list(jerk),
        jerk_scale=1.0,
    )  # fmt: skip
    assert core.limiter.jerk_active()
    lo, hi = core.limiter.lower, core.limiter.upper
    q_start = lo + (hi - lo) * rng.uniform(0.1, 0.9, size=7)
    sim = Sim(core, q_start)
    sim.run_until(0.04)
    for kind in events:
        t = sim.t
        if kind == "pause":  # no chunks for longer than chunk_timeout: the watchdog stops
            sim.run_until(t + core.cfg.chunk_timeout + rng.uniform(0.05, 0.3))
            continue
        if kind == "disable_enable":
            core.disable()
            sim.run_until(t + rng.uniform(0.05, 1.0))
            core.enable()
            sim.run_until(sim.t + 0.04)
            continue
        h = int(rng.integers(2, 16))
        base = core.q_cmd
        if kind == "near":
            rows = base + np.cumsum(rng.normal(0, 0.03, (h, 7)), axis=0)
        elif kind == "to_limit":
            direction = np.where(rng.random(7) < 0.5, -1.0, 1.0)
            rows = base + 1.5 * direction * (0.1 * np.arange(h) - 0.05)[:, None]
        else:
            rows = base + np.cumsum(rng.normal(0, 0.3, (h, 7)), axis=0)
        for i in range(int(rng.integers(1, 4))):  # a short stream: hand-overs
            stamp = sim.t - 0.05
            raw = RawChunk(stamp, 0.1, tuple(JOINTS), h, 7, (rows + 0.02 * i).astype(np.float32).ravel())
            core.submit_chunk(raw, sim.t)
            sim.run_until(sim.t + rng.uniform(0.04, 0.15))
    sim.run_until(sim.t + 1.0)  # watchdog and braking included
    for q, v in segments(sim.log):
        assert_within_limits(core, q, v)
    # The preview sent with the last command keeps the limits too (it ends at rest).
    last = [c for _, c in sim.log if c is not None][-1]
    q = np.vstack([last.positions, last.preview_positions])
    assert (q <= hi + 1e-9).all() and (q >= lo - 1e-9).all()
