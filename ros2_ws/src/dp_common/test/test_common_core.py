"""Unit tests of dp_common's ROS-free core and of its node helpers."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from dp_common.core import JointStateBuffer, MissingJointsError, RateMeter, RollingStats


def test_joint_state_buffer_merges_partial_messages():
    buf = JointStateBuffer(history_s=1.0)
    buf.update(1.00, ["a", "b"], [0.0, 1.0])
    buf.update(1.01, ["gripper"], [0.04])
    with pytest.raises(MissingJointsError) as err:
        buf.latest(["a", "c"])
    assert err.value.missing == ["c"]
    stamp, q = buf.latest(["gripper", "b", "a"])
    np.testing.assert_allclose(q, [0.04, 1.0, 0.0])
    assert stamp == 1.00  # oldest of the newest stamps


def test_joint_state_buffer_interpolates_and_bounds():
    buf = JointStateBuffer(history_s=0.5)
    for k in range(11):
        buf.update(k * 0.1, ["a"], [k * 1.0])
    # history trimmed to 0.5 s before the newest sample
    with pytest.raises(ValueError, match="before the kept history"):
        buf.at(0.1, ["a"])
    np.testing.assert_allclose(buf.at(0.75, ["a"]), [7.5])
    np.testing.assert_allclose(buf.at(0.75, ["a"], interpolate=False), [7.0])
    np.testing.assert_allclose(buf.at(1.02, ["a"]), [10.0])
    with pytest.raises(ValueError, match="older than the requested time"):
        buf.at(1.5, ["a"])


def test_joint_state_buffer_rejects_bad_samples():
    buf = JointStateBuffer()
    with pytest.raises(ValueError, match="non-finite"):
        buf.update(0.0, ["a", "b"], [0.0, float("nan")])
    with pytest.raises(ValueError, match="2 names but 1 positions"):
        buf.update(0.0, ["a", "b"], [0.0])
    with pytest.raises(ValueError, match="repeats"):
        buf.update(0.0, ["a", "a"], [0.0, 1.0])
    assert buf.names == []


def test_rolling_stats_and_rate():
    stats = RollingStats(window=100)
    for v in range(1, 201):
        stats.add(float(v))
    s = stats.summary()
    assert s["count"] == 100 and s["max"] == 200.0
    assert s["p50"] == pytest.approx(150.5)
    meter = RateMeter(window_s=1.0)
    for k in range(50):
        meter.tick(k * 0.02)
    assert meter.rate_hz(0.98) == pytest.approx(50.0, rel=1e-6)
    assert meter.rate_hz(10.0) == 0.0


@dataclasses.dataclass
class _DemoConfig:
    rate_hz: float = dataclasses.field(default=10.0, metadata={"help": "rate in Hz"})
    name: str = dataclasses.field(default="x", metadata={"help": "a name"})
    enabled: bool = dataclasses.field(default=True, metadata={"help": "on/off"})
    joints: list[str] = dataclasses.field(default_factory=list, metadata={"help": "joint names"})
    box: list[float] = dataclasses.field(default_factory=lambda: [0.0, 1.0], metadata={"help": "box"})
    count: int = dataclasses.field(default=3, metadata={"help": "count"})
    lower: list[float] = dataclasses.field(default_factory=list, metadata={"help": "empty float list"})

    def __post_init__(self):
        if self.rate_hz <= 0:
            raise ValueError(f"rate_hz must be > 0. Got {self.rate_hz}")


def test_declare_config_roundtrip(rclpy_context):
    from rclpy.node import Node
    from rclpy.parameter import Parameter

    from dp_common.params import declare_config

    node = Node(
        "cfg_node",
        context=rclpy_context,
        parameter_overrides=[
            Parameter("rate_hz", value=5),
            Parameter("joints", value=["a", "b"]),
            Parameter("lower", value=[1.0, 2.0]),
        ],
    )
    try:
        cfg = declare_config(node, _DemoConfig)
        assert cfg == _DemoConfig(rate_hz=5.0, joints=["a", "b"], lower=[1.0, 2.0])
        desc = node.describe_parameter("rate_hz")
        assert desc.description == "rate in Hz"
    finally:
        node.destroy_node()
    bad = Node("cfg_bad", context=rclpy_context, parameter_overrides=[Parameter("rate_hz", value=-1.0)])
    try:
        with pytest.raises(ValueError, match="cfg_bad: invalid parameters: rate_hz must be > 0. Got -1.0"):
            declare_config(bad, _DemoConfig)
    finally:
        bad.destroy_node()


def test_diagnostics_reporter_publishes(rclpy_context):
    from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus
    from rclpy.executors import SingleThreadedExecutor
    from rclpy.node import Node

    from dp_common.diagnostics import DiagnosticsReporter
    from dp_common.testing import spin_until

    node = Node("diag_node", context=rclpy_context)
    listener = Node("diag_listener", context=rclpy_context)
    executor = SingleThreadedExecutor(context=rclpy_context)
    executor.add_node(node)
    executor.add_node(listener)
    got: list[DiagnosticArray] = []
    listener.create_subscription(DiagnosticArray, "/diagnostics", got.append, 10)
    try:
        rep = DiagnosticsReporter(node, period_s=0.1)
        for ms in (1.0, 2.0, 3.0):
            rep.latency("process", ms * 1e-3)
        rep.count("dropped_nan")
        rep.set("state", "running")
        rep.problem("cloud has no x field; expected x, y, z")
        assert spin_until(executor, lambda: len(got) >= 1, timeout_s=10)
        status = got[-1].status[0]
        values = {kv.key: kv.value for kv in status.values}
        assert values["process p50 ms"] == "2.00"
        assert values["dropped_nan"] == "1" and values["state"] == "running"
        assert status.level == DiagnosticStatus.ERROR
        assert "no x field" in status.message
    finally:
        executor.shutdown()
        node.destroy_node()
        listener.destroy_node()


def test_launcher_writes_one_parameter_file_per_node(tmp_path):
    import yaml

    from dp_common.launcher import NodeSpec, ros_args

    specs = [NodeSpec("pkg", f"exe{k}", parameters=[{"value": k}, {"other": -k}]) for k in range(20)]
    files = []
    for spec in specs:
        args = ros_args(spec, tmp_path)
        files.append([args[i + 1] for i, a in enumerate(args) if a == "--params-file"])
    flat = [f for fs in files for f in fs]
    assert len(set(flat)) == len(flat) == 40
    for k, (first, second) in enumerate(files):
        assert yaml.safe_load(open(first))["/**"]["ros__parameters"] == {"value": k}
        assert yaml.safe_load(open(second))["/**"]["ros__parameters"] == {"other": -k}
    assert ros_args(specs[3], tmp_path)[:3] == ["--ros-args", "-r", "__node:=exe3"]


# ---------------------------------------------------------------------------------- config checks
@dataclasses.dataclass
class _Cfg:
    mode: str = "a"
    rate_hz: float = 10.0
    margin: float = 0.0
    count: int = 1
    scale: float = 0.5
    box: list = dataclasses.field(default_factory=lambda: [0, 1, 2])


@pytest.mark.parametrize(
    ("check", "bad", "message"),
    [
        (
            lambda c, v: v.one_of(c, "mode", ("a", "b")),
            {"mode": "z"},
            "mode must be one of ('a', 'b'). Got 'z'",
        ),
        (
            lambda c, v: v.positive(c, "rate_hz", unit=" Hz"),
            {"rate_hz": float("nan")},
            "rate_hz must be > 0 Hz. Got nan",
        ),
        (lambda c, v: v.non_negative(c, "margin"), {"margin": -1.0}, "margin must be >= 0. Got -1.0"),
        (
            lambda c, v: v.non_negative(c, "margin", finite=True),
            {"margin": float("inf")},
            "margin must be >= 0. Got inf",
        ),
        (lambda c, v: v.at_least(c, "count", 1, bound="n=1"), {"count": 0}, "count must be >= n=1. Got 0"),
        (
            lambda c, v: v.in_range(c, "scale", 0, 1, low_open=True),
            {"scale": 0.0},
            "scale must be in (0, 1]. Got 0.0",
        ),
        (lambda c, v: v.in_range(c, "count", 1, 9), {"count": 10}, "count must be in [1, 9]. Got 10"),
        (
            lambda c, v: v.finite_floats(c, "box", 3, "[x, y, z]"),
            {"box": [0, 1]},
            "box must be 3 finite numbers [x, y, z]. Got [0, 1]",
        ),
    ],
)
def test_validation_messages_say_what_and_what_was_expected(check, bad, message):
    from dp_common.core import validation

    check(_Cfg(), validation)  # the defaults pass
    with pytest.raises(ValueError) as err:
        check(_Cfg(**bad), validation)
    assert str(err.value) == message


def test_finite_floats_stores_floats_back_and_allows_empty_when_asked():
    from dp_common.core.validation import finite_floats

    cfg = _Cfg(box=[1, 2, 3])
    assert finite_floats(cfg, "box", 3, "[x, y, z]") == [1.0, 2.0, 3.0]
    assert cfg.box == [1.0, 2.0, 3.0] and all(isinstance(v, float) for v in cfg.box)
    empty = _Cfg(box=[])
    assert finite_floats(empty, "box", 7, "pose", allow_empty=True) == []
    with pytest.raises(ValueError, match="must be empty or 7 finite numbers pose"):
        finite_floats(_Cfg(box=[1.0] * 6 + [float("nan")]), "box", 7, "pose", allow_empty=True)


def test_param_is_a_documented_dataclass_field():
    from dp_common.core.validation import param

    @dataclasses.dataclass
    class C:
        x: float = param("X in m.", default=1.5)
        names: list = param("Names.", default_factory=list)

    fields = {f.name: f for f in dataclasses.fields(C)}
    assert fields["x"].metadata["help"] == "X in m." and C().x == 1.5
    assert fields["names"].metadata["help"] == "Names." and C().names == [] and C().names is not C().names
