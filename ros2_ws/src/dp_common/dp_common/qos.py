"""The QoS profiles of the dp interface contract, named in one place."""

from __future__ import annotations

from rclpy.qos import (
    DurabilityPolicy,
    HistoryPolicy,
    QoSProfile,
    ReliabilityPolicy,
    qos_profile_sensor_data,
)


def _profile(depth: int, reliability, durability=DurabilityPolicy.VOLATILE) -> QoSProfile:
    return QoSProfile(
        history=HistoryPolicy.KEEP_LAST, depth=depth, reliability=reliability, durability=durability
    )


def sensor_qos(depth: int = 5) -> QoSProfile:
    """Camera clouds / images: best effort, volatile, keep last `depth` (drop rather than queue)."""
    return _profile(depth, qos_profile_sensor_data.reliability)


def chunk_qos() -> QoSProfile:
    """Action chunks: reliable, keep only the newest (a stale chunk is worthless)."""
    return _profile(1, ReliabilityPolicy.RELIABLE)


def latched_qos() -> QoSProfile:
    """robot_description: reliable, transient local, so late subscribers get the last message."""
    return _profile(1, ReliabilityPolicy.RELIABLE, DurabilityPolicy.TRANSIENT_LOCAL)


def reliable_qos(depth: int = 10) -> QoSProfile:
    """Everything else (joint states, commands, markers, diagnostics): reliable, keep last."""
    return _profile(depth, ReliabilityPolicy.RELIABLE)


def record_qos(depth: int = 100) -> QoSProfile:
    """Recording any topic: best effort + volatile, which matches reliable and best-effort publishers."""
    return _profile(depth, ReliabilityPolicy.BEST_EFFORT)
