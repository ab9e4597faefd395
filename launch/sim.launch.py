"""Closed loop in simulation: MuJoCo arm + camera -> perception -> policy -> control -> simulated arm.

    ros2 launch launch/sim.launch.py                          # with launch_ros
    python -m dp_common.launcher launch/sim.launch.py         # same nodes, without launch_ros
    python -m dp_common.launcher launch/sim.launch.py --show-args

Every node runs on the simulator's /clock (use_sim_time), each in its own process.
"""

from __future__ import annotations

import pathlib

from dp_common.launcher import (
    LaunchArgument,
    NodeSpec,
    as_bool,
    fastdds_profile_env,
    launch_description,
    package_file,
)

REPO = pathlib.Path(__file__).resolve().parents[1]
ORACLE = "oracle"  # checkpoint:=oracle: the oracle baseline (no perception: it reads the true poses)

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
]


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
                package_file(
                    "dp_sim",
                    "config",
                    "perception_sim.yaml"
                    if args["task"].startswith("reach")
                    else "perception_sim_manip.yaml",
                ),
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
                },
            ],
            env=env,
        ),
    ]
    if args["checkpoint"] == ORACLE:  # the oracle replaces perception + policy
        oracle_params = {**sim_time, "task": args["task"], "autostart": autostart,
                         "rate_hz": float(args["policy_rate_hz"])}  # fmt: skip
        specs[1:3] = [NodeSpec("dp_sim", "oracle_node", parameters=[oracle_params], env=env)]
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
