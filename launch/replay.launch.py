"""Offline evaluation by replay: a recorded bag drives perception and policy on the bag's /clock.

    ros2 launch launch/replay.launch.py bag:=demos/episode_0000 checkpoint:=checkpoints/sim_reach_dp3
    python -m dp_common.launcher launch/replay.launch.py bag:=... checkpoint:=...   # without launch_ros

The bag is played with recorded timing (publishing /clock; every node on use_sim_time), the pipeline's
outputs (processed clouds, chunks, commands, diagnostics) are recorded to `record_to`. For metrics
against the recorded actions use `python -m dp_eval.evaluate` (stepped, deterministic, or --mode
realtime, which runs these same nodes).
"""

from __future__ import annotations

import pathlib

from dp_common.launcher import LaunchArgument, NodeSpec, as_bool, launch_description, package_file

REPO = pathlib.Path(__file__).resolve().parents[1]

ARGUMENTS = [
    LaunchArgument("bag", "", "rosbag2 directory to play (sqlite3 or mcap) (required)"),
    LaunchArgument("checkpoint", str(REPO / "checkpoints" / "sim_reach_dp3"), "policy checkpoint directory"),
    LaunchArgument("rate", "1.0", "bag seconds per wall second"),
    LaunchArgument(
        "perception_config",
        "",
        "perception parameter file matching the bag's camera "
        "(default: the simulator's, for bags recorded by dp_sim)",
    ),
    LaunchArgument("record_to", "", "output bag directory for the pipeline's outputs ('' = do not record)"),
    LaunchArgument("control", "false", "also run control_node on the chunks (its commands are recorded)"),
    LaunchArgument("rviz", "false", "start rviz2 with launch/dp.rviz"),
]


def node_specs(args: dict) -> list[NodeSpec]:
    """The nodes of this launch file for the given argument values (strings)."""
    if not args["bag"]:
        raise ValueError("replay.launch.py needs bag:=/path/to/bag")
    sim_time = {"use_sim_time": True}
    eval_yaml = package_file("dp_eval", "config", "eval.yaml")
    perception = args["perception_config"] or package_file("dp_sim", "config", "perception_sim.yaml")
    specs = [
        NodeSpec(
            "dp_perception",
            "perception_node",
            parameters=[package_file("dp_perception", "config", "perception.yaml"), perception, sim_time],
        ),
        NodeSpec(
            "dp_policy",
            "policy_node",
            parameters=[
                package_file("dp_policy", "config", "policy.yaml"),
                {**sim_time, "checkpoint": args["checkpoint"], "autostart": True},
            ],
        ),
    ]
    if as_bool(args["control"]):
        specs.append(
            NodeSpec(
                "dp_control",
                "control_node",
                parameters=[
                    package_file("dp_control", "config", "control.yaml"),
                    {**sim_time, "autostart": True},
                ],
            )
        )
    if args["record_to"]:
        specs.append(
            NodeSpec(
                "dp_eval", "bag_recorder", parameters=[eval_yaml, {**sim_time, "output": args["record_to"]}]
            )
        )
    # The player starts last so every subscriber is up (it also waits start_delay_s).
    specs.append(
        NodeSpec(
            "dp_eval",
            "bag_player",
            parameters=[
                eval_yaml,
                {"bag": args["bag"], "mode": "realtime", "rate": float(args["rate"]), "publish_clock": True},
            ],
        )
    )
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
