"""dp_control's MoveIt configuration (config/moveit/) and the MoveItPy parameters robot.launch.py builds.

MoveIt is not installed here: the SRDF is checked against the URDF MoveIt is given (every group joint
and link, the end effector, named states within the URDF limits, every disabled collision pair against
the collision geometry, with pinocchio), the YAML files against dp_control's own limits and controllers,
and the launch file's parameters by starting a ROS node the way MoveItPy builds its node (rclcpp
NodeOptions: allow undeclared, declare from overrides) from the very command line control_node gets.
"""

from __future__ import annotations

import importlib.util
import json
import pathlib
import shutil
import subprocess
import sys
import xml.etree.ElementTree as ET

import numpy as np
import pytest
import yaml

from dp_common.launcher import load_launch_file, parse_launch_args, ros_args
from dp_control.command_publishers import TRAJECTORY_TOPIC
from dp_control.moveit_params import flatten, humble_pipeline, missing_parameters, moveit_parameters

ROOT = pathlib.Path(__file__).resolve().parents[4]
CONFIG = ROOT / "ros2_ws" / "src" / "dp_control" / "config"
MOVEIT = CONFIG / "moveit"
CONTROL = yaml.safe_load((CONFIG / "control.yaml").read_text())["control_node"]["ros__parameters"]
ROBOT_LAUNCH = ROOT / "launch" / "robot.launch.py"


def _load_yaml(name: str) -> dict:
    return yaml.safe_load((MOVEIT / name).read_text())


@pytest.fixture(scope="module")
def launch():
    return load_launch_file(ROBOT_LAUNCH)


@pytest.fixture(scope="module")
def urdf(launch):
    """The URDF robot.launch.py hands MoveIt by default (example-robot-data's Panda)."""
    root = ET.fromstring(launch.robot_description_text(""))
    links = {link.get("name"): link for link in root.findall("link")}
    joints = {j.get("name"): j for j in root.findall("joint")}
    return links, joints


@pytest.fixture(scope="module")
def srdf():
    return ET.parse(MOVEIT / "panda.srdf").getroot()


def _chain_joints(joints: dict, base: str, tip: str) -> list[str]:
    by_child = {j.find("child").get("link"): name for name, j in joints.items()}
    chain, link = [], tip
    while link != base:
        assert link in by_child, f"{tip} is not below {base} in the URDF"
        chain.append(by_child[link])
        link = joints[by_child[link]].find("parent").get("link")
    return chain[::-1]


def _group(srdf, name):
    found = [g for g in srdf.findall("group") if g.get("name") == name]
    assert len(found) == 1, f"SRDF has {len(found)} groups named {name}"
    return found[0]


def _group_joints(srdf, joints: dict, name: str) -> list[str]:
    g = _group(srdf, name)
    names = [j.get("name") for j in g.findall("joint")]
    for chain in g.findall("chain"):
        names += _chain_joints(joints, chain.get("base_link"), chain.get("tip_link"))
    return names


def test_yaml_files_load():
    for path in sorted(MOVEIT.glob("*.yaml")):
        data = yaml.safe_load(path.read_text())
        assert isinstance(data, dict) and data, f"{path.name} is not a non-empty mapping"


def test_srdf_groups_match_the_urdf(urdf, srdf):
    links, joints = urdf
    assert srdf.get("name") == "panda"
    arm = _group_joints(srdf, joints, "panda_arm")
    active = [j for j in arm if joints[j].get("type") != "fixed"]
    assert active == CONTROL["joint_names"], "panda_arm must be control_node's joint_names, in order"
    hand = _group(srdf, "hand")
    for link in hand.findall("link"):
        assert link.get("name") in links
    hand_joints = [j.get("name") for j in hand.findall("joint")]
    assert set(hand_joints) == {"panda_finger_joint1", "panda_finger_joint2"}
    assert CONTROL["gripper_joint"] in hand_joints
    for chain in _group(srdf, "panda_arm").findall("chain"):
        assert chain.get("base_link") in links and chain.get("tip_link") in links
    (ee,) = srdf.findall("end_effector")
    assert (
        ee.get("parent_link") in links and ee.get("group") == "hand" and ee.get("parent_group") == "panda_arm"
    )
    tip = _group(srdf, "panda_arm").find("chain").get("tip_link")
    assert ee.get("parent_link") == tip, "the hand must hang from the arm group's tip link"
    (vj,) = srdf.findall("virtual_joint")
    assert vj.get("child_link") in links and vj.get("type") == "fixed"


def test_named_states_are_within_the_urdf_limits(urdf, srdf):
    _, joints = urdf
    states = {(s.get("name"), s.get("group")): s for s in srdf.findall("group_state")}
    assert {("ready", "panda_arm"), ("home", "panda_arm"), ("open", "hand"), ("close", "hand")} <= set(states)
    for (name, group), state in states.items():
        group_joints = [j for j in _group_joints(srdf, joints, group) if joints[j].get("type") != "fixed"]
        values = {j.get("name"): float(j.get("value")) for j in state.findall("joint")}
        assert sorted(values) == sorted(group_joints), f"state {name} must set every joint of {group}"
        for joint, value in values.items():
            limit = joints[joint].find("limit")
            lo, hi = float(limit.get("lower")), float(limit.get("upper"))
            assert lo <= value <= hi, f"state {name}: {joint} = {value} outside [{lo}, {hi}]"
    from dp_sim.core.robot import HOME_Q  # the simulated episodes' start pose is the 'ready' state

    ready = states[("ready", "panda_arm")]
    q = [float(ready.find(f"joint[@name='{j}']").get("value")) for j in CONTROL["joint_names"]]
    np.testing.assert_allclose(q, HOME_Q, atol=1e-5)


def _disabled(srdf) -> dict:
    pairs = {}
    for d in srdf.findall("disable_collisions"):
        key = frozenset((d.get("link1"), d.get("link2")))
        assert len(key) == 2 and key not in pairs, f"duplicate or self pair {sorted(key)}"
        pairs[key] = d.get("reason")
    return pairs


def test_disabled_collision_pairs_name_real_links_with_geometry(urdf, srdf):
    links, _ = urdf
    pairs = _disabled(srdf)
    assert pairs
    for pair, reason in pairs.items():
        for link in pair:
            assert link in links, f"disabled pair {sorted(pair)} names {link}, not a URDF link"
            assert links[link].find("collision") is not None, f"{link} has no collision geometry"
        assert reason in ("Adjacent", "Default", "Always", "Never")


def test_disabled_collision_pairs_agree_with_the_geometry(srdf):
    """Adjacent pairs are all disabled; 'Never' pairs do not collide in fresh random states (another
    seed than the generator's); the 'Default' pair collides at MoveIt's default state."""
    spec = importlib.util.spec_from_file_location(
        "dp_srdf_gen", ROOT / "scripts" / "moveit_disabled_collisions.py"
    )
    gen = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(gen)
    from dp_sim.core.robot import find_panda_urdf

    urdf_path = find_panda_urdf()
    pairs = _disabled(srdf)
    adjacent = gen.adjacent_pairs(urdf_path)
    assert adjacent and all(pairs.get(p) == "Adjacent" for p in adjacent)
    assert {p for p, r in pairs.items() if r == "Adjacent"} == adjacent
    checker = gen.SelfCollision(urdf_path)
    default_contacts = checker.colliding(checker.default_state())
    for p, r in pairs.items():
        if r == "Default":
            assert p in default_contacts, f"{sorted(p)} is marked Default but does not collide there"
    never = {p for p, r in pairs.items() if r == "Never"}
    rng = np.random.default_rng(12345)
    for _ in range(300):
        hit = checker.colliding(checker.random_state(rng)) & never
        assert not hit, f"pairs marked Never collide: {[sorted(p) for p in hit]}"
    # the check can fail: a real self-collision pair would be caught
    wrist = frozenset(("panda_hand", "panda_link5"))
    assert wrist not in pairs and wrist in default_contacts


def test_joint_limits_match_dp_controls():
    moveit = _load_yaml("joint_limits.yaml")
    dp = yaml.safe_load((CONFIG / "joint_limits.yaml").read_text())["joint_limits"]
    for joint, lim in dp.items():
        m = moveit["joint_limits"][joint]
        assert m["has_velocity_limits"] and m["has_acceleration_limits"]
        assert m["max_velocity"] == pytest.approx(lim["max_velocity"])
        assert m["max_acceleration"] == pytest.approx(lim["max_acceleration"])
    for joint, m in moveit["joint_limits"].items():
        for key, value in m.items():
            assert isinstance(value, bool) or isinstance(value, float), f"{joint}.{key} must be a float"
    assert moveit["default_velocity_scaling_factor"] == CONTROL["velocity_scale"]
    assert moveit["default_acceleration_scaling_factor"] == CONTROL["acceleration_scale"]


def test_controllers_kinematics_and_pipeline_name_srdf_groups(urdf, srdf):
    _, joints = urdf
    groups = {g.get("name") for g in srdf.findall("group")}
    assert set(_load_yaml("kinematics.yaml")) <= groups
    assert (
        _load_yaml("kinematics.yaml")["panda_arm"]["kinematics_solver"]
        == "kdl_kinematics_plugin/KDLKinematicsPlugin"
    )
    ompl = _load_yaml("ompl_planning.yaml")
    assert {k for k in ompl if k in groups} == {"panda_arm", "hand"}
    for g in ("panda_arm", "hand"):
        assert set(ompl[g]["planner_configs"]) <= set(ompl["planner_configs"])
    controllers = _load_yaml("moveit_controllers.yaml")["moveit_simple_controller_manager"]
    (name,) = controllers["controller_names"]
    assert name == TRAJECTORY_TOPIC.split("/")[0], (
        "MoveIt must execute through the arm controller dp_control uses"
    )
    assert controllers[name]["joints"] == CONTROL["joint_names"]
    assert all(j in joints for j in controllers[name]["joints"])
    py = _load_yaml("moveit_py.yaml")
    assert py["plan_request_params"]["planning_pipeline"] in py["planning_pipelines"]["pipeline_names"]
    assert py["plan_request_params"]["planner_id"] in ompl["planner_configs"]


def _control_spec(launch, *argv):
    specs = launch.node_specs(parse_launch_args(launch.ARGUMENTS, ["checkpoint:=/tmp/ckpt", *argv]))
    (spec,) = [s for s in specs if s.executable == "control_node"]
    return spec


def test_robot_launch_gives_control_node_every_moveitpy_parameter(launch, srdf):
    spec = _control_spec(launch, "backend:=moveit")
    params = spec.parameters[-1]
    assert isinstance(params, dict)
    groups = list(_load_yaml("kinematics.yaml"))
    joints = list(_load_yaml("joint_limits.yaml")["joint_limits"])
    assert missing_parameters(params, groups, joints) == []
    assert params["robot_description_semantic"] == (MOVEIT / "panda.srdf").read_text()
    assert "<robot" in params["robot_description"] and "package://" not in params["robot_description"]
    # other backends get no MoveIt parameters
    assert not any(isinstance(p, dict) and "robot_description" in p for p in _control_spec(launch).parameters)
    # the check is not vacuous
    broken = flatten(params)
    del broken["moveit_simple_controller_manager.joint_trajectory_controller.action_ns"]
    del broken["robot_description_kinematics.panda_arm.kinematics_solver"]
    assert missing_parameters(broken, groups, joints) == [
        "robot_description_kinematics.panda_arm.kinematics_solver",
        "moveit_simple_controller_manager.joint_trajectory_controller.action_ns",
    ]


PROBE = """
import json, sys, rclpy
from rclpy.node import Node
rclpy.init(args=sys.argv)
# MoveItPy's node: NodeOptions().allow_undeclared_parameters(true)
#   .automatically_declare_parameters_from_overrides(true) (moveit_py moveit_cpp.cpp)
node = Node("dp_control_moveit", allow_undeclared_parameters=True,
            automatically_declare_parameters_from_overrides=True)
out = {name: [p.type_.name, p.value] for name, p in node._parameters.items()}
node.destroy_node(); rclpy.shutdown()
print(json.dumps(out))
"""


def test_moveitpy_node_gets_the_parameters_with_their_types(launch, tmp_path):
    """The command line control_node gets (dp_common.launcher) gives a node built like MoveItPy's every
    required parameter, with the types MoveIt reads (string arrays, doubles)."""
    spec = _control_spec(launch, "backend:=moveit")
    argv = ros_args(spec, tmp_path)
    proc = subprocess.run([sys.executable, "-c", PROBE, *argv], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    got = json.loads(proc.stdout.strip().splitlines()[-1])
    groups = list(_load_yaml("kinematics.yaml"))
    joints = list(_load_yaml("joint_limits.yaml")["joint_limits"])
    assert missing_parameters({k: v for k, (_, v) in got.items()}, groups, joints) == []
    assert got["moveit_simple_controller_manager.controller_names"][0] == "STRING_ARRAY"
    assert got["planning_pipelines.pipeline_names"][0] == "STRING_ARRAY"
    assert got["ompl.planning_plugins"][0] == "STRING_ARRAY"
    assert got["robot_description"][0] == "STRING" and got["robot_description_semantic"][0] == "STRING"
    for name, (kind, _) in got.items():
        if name.startswith("robot_description_planning.joint_limits.") and name.endswith(
            ("velocity", "acceleration")
        ):
            assert kind == "DOUBLE", f"{name} is {kind}; MoveIt reads a double"
    assert got["plan_request_params.planning_attempts"][0] == "INTEGER"
    assert "backend" not in got or got["backend"][1] == "moveit"  # control.yaml is keyed control_node


def test_humble_gets_its_pipeline_format():
    params = moveit_parameters("<robot name='r'/>", MOVEIT, distro="humble")
    ompl = params["ompl"]
    assert ompl["planning_plugin"] == "ompl_interface/OMPLPlanner" and "planning_plugins" not in ompl
    adapters = ompl["request_adapters"].split()
    assert "default_planner_request_adapters/AddTimeOptimalParameterization" in adapters
    assert all(a.startswith("default_planner_request_adapters/") for a in adapters)
    assert "response_adapters" not in ompl
    assert humble_pipeline({"planning_plugins": ["p"]})["request_adapters"] == ""
    assert missing_parameters(params, ["panda_arm"], [], distro="humble") == []
    assert missing_parameters(params, ["panda_arm"], []) == ["ompl.planning_plugins"]


def test_user_config_dir_errors_say_what_is_missing(tmp_path):
    user = tmp_path / "fr3_moveit"
    shutil.copytree(MOVEIT, user)
    (user / "moveit_controllers.yaml").rename(user / "fr3_controllers.yaml")
    (user / "ros2_controllers.yaml").write_text("controller_manager: {}\n")
    params = moveit_parameters("<robot name='r'/>", user)  # a Setup-Assistant-style controllers file
    assert params["moveit_simple_controller_manager"]["controller_names"] == ["joint_trajectory_controller"]
    (user / "moveit_py.yaml").unlink()  # falls back to dp_control's
    assert moveit_parameters("<robot name='r'/>", user)["planning_pipelines"]["pipeline_names"] == ["ompl"]
    (user / "ompl_planning.yaml").unlink()
    with pytest.raises(FileNotFoundError, match="ompl_planning.yaml is missing"):
        moveit_parameters("<robot name='r'/>", user)
    (user / "copy.srdf").write_text("<robot/>")
    with pytest.raises(ValueError, match="exactly one .srdf"):
        moveit_parameters("<robot name='r'/>", user)
    with pytest.raises(FileNotFoundError, match="does not exist"):
        moveit_parameters("<robot name='r'/>", tmp_path / "nowhere")
    with pytest.raises(ValueError, match="URDF text"):
        moveit_parameters("panda.urdf", MOVEIT)


@pytest.mark.parametrize(
    ("ros_args", "namespace", "expected"),
    [
        ([], None, {}),
        (["-r", "joint_states:=/franka/joint_states"], None, {"joint_states": "/franka/joint_states"}),
        ([], "/arm1", {"joint_states": "/arm1/joint_states"}),
    ],
)
def test_moveitpy_listens_where_control_node_does(ros_args, namespace, expected):
    """MoveItPy's node gets no process remappings: control_node's resolution is handed to it."""
    import rclpy
    from rclpy.context import Context
    from rclpy.node import Node

    from dp_control.backends import moveit_remappings

    context = Context()
    rclpy.init(args=["control_node", "--ros-args", *ros_args], context=context)
    try:
        node = Node("control_node", namespace=namespace, context=context)
        assert moveit_remappings(node) == expected
        node.destroy_node()
    finally:
        context.try_shutdown()
