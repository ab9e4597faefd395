"""ROS-free core of dp_eval: bag I/O (rosbags), episode extraction, stepped replay, metrics, report."""

from dp_eval.core.bagio import BagReader, BagWriter, make_typestore
from dp_eval.core.config import EvalConfig
from dp_eval.core.metrics import episode_metrics, latency_stats

__all__ = ["BagReader", "BagWriter", "EvalConfig", "episode_metrics", "latency_stats", "make_typestore"]
