"""ROS-free helpers shared by the dp packages (numpy only)."""

from dp_common.core.joint_states import JointStateBuffer, MissingJointsError
from dp_common.core.stats import RateMeter, RollingStats

__all__ = ["JointStateBuffer", "MissingJointsError", "RateMeter", "RollingStats"]
