"""ROS-free core of the dp simulator: MuJoCo tabletop scene, reach task, scripted expert, data."""

from dp_sim.core.gl import configure_gl

configure_gl()


from dp_sim.core.expert import ExpertConfig, ReachExpert  # noqa: E402
from dp_sim.core.robot import HOME_Q, JOINT_NAMES, load_panda  # noqa: E402
from dp_sim.core.scene import SimConfig, SimScene  # noqa: E402

__all__ = [
    "HOME_Q",
    "JOINT_NAMES",
    "ExpertConfig",
    "ReachExpert",
    "SimConfig",
    "SimScene",
    "load_panda",
]
