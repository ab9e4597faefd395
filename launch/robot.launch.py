"""dp on a real arm: perception -> policy -> control, wired to the camera and ros2_control.

    ros2 launch launch/robot.launch.py checkpoint:=/path/to/ckpt camera_topic:=/camera/depth/color/points
    ros2 launch launch/robot.launch.py checkpoint:=/path/to/ckpt controller_preset:=franka_fr3 \
        gripper_backend:=action gripper_action_name:=/fr3_gripper/gripper_action control_config:=fr3.yaml
    python -m dp_common.launcher launch/robot.launch.py checkpoint:=/path/to/ckpt   # without launch_ros

The policy and control start inactive (unless autostart:=true): enable them with
    ros2 service call /policy_node/activate std_srvs/srv/SetBool "{data: true}"
    ros2 service call /control_node/enable std_srvs/srv/SetBool "{data: true}"

backend:=moveit hands control_node the whole MoveItPy parameter set (URDF, SRDF, kinematics, joint
limits, OMPL pipeline, controllers; see dp_control.moveit_params), by default dp_control's config for
example-robot-data's Panda. For another arm, point at its URDF and a MoveIt config directory, e.g. a
Franka FR3 (franka_description, franka_fr3_moveit_config):
    xacro <franka_description>/robots/fr3/fr3.urdf.xacro > fr3.urdf
    mkdir fr3_moveit; cp <franka_fr3_moveit_config>/config/{kinematics,ompl_planning}.yaml fr3_moveit/
    # + fr3.srdf (or its .srdf.xacro), joint_limits.yaml, moveit_controllers.yaml naming fr3_arm_controller
    ros2 launch launch/robot.launch.py backend:=moveit robot_description_file:=fr3.urdf
        moveit_config_dir:=fr3_moveit control_config:=fr3.yaml  # fr3_joint1..7, moveit_group fr3_arm
A UR arm likewise: ur_description's urdf/ur.urdf.xacro (ur_type:=ur5e), ur_moveit_config's config/ files
and srdf/ur.srdf.xacro, moveit_group ur_manipulator, controller scaled_joint_trajectory_controller. The
directory needs one .srdf (or .srdf.xacro), kinematics.yaml, joint_limits.yaml, a *controllers.yaml and
<pipeline>_planning.yaml for each pipeline of moveit_py.yaml (dp_control's moveit_py.yaml when absent).

TF and robot_description on the robot are the user's: franka_ros2's and ur_robot_driver's launch files
start their own robot_state_publisher, so this file starts none unless robot_state_publisher:=true
(for a driver that publishes only joint_states): then it publishes robot_description_file's URDF and
the TF of its links, and must be the only robot_state_publisher of the arm.

backend:=servo streams JointJog to a running MoveIt Servo (servo_node, command_in_type: speed_units):
    ros2 launch launch/robot.launch.py checkpoint:=/path/to/ckpt backend:=servo servo_interface:=humble
"""

from __future__ import annotations

import pathlib

from dp_common.launcher import (
    LaunchArgument,
    NodeSpec,
    as_bool,
    fastdds_profile_env,
    is_installed,
    launch_description,
    package_file,
)

REPO = pathlib.Path(__file__).resolve().parents[1]

ARGUMENTS = [
    LaunchArgument("checkpoint", "", "policy checkpoint directory (required)"),
    LaunchArgument(
        "camera_topic", "camera/points", "PointCloud2 topic of the depth camera (remapped to camera/points)"
    ),
    LaunchArgument("joint_states_topic", "joint_states", "JointState topic of the robot"),
    LaunchArgument(
        "backend",
        "trajectory",
        "control backend: trajectory (joint_trajectory_controller), position "
        "(forward_position_controller), moveit (moveit_py: every command checked against the current "
        "planning scene) or servo (JointJog to MoveIt Servo; servo_node / servo_interface in control_config)",
    ),
    LaunchArgument(
        "controller_preset",
        "",
        "arm controller: generic_jtc (joint_trajectory_controller), forward_position (backend:=position), "
        "franka_fr3 (fr3_arm_controller), ur (scaled_joint_trajectory_controller); '' = control config / "
        "follow backend. Joint names still come from control_config",
    ),
    LaunchArgument("command_topic", "", "arm command topic, overrides the preset's ('' = the preset's)"),
    LaunchArgument(
        "gripper_backend",
        "",
        "gripper: topic (Float64MultiArray) or action (control_msgs/GripperCommand); '' = control config",
    ),
    LaunchArgument(
        "gripper_action_name",
        "",
        "GripperCommand action, e.g. /fr3_gripper/gripper_action (franka_gripper), "
        "/robotiq_gripper_controller/gripper_cmd; '' = control config",
    ),
    LaunchArgument(
        "servo_interface",
        "",
        "backend:=servo: MoveIt Servo's ROS interface, jazzy (Jazzy, Kilted, Rolling) or humble; "
        "'' = control config (jazzy)",
    ),
    LaunchArgument(
        "servo_node", "", "backend:=servo: MoveIt Servo's node name; '' = control config (servo_node)"
    ),
    LaunchArgument("device", "auto", "policy device: auto, cuda or cpu"),
    LaunchArgument(
        "perception_config", "", "extra perception parameter file (crop box, camera_to_target, ...)"
    ),
    LaunchArgument("control_config", "", "extra control parameter file (joint names, limits, ...)"),
    LaunchArgument(
        "autostart", "false", "activate policy and control at start-up (default: wait for the services)"
    ),
    LaunchArgument("rviz", "false", "start rviz2 with launch/dp.rviz"),
    LaunchArgument(
        "moveit_config_dir",
        "",
        "backend:=moveit: MoveIt configuration directory (one .srdf, kinematics.yaml, joint_limits.yaml, "
        "moveit_controllers.yaml, ompl_planning.yaml; '' = dp_control's config/moveit for the Panda)",
    ),
    LaunchArgument(
        "robot_description_file",
        "",
        "backend:=moveit: URDF (or .xacro) of the arm, the same the robot publishes on robot_description "
        "('' = example-robot-data's Panda)",
    ),
    LaunchArgument(
        "robot_state_publisher",
        "false",
        "true: start robot_state_publisher with robot_description_file (robot_description + TF of the "
        "arm's links) for a driver that publishes only joint_states; false: the robot's own TF tree",
    ),
]


def robot_description_text(path: str) -> str:
    """URDF text of `path`, or of example-robot-data's Panda (file:// mesh URIs) when empty."""
    from dp_control.moveit_params import read_robot_description

    if path:
        return read_robot_description(path)
    try:  # the URDF dp_sim simulates, with file:// mesh URIs MoveIt resolves without a ROS package
        from dp_sim.core.robot import find_panda_urdf
        from dp_sim.sim_node import urdf_with_file_uris
    except ImportError as exc:
        raise ValueError(
            f"backend:=moveit needs robot_description_file:=/path/to/robot.urdf (the default, "
            f"example-robot-data's Panda, is found through dp_sim, which does not import: {exc})"
        ) from exc
    return urdf_with_file_uris(find_panda_urdf())


def moveit_node_parameters(args: dict) -> dict:
    """The MoveItPy parameters control_node gets with backend:=moveit (dp_control.moveit_params)."""
    from dp_control.moveit_params import moveit_parameters

    return moveit_parameters(
        robot_description_text(args["robot_description_file"]), args["moveit_config_dir"] or None
    )


def robot_state_publisher_spec(args: dict, joint_remap: list) -> NodeSpec:
    """robot_state_publisher of robot_description_file (required: the arm's own URDF, never a default)."""
    if not args["robot_description_file"]:
        raise ValueError(
            "robot_state_publisher:=true needs robot_description_file:=/path/to/arm.urdf (or .xacro), "
            "the URDF of the arm whose joint_states it turns into TF"
        )
    if not is_installed("robot_state_publisher", "robot_state_publisher"):
        raise ValueError(
            "robot_state_publisher:=true but robot_state_publisher is not installed "
            "(apt install ros-$ROS_DISTRO-robot-state-publisher)"
        )
    return NodeSpec(
        "robot_state_publisher",
        "robot_state_publisher",
        parameters=[{"robot_description": robot_description_text(args["robot_description_file"])}],
        remappings=joint_remap,
    )


def node_specs(args: dict) -> list[NodeSpec]:
    """The nodes of this launch file for the given argument values (strings)."""
    if not args["checkpoint"]:
        raise ValueError("robot.launch.py needs checkpoint:=/path/to/checkpoint_dir")
    env = fastdds_profile_env()
    autostart = as_bool(args["autostart"])
    joint_remap = [("joint_states", args["joint_states_topic"])]
    perception_params = [package_file("dp_perception", "config", "perception.yaml")]
    if args["perception_config"]:
        perception_params.append(args["perception_config"])
    control_params = [package_file("dp_control", "config", "control.yaml")]
    if args["control_config"]:
        control_params.append(args["control_config"])
    control_overrides = {"backend": args["backend"], "autostart": autostart}
    # Only what was given: an empty argument leaves control.yaml's / control_config's value.
    for name in ("controller_preset", "command_topic", "gripper_backend", "gripper_action_name",
                 "servo_interface", "servo_node"):  # fmt: skip
        if args[name]:
            control_overrides[name] = args[name]
    control_params.append(control_overrides)
    if args["backend"] == "moveit":
        control_params.append(moveit_node_parameters(args))
    specs = [
        NodeSpec(
            "dp_perception",
            "perception_node",
            parameters=perception_params,
            remappings=[("camera/points", args["camera_topic"])],
            env=env,
        ),
        NodeSpec(
            "dp_policy",
            "policy_node",
            parameters=[
                package_file("dp_policy", "config", "policy.yaml"),
                {"checkpoint": args["checkpoint"], "device": args["device"], "autostart": autostart},
            ],
            remappings=joint_remap,
            env=env,
        ),
        NodeSpec("dp_control", "control_node", parameters=control_params, remappings=joint_remap, env=env),
    ]
    if as_bool(args["robot_state_publisher"]):
        specs.append(robot_state_publisher_spec(args, joint_remap))
    if as_bool(args["rviz"]):
        # rviz's camera cloud display follows the camera remapping of perception_node
        camera_remap = [("camera/points", args["camera_topic"])]
        specs.append(
            NodeSpec(
                "rviz2", "rviz2", arguments=["-d", str(REPO / "launch" / "dp.rviz")], remappings=camera_remap
            )
        )
    return specs


def generate_launch_description():
    """Entry point of `ros2 launch`."""
    return launch_description(ARGUMENTS, node_specs)
