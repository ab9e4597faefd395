"""ROS-free core of dp_eval: episode containers and split, stepped replay, metrics, report.

Bag I/O is ``dp_common.bags`` and bag reading for evaluation is ``dp_eval.episodes`` (outside core).
"""

from dp_eval.core.config import EvalConfig
from dp_eval.core.metrics import episode_metrics, latency_stats

__all__ = ["EvalConfig", "episode_metrics", "latency_stats"]
