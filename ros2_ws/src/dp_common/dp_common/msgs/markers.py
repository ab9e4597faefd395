"""visualization_msgs/Marker(Array): the one builder of the rviz markers dp publishes.

policy_node's predicted end-effector path (``dp/markers``) and control_node's commanded / measured
paths and gripper text (``dp/control_markers``) are built here. rclpy message classes only: markers
are drawn, never written to bags by dp's own tools (the recorder passes them through as received).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from dp_common.msgs.stamp import make_header

RGBA = tuple[float, float, float, float]


def _marker(kind: str, ns: str, marker_id: int, frame_id: str, stamp_ns: int, rgba: RGBA):
    from std_msgs.msg import ColorRGBA
    from visualization_msgs.msg import Marker

    m = Marker(ns=ns, id=marker_id, type=getattr(Marker, kind), action=Marker.ADD)
    m.header = make_header(stamp_ns, frame_id)
    m.pose.orientation.w = 1.0
    m.color = ColorRGBA(r=float(rgba[0]), g=float(rgba[1]), b=float(rgba[2]), a=float(rgba[3]))
    return m


def _point(p):
    from geometry_msgs.msg import Point

    return Point(x=float(p[0]), y=float(p[1]), z=float(p[2]))


def line_strip_marker(
    points: np.ndarray, frame_id: str, stamp_ns: int, ns: str, marker_id: int, rgba: RGBA, width_m: float
):
    """LINE_STRIP through ``points`` (T, 3) m, in ``frame_id``; rviz needs T >= 2 to draw it."""
    m = _marker("LINE_STRIP", ns, marker_id, frame_id, stamp_ns, rgba)
    m.scale.x = float(width_m)
    m.points = [_point(p) for p in np.asarray(points, dtype=float).reshape(-1, 3)]
    return m


def sphere_marker(
    position: Sequence[float],
    frame_id: str,
    stamp_ns: int,
    ns: str,
    marker_id: int,
    rgba: RGBA,
    diameter_m: float,
):
    """SPHERE of ``diameter_m`` at ``position`` (3,) m."""
    m = _marker("SPHERE", ns, marker_id, frame_id, stamp_ns, rgba)
    m.pose.position = _point(position)
    m.scale.x = m.scale.y = m.scale.z = float(diameter_m)
    return m


def text_marker(
    text: str,
    position: Sequence[float],
    frame_id: str,
    stamp_ns: int,
    ns: str,
    marker_id: int,
    rgba: RGBA,
    height_m: float,
):
    """TEXT_VIEW_FACING ``text`` (letters ``height_m`` tall) at ``position`` (3,) m."""
    m = _marker("TEXT_VIEW_FACING", ns, marker_id, frame_id, stamp_ns, rgba)
    m.pose.position = _point(position)
    m.scale.z = float(height_m)
    m.text = text
    return m


def delete_marker(ns: str, marker_id: int, frame_id: str, stamp_ns: int):
    """DELETE of one marker (a path that has no points any more)."""
    from visualization_msgs.msg import Marker

    m = _marker("LINE_STRIP", ns, marker_id, frame_id, stamp_ns, (0.0, 0.0, 0.0, 0.0))
    m.action = Marker.DELETE
    return m


def marker_array(markers: Sequence):
    """visualization_msgs/MarkerArray of ``markers``."""
    from visualization_msgs.msg import MarkerArray

    return MarkerArray(markers=list(markers))
