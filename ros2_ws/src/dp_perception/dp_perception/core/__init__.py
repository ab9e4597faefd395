"""ROS-free perception core: cloud -> policy input (crop, voxel, FPS).

The PointCloud2 byte codec is ``dp_common.core.pointcloud``; quaternions are ``dp_common.core.transforms``.
"""

from .config import PerceptionConfig
from .errors import CloudFormatError, PerceptionError
from .preprocess import preprocess_cloud, transform_crop

__all__ = [
    "CloudFormatError",
    "PerceptionConfig",
    "PerceptionError",
    "preprocess_cloud",
    "transform_crop",
]
