"""ROS-free gripper shaping and controller presets: hysteresis / dwell (default off), the action goal
gate, preset resolution and its validation."""

from __future__ import annotations

import numpy as np
import pytest

from dp_control.core import (
    CONTROLLER_PRESETS,
    ControlConfig,
    ControlCore,
    GoalGate,
    GripperHysteresis,
    RawChunk,
    default_limits_file,
    limits_from_config,
    resolve_command_topic,
)

JOINTS = [f"panda_joint{i}" for i in range(1, 8)]
Q0 = np.array([0.0, -0.4, 0.0, -2.0, 0.0, 1.6, 0.8])
NAMES = (*JOINTS, "finger")


def run_core(gripper_column, duration_s=4.0, **overrides) -> list[float]:
    """Feeds a core 10 Hz chunks whose gripper column is ``gripper_column(chunk_index, row_times)``
    (arm at rest at Q0) and returns the gripper command of every 50 Hz tick that had one."""
    cfg = ControlConfig(gripper_joint="finger", **overrides)
    core = ControlCore(cfg, limits_from_config(cfg, default_limits_file()))
    core.enable()
    grips: list[float] = []
    period, k = cfg.period_s, 0
    for tick in range(1, int(round(duration_s / period)) + 1):
        t = tick * period
        if t >= 0.1 * k + 0.05:  # a chunk stamped 0.1 k arrives 50 ms later
            stamp = 0.1 * k
            times = stamp + 0.1 * np.arange(15)
            rows = np.hstack([np.tile(Q0, (15, 1)), np.asarray(gripper_column(k, times))[:, None]])
            core.submit_chunk(
                RawChunk(stamp, 0.1, NAMES, 15, len(NAMES), rows.astype(np.float32).ravel(), k), t
            )
            k += 1
        cmd = core.step(t, Q0)
        if cmd is not None and cmd.gripper is not None:
            grips.append(float(cmd.gripper))
    return grips


def changes(values: list[float]) -> int:
    return int(np.count_nonzero(np.diff(values)))


def noisy_half_open(seed=0):
    """A policy unsure about the gripper: a per-chunk noisy opening around 2 cm, then a firm close."""
    rng = np.random.default_rng(seed)

    def column(k, times):
        base = np.where(times < 3.0, 0.02, 0.0)
        return np.clip(base + rng.uniform(-0.004, 0.004, size=len(times)), 0.0, 0.04)

    return column


def test_noisy_column_chatters_without_hysteresis_and_not_with_it():
    raw = run_core(noisy_half_open())
    # Without hysteresis (the default) every new chunk / row moves the command: chatter.
    assert changes(raw) > 30
    held = run_core(noisy_half_open(), gripper_hysteresis_m=0.01)
    # With 1 cm hysteresis the first opening is kept through the noise; the real close is still taken.
    assert changes(held) == 1
    assert abs(held[0] - 0.02) <= 0.004 and held[-1] <= 0.004


def test_dwell_limits_how_often_a_flipping_column_changes_the_command():
    def flip(k, times):  # open/close alternating every chunk
        return np.full(len(times), 0.04 * (k % 2))

    assert changes(run_core(flip)) >= 30
    dwelled = run_core(flip, gripper_min_dwell_s=0.5)
    assert 1 <= changes(dwelled) <= 4.0 / 0.5


def test_defaults_pass_every_target_through():
    h = GripperHysteresis()
    targets = [0.0, 0.0001, 0.04, 0.0399, 0.0]
    assert [h.update(x, 0.02 * i) for i, x in enumerate(targets)] == targets
    assert ControlConfig().gripper_hysteresis_m == 0.0 and ControlConfig().gripper_min_dwell_s == 0.0


def test_hysteresis_reset_takes_the_next_target_as_is():
    h = GripperHysteresis(hysteresis_m=0.01)
    assert h.update(0.04, 0.0) == 0.04
    assert h.update(0.035, 0.1) == 0.04
    h.reset()
    assert h.update(0.035, 0.2) == 0.035
    with pytest.raises(ValueError, match="must be >= 0"):
        GripperHysteresis(hysteresis_m=-1.0)


def test_goal_gate_tolerance_and_rate_limit():
    gate = GoalGate(tolerance_m=0.001, min_interval_s=0.2)
    assert gate.due(0.04, 0.0)
    gate.sent(0.04, 0.0)
    assert not gate.due(0.0405, 0.5)  # within tolerance: no new goal, however late
    assert not gate.due(0.0, 0.1)  # changed, but within the interval: not yet
    assert gate.due(0.0, 0.2)
    gate.sent(0.0, 0.2)
    gate.forget()  # rejected: the same value is due again once the interval has passed
    assert not gate.due(0.0, 0.3) and gate.due(0.0, 0.4)


def test_presets_resolve_topics_and_default_follows_backend():
    assert resolve_command_topic("trajectory", "") == (
        "generic_jtc", "trajectory", "joint_trajectory_controller/joint_trajectory"
    )  # fmt: skip
    assert resolve_command_topic("position", "")[2] == "forward_position_controller/commands"
    assert resolve_command_topic("moveit", "ur")[2] == "scaled_joint_trajectory_controller/joint_trajectory"
    assert resolve_command_topic("trajectory", "franka_fr3")[2] == "fr3_arm_controller/joint_trajectory"
    assert (
        resolve_command_topic("trajectory", "ur", "/ur/arm/joint_trajectory")[2] == "/ur/arm/joint_trajectory"
    )
    assert {p.kind for p in CONTROLLER_PRESETS.values()} == {"trajectory", "position"}


def test_preset_validation_says_what_fits():
    with pytest.raises(ValueError, match="controller_preset must be '' or one of"):
        ControlConfig(controller_preset="kuka")
    with pytest.raises(ValueError, match=r"with backend 'position' use one of \['forward_position'\]"):
        ControlConfig(backend="position", controller_preset="ur")
    with pytest.raises(ValueError, match="gripper_backend must be one of"):
        ControlConfig(gripper_backend="serial")
