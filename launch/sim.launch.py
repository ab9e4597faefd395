"""Closed loop in simulation: MuJoCo arm + camera -> perception -> policy -> control -> simulated arm.

    ros2 launch launch/sim.launch.py                          # with launch_ros
    python -m dp_common.launcher launch/sim.launch.py         # same nodes, without launch_ros
    python -m dp_common.launcher launch/sim.launch.py --show-args

Every node runs on the simulator's /clock (use_sim_time), each in its own process.

TF for rviz (robot_state_publisher:=auto, the default): sim_node publishes no TF. Where the ROS tools
are installed, this file adds them, one authority per frame:
  robot_state_publisher         panda_link0 -> every arm and finger link (from sim_node's joint_states;
                                the same URDF sim_node publishes on robot_description, whose topic
                                it does not publish: remapped away, sim_node stays its only publisher)
  static_transform_publisher    world -> panda_link0 (identity: the sim's world is the robot base)
  static_transform_publisher    world -> camera_optical_frame (the nominal camera pose,
                                perception_sim.yaml's camera_to_target, as perception uses it)
Where they are missing (as on the development machines) nothing is added and the launch log says so;
the markers of policy_node and control_node are then drawn in `world` directly (marker_frame), so they
show without TF; the robot model and the raw camera cloud need the TF above.
"""

from __future__ import annotations

import logging
import pathlib

import yaml

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
ORACLE = "oracle"  # checkpoint:=oracle: the oracle baseline (no perception: it reads the true poses)
WORLD_FRAME = "world"  # perception's target_frame in the sim; its origin is the robot base
BASE_FRAME = "panda_link0"  # the URDF's root link
_log = logging.getLogger("dp.sim.launch")

ARGUMENTS = [
    LaunchArgument(
        "checkpoint",
        str(REPO / "checkpoints" / "sim_reach_dp3"),
        "policy checkpoint directory (config.json + model.safetensors + normalizer), or 'oracle': "
        "dp_sim's oracle_node (scripted expert on the true object poses) in the policy's place",
    ),
    LaunchArgument(
        "backend",
        "trajectory",
        "control backend: trajectory (joint_trajectory_controller topic) or position "
        "(forward_position_controller)",
    ),
    LaunchArgument(
        "handover",
        "ensemble",
        "control hand-over between chunks: replace, blend or ensemble (ACT temporal ensembling; "
        "the shipped policy hovers above the cube with replace, see its MODEL_CARD.md)",
    ),
    LaunchArgument("policy_rate_hz", "10.0", "policy inference rate on the sim clock (Hz)"),
    LaunchArgument("real_time_factor", "1.0", "simulated seconds per wall-clock second"),
    LaunchArgument("seed", "0", "seed of the first simulated episode (object poses)"),
    LaunchArgument("task", "reach", "simulated task: reach, reach_bimodal, lift, place or place_bimodal"),
    LaunchArgument("autostart", "true", "activate policy and control at start-up"),
    LaunchArgument("device", "cpu", "policy device: auto, cuda or cpu"),
    LaunchArgument("rviz", "false", "start rviz2 with launch/dp.rviz"),
    LaunchArgument(
        "robot_state_publisher",
        "auto",
        "TF for rviz: auto = start robot_state_publisher (arm links) and tf2_ros static transforms "
        "(world -> panda_link0, world -> camera) where installed, true = required, false = none",
    ),
]


def _perception_yaml(task: str) -> str:
    """dp_sim's perception parameters for `task` (the file make_dataset uses for it)."""
    name = "perception_sim.yaml" if task.startswith("reach") else "perception_sim_manip.yaml"
    return package_file("dp_sim", "config", name)


def _static_tf(name: str, parent: str, child: str, pose) -> NodeSpec:
    """tf2_ros static_transform_publisher of `child` in `parent`, pose [x, y, z, qx, qy, qz, qw]."""
    keys = ("--x", "--y", "--z", "--qx", "--qy", "--qz", "--qw")
    arguments = [a for k, v in zip(keys, pose, strict=True) for a in (k, str(float(v)))]
    return NodeSpec(
        "tf2_ros",
        "static_transform_publisher",
        name=name,
        arguments=[*arguments, "--frame-id", parent, "--child-frame-id", child],
    )


def tf_specs(args: dict) -> list[NodeSpec]:
    """robot_state_publisher and the static transforms of the sim (see the module docstring), as far as
    they are installed (robot_state_publisher:=auto), required (true) or not wanted (false)."""
    mode = args["robot_state_publisher"].strip().lower()
    if mode not in ("auto", "true", "false"):
        raise ValueError(f"robot_state_publisher must be auto, true or false. Got '{mode}'")
    if mode == "false":
        return []
    have = {
        "robot_state_publisher": is_installed("robot_state_publisher", "robot_state_publisher"),
        "tf2_ros": is_installed("tf2_ros", "static_transform_publisher"),
    }
    missing = [name for name, ok in have.items() if not ok]
    if missing and mode == "true":
        raise ValueError(
            f"robot_state_publisher:=true but {missing} not installed (apt: ros-$ROS_DISTRO-<name>)"
        )
    if missing:
        _log.warning(
            "%s not installed: no TF from this launch (rviz shows the markers in %s, not the robot model "
            "or the raw camera cloud)", " and ".join(missing), WORLD_FRAME,
        )  # fmt: skip
    specs = []
    if have["robot_state_publisher"]:
        from dp_sim.core.robot import find_panda_urdf
        from dp_sim.sim_node import urdf_with_file_uris

        specs.append(
            NodeSpec(
                "robot_state_publisher",
                "robot_state_publisher",
                parameters=[
                    {"robot_description": urdf_with_file_uris(find_panda_urdf()), "use_sim_time": True}
                ],
                # sim_node is the one publisher of robot_description; robot_state_publisher's copy goes aside
                remappings=[("robot_description", "robot_state_publisher/robot_description")],
            )
        )
    if have["tf2_ros"]:
        perception = yaml.safe_load(pathlib.Path(_perception_yaml(args["task"])).read_text())
        camera = perception["/**"]["ros__parameters"]
        specs += [
            _static_tf("world_to_base_tf", WORLD_FRAME, BASE_FRAME, [0, 0, 0, 0, 0, 0, 1]),
            _static_tf("world_to_camera_tf", camera["target_frame"], camera["camera_frame"],
                       camera["camera_to_target"]),
        ]  # fmt: skip
    return specs


def node_specs(args: dict) -> list[NodeSpec]:
    """The nodes of this launch file for the given argument values (strings)."""
    sim_time = {"use_sim_time": True}
    autostart = as_bool(args["autostart"])
    env = fastdds_profile_env()
    specs = [
        NodeSpec(
            "dp_sim",
            "sim_node",
            parameters=[
                package_file("dp_sim", "config", "sim.yaml"),
                {
                    "real_time_factor": float(args["real_time_factor"]),
                    "seed": int(args["seed"]),
                    "task": args["task"],
                },
            ],
            env=env,
        ),
        NodeSpec(
            "dp_perception",
            "perception_node",
            parameters=[
                package_file("dp_perception", "config", "perception.yaml"),
                # same file make_dataset uses for the task (dp_sim.make_dataset.default_perception_yaml)
                _perception_yaml(args["task"]),
                sim_time,
            ],
            env=env,
        ),
        NodeSpec(
            "dp_policy",
            "policy_node",
            parameters=[
                package_file("dp_policy", "config", "policy.yaml"),
                {
                    **sim_time,
                    "checkpoint": args["checkpoint"],
                    "device": args["device"],
                    "autostart": autostart,
                    "marker_frame": WORLD_FRAME,  # = panda_link0 in the sim: drawn without TF
                },
            ],
            env=env,
        ),
        NodeSpec(
            "dp_control",
            "control_node",
            parameters=[
                package_file("dp_control", "config", "control.yaml"),
                # The simulated expert's targets lead the arm by up to ~0.2 rad (0.1 s of motion); the
                # robot default of 0.15 rad would refuse some of the policy's first chunks.
                {
                    **sim_time,
                    "backend": args["backend"],
                    "autostart": autostart,
                    "max_start_distance": 0.3,
                    "handover": args["handover"],
                    "marker_frame": WORLD_FRAME,  # = panda_link0 in the sim: drawn without TF
                },
            ],
            env=env,
        ),
    ]
    if args["checkpoint"] == ORACLE:  # the oracle replaces perception + policy
        oracle_params = {**sim_time, "task": args["task"], "autostart": autostart,
                         "rate_hz": float(args["policy_rate_hz"])}  # fmt: skip
        specs[1:3] = [NodeSpec("dp_sim", "oracle_node", parameters=[oracle_params], env=env)]
    specs += tf_specs(args)
    if as_bool(args["rviz"]):
        specs.append(
            NodeSpec(
                "rviz2", "rviz2", arguments=["-d", str(REPO / "launch" / "dp.rviz")], parameters=[sim_time]
            )
        )
    return specs


def generate_launch_description():
    """Entry point of `ros2 launch`."""
    return launch_description(ARGUMENTS, node_specs)
