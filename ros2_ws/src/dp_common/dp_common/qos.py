"""The QoS profiles of the dp interface contract, named in one place."""

from __future__ import annotations

from rclpy.qos import (
    DurabilityPolicy,
    HistoryPolicy,
    QoSProfile,
    ReliabilityPolicy,
    qos_profile_sensor_data,
)


def sensor_qos(depth: int = 5) -> QoSProfile:
    """Camera clouds / images: best effort, volatile, keep last `depth` (drop rather than queue)."""
    profile = QoSProfile(
        history=HistoryPolicy.KEEP_LAST,
        depth=depth,
        reliability=qos_profile_sensor_data.reliability,
        durability=DurabilityPolicy.VOLATILE,
    )
    return profile


def chunk_qos() -> QoSProfile:
    """Action chunks: reliable, keep only the newest (a stale chunk is worthless)."""
    return QoSProfile(
        history=HistoryPolicy.KEEP_LAST,
        depth=1,
        reliability=ReliabilityPolicy.RELIABLE,
        durability=DurabilityPolicy.VOLATILE,
    )


def latched_qos() -> QoSProfile:
    """robot_description: reliable, transient local, so late subscribers get the last message."""
    return QoSProfile(
        history=HistoryPolicy.KEEP_LAST,
        depth=1,
        reliability=ReliabilityPolicy.RELIABLE,
        durability=DurabilityPolicy.TRANSIENT_LOCAL,
    )


def reliable_qos(depth: int = 10) -> QoSProfile:
    """Everything else (joint states, commands, markers, diagnostics): reliable, keep last."""
    return QoSProfile(
        history=HistoryPolicy.KEEP_LAST,
        depth=depth,
        reliability=ReliabilityPolicy.RELIABLE,
        durability=DurabilityPolicy.VOLATILE,
    )
