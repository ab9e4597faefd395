"""control_node in a real rclpy graph: each controller preset (and a topic override) commands the arm
on that controller's topic with its message type, and nothing goes to the other presets' topics."""

from __future__ import annotations

import numpy as np
import pytest
from rclpy.executors import SingleThreadedExecutor
from rclpy.node import Node
from rclpy.parameter import Parameter

from dp_common.msgs import now_ns, s_to_ns
from dp_common.msgs.chunk import build_chunk
from dp_common.msgs.joint_state import build_joint_state
from dp_common.testing import spin_for, spin_until
from dp_control.core import CONTROLLER_PRESETS

JOINTS = [f"panda_joint{i}" for i in range(1, 8)]
Q0 = np.array([0.0, -0.4, 0.0, -2.0, 0.0, 1.6, 0.8])
TYPE_OF_KIND = {"trajectory": "JointTrajectory", "position": "Float64MultiArray"}
# One DDS participant cannot subscribe to a topic with two types: every preset's topic with its type.
PRESET_SINKS = {(p.topic, TYPE_OF_KIND[p.kind]) for p in CONTROLLER_PRESETS.values()}


class Probe:
    """Echoes the command as joint_states, publishes chunks at 10 Hz, records every candidate topic."""

    def __init__(self, context, control, expected: tuple[str, str]):
        from sensor_msgs.msg import JointState
        from std_msgs.msg import Float64MultiArray
        from trajectory_msgs.msg import JointTrajectory

        from dp_common.qos import chunk_qos, reliable_qos
        from dp_msgs.msg import ActionChunk

        self.node = n = Node("preset_probe", context=context)
        self.control = control
        self.js_pub = n.create_publisher(JointState, "joint_states", reliable_qos(50))
        self.chunk_pub = n.create_publisher(ActionChunk, "dp/action_chunk", chunk_qos())
        self.received: dict[tuple[str, str], list] = {}
        types = {"JointTrajectory": JointTrajectory, "Float64MultiArray": Float64MultiArray}
        for topic, type_name in sorted(PRESET_SINKS | {expected}):
            self.received[(topic, type_name)] = []
            n.create_subscription(types[type_name], topic, self.received[(topic, type_name)].append, 10)
        self.chunk_id = 0
        n.create_timer(0.01, self._state)
        n.create_timer(0.1, self._chunk)

    def _state(self):
        q = self.control.command_positions()
        self.js_pub.publish(build_joint_state(now_ns(self.node), JOINTS, Q0 if q is None else q))

    def _chunk(self):
        self.chunk_id += 1
        stamp = now_ns(self.node) - s_to_ns(0.05)
        rows = np.tile(Q0, (15, 1))
        self.chunk_pub.publish(build_chunk(stamp, rows, JOINTS, 0.1, chunk_id=self.chunk_id, policy_id="t"))

    def got(self) -> dict[tuple[str, str], int]:
        return {k: len(v) for k, v in self.received.items() if v}


CASES = [
    # (parameters, expected topic, expected message type)
    ({}, "joint_trajectory_controller/joint_trajectory", "JointTrajectory"),  # default: as before
    ({"controller_preset": "generic_jtc"}, "joint_trajectory_controller/joint_trajectory", "JointTrajectory"),
    (
        {"backend": "position", "controller_preset": "forward_position"},
        "forward_position_controller/commands",
        "Float64MultiArray",
    ),
    ({"controller_preset": "franka_fr3"}, "fr3_arm_controller/joint_trajectory", "JointTrajectory"),
    ({"controller_preset": "ur"}, "scaled_joint_trajectory_controller/joint_trajectory", "JointTrajectory"),
    (
        {"controller_preset": "ur", "command_topic": "/lab/arm/commands"},
        "/lab/arm/commands",
        "JointTrajectory",
    ),
    (
        {"backend": "position", "command_topic": "/lab/arm/commands"},
        "/lab/arm/commands",
        "Float64MultiArray",
    ),
]


@pytest.mark.parametrize(("params", "topic", "type_name"), CASES, ids=lambda c: str(c))
def test_preset_commands_its_controller_topic(rclpy_context, params, topic, type_name):
    from dp_control.control_node import ControlNode

    overrides = {"autostart": True, "gripper_joint": "", "controller_check_timeout_s": 0.2, **params}
    control = ControlNode(
        context=rclpy_context, parameter_overrides=[Parameter(k, value=v) for k, v in overrides.items()]
    )
    key = (topic, type_name)
    probe = Probe(rclpy_context, control, key)
    ex = SingleThreadedExecutor(context=rclpy_context)
    ex.add_node(control)
    ex.add_node(probe.node)
    try:
        assert spin_until(ex, lambda: len(probe.received[key]) >= 10, 10.0), probe.got()
        spin_for(ex, 0.2)
        assert set(probe.got()) == {key}, f"commands went elsewhere too: {probe.got()}"
        msg = probe.received[key][-1]
        if type_name == "JointTrajectory":
            assert list(msg.joint_names) == JOINTS and len(msg.points) >= 2
        else:
            np.testing.assert_allclose(msg.data, Q0, atol=1e-6)
        assert topic in control._commands.describe()
    finally:
        ex.shutdown()
        probe.node.destroy_node()
        control.destroy_node()


def _control_params(launch_name: str, argv: list[str]) -> dict:
    """control_node's ControlConfig fields from a launch file's node list: YAML file(s), then dicts."""
    import dataclasses
    import pathlib

    import yaml

    from dp_common.launcher import load_launch_file, parse_launch_args

    root = pathlib.Path(__file__).resolve().parents[4]
    module = load_launch_file(root / "launch" / launch_name)
    specs = module.node_specs(parse_launch_args(module.ARGUMENTS, argv))
    (spec,) = [s for s in specs if s.executable == "control_node"]
    params: dict = {}
    for p in spec.parameters:
        if isinstance(p, dict):
            params.update(p)
        else:
            params.update(yaml.safe_load(pathlib.Path(p).read_text())["control_node"]["ros__parameters"])
    from dp_control.core import ControlConfig

    fields = {f.name for f in dataclasses.fields(ControlConfig)}
    return {k: v for k, v in params.items() if k in fields}  # use_sim_time is a node parameter


def test_robot_launch_arguments_select_preset_and_gripper_action():
    from dp_control.core import ControlConfig, resolve_command_topic

    argv = ["checkpoint:=/tmp/ckpt", "controller_preset:=ur", "gripper_backend:=action",
            "gripper_action_name:=/robotiq_gripper_controller/gripper_cmd"]  # fmt: skip
    cfg = ControlConfig(**_control_params("robot.launch.py", argv))
    assert resolve_command_topic(cfg.backend, cfg.controller_preset, cfg.command_topic)[2] == (
        "scaled_joint_trajectory_controller/joint_trajectory"
    )
    assert (cfg.gripper_backend, cfg.gripper_action_name) == (
        "action",
        "/robotiq_gripper_controller/gripper_cmd",
    )
    argv = [
        "checkpoint:=/tmp/ckpt",
        "controller_preset:=franka_fr3",
        "command_topic:=/fr3/arm/joint_trajectory",
    ]
    cfg = ControlConfig(**_control_params("robot.launch.py", argv))
    assert resolve_command_topic(cfg.backend, cfg.controller_preset, cfg.command_topic)[2] == (
        "/fr3/arm/joint_trajectory"
    )


@pytest.mark.parametrize("launch_name", ["robot.launch.py", "sim.launch.py"])
def test_launch_defaults_keep_the_commands_of_before(launch_name):
    """Without the new arguments both launches command joint_trajectory_controller and the gripper
    topic exactly as before presets existed (the simulator's measured behaviour)."""
    from dp_control.core import ControlConfig, resolve_command_topic

    argv = ["checkpoint:=/tmp/ckpt"] if launch_name == "robot.launch.py" else []
    cfg = ControlConfig(**_control_params(launch_name, argv))
    assert resolve_command_topic(cfg.backend, cfg.controller_preset, cfg.command_topic)[2] == (
        "joint_trajectory_controller/joint_trajectory"
    )
    assert (cfg.gripper_backend, cfg.gripper_topic) == ("topic", "gripper_controller/commands")
    assert cfg.gripper_hysteresis_m == 0.0 and cfg.gripper_min_dwell_s == 0.0
