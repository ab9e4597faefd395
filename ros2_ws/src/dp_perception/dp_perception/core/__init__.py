"""ROS-free perception core: PointCloud2 layout decoding and cloud -> policy input."""

from dp_common.core.transforms import quaternion_to_matrix  # re-exported for callers not yet moved

from .config import PerceptionConfig
from .errors import CloudFormatError, PerceptionError
from .preprocess import preprocess_cloud, transform_crop

__all__ = [
    "CloudFormatError",
    "PerceptionConfig",
    "PerceptionError",
    "preprocess_cloud",
    "quaternion_to_matrix",
    "transform_crop",
]
