"""ROS-free core of dp_eval: episode containers and split, stepped replay, metrics, report, and the
alignment of demonstration streams into training episodes (``alignment``, for bag_to_zarr), the
checks of a recording (``checks``) and the TF tree of a recording (``tf_tree``).

Bag I/O is ``dp_common.bags``; bag reading for evaluation is ``dp_eval.episodes`` and for
bag_to_zarr ``dp_eval.bag_streams`` (outside core).
"""

from dp_eval.core.config import EvalConfig
from dp_eval.core.metrics import episode_metrics, latency_stats

__all__ = ["EvalConfig", "episode_metrics", "latency_stats"]
