"""CLI alias of ``python -m dp_eval.bag_to_zarr`` (same options) with the simulator's defaults.

Real-robot conversion lives in dp_eval; this name keeps working for the simulator's bags
(``dp_sim.record_demos``). ``--task`` (default reach) picks the defaults that match the bags:
--perception-config = the task's perception file (config/perception_sim.yaml for reach tasks,
config/perception_sim_manip.yaml for lift / place / place_bimodal: what launch/sim.launch.py gives
perception_node and make_dataset uses), unspecified PerceptionConfig fields = ``SIM_PERCEPTION_DEFAULTS``,
and for gripper tasks ``--gripper-joint panda_finger_joint1 --gripper-command-topic
/gripper_controller/commands``. Every option can still be given explicitly; ``--help`` lists them::

    python -m dp_sim.bag_to_zarr --task lift demos_lift/ --out data/sim_lift_bags.zarr
"""

from __future__ import annotations

import argparse
import sys

from dp_eval.bag_to_zarr import main as _main
from dp_sim.core.dataset import SIM_PERCEPTION_DEFAULTS
from dp_sim.core.robot import GRIPPER_JOINT
from dp_sim.core.tasks import TASKS
from dp_sim.make_dataset import default_perception_yaml


def main(argv: list[str] | None = None) -> int:
    """Entry point (console script `bag_to_zarr` of dp_sim)."""
    pre = argparse.ArgumentParser(add_help=False)
    pre.add_argument("--task", default="reach", choices=list(TASKS))
    known, rest = pre.parse_known_args(argv if argv is not None else sys.argv[1:])
    defaults = {}
    if TASKS[known.task].gripper:
        from dp_sim.record_demos import GRIPPER_COMMAND_TOPIC

        defaults = {"gripper_joint": GRIPPER_JOINT, "gripper_command_topic": GRIPPER_COMMAND_TOPIC}
    return _main(
        rest,
        perception_config=str(default_perception_yaml(known.task)),
        perception_defaults=SIM_PERCEPTION_DEFAULTS,
        defaults=defaults,
        epilog=f"dp_sim alias: --task {{{','.join(TASKS)}}} (default reach) picks the task's perception\n"
        "file and, for lift / place / place_bimodal, --gripper-joint panda_finger_joint1\n"
        "--gripper-command-topic /gripper_controller/commands (the bags of dp_sim.record_demos --task)",
    )


if __name__ == "__main__":
    sys.exit(main())
