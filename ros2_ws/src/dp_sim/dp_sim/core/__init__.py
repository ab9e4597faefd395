"""ROS-free core of the dp simulator: MuJoCo tabletop scene, task registry, scripted experts, data."""

from dp_sim.core.gl import configure_gl

configure_gl()


from dp_sim.core.config import SimConfig  # noqa: E402
from dp_sim.core.expert import ExpertConfig, ReachExpert  # noqa: E402
from dp_sim.core.pick_expert import PickPlaceExpert, apply_action, expert_step, make_expert  # noqa: E402
from dp_sim.core.robot import GRIPPER_JOINT, HOME_Q, JOINT_NAMES, load_panda  # noqa: E402
from dp_sim.core.scene import SimScene  # noqa: E402
from dp_sim.core.tasks import TASKS, get_task  # noqa: E402

__all__ = [
    "GRIPPER_JOINT",
    "HOME_Q",
    "JOINT_NAMES",
    "TASKS",
    "ExpertConfig",
    "PickPlaceExpert",
    "ReachExpert",
    "SimConfig",
    "SimScene",
    "apply_action",
    "expert_step",
    "get_task",
    "load_panda",
    "make_expert",
]
