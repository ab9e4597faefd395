"""Per-episode metrics of closed-loop runs beyond success (ROS-free).

``place_bimodal``: *does the policy commit to a tray, or head between the trays?* A policy that
averages the two demonstrated modes (an MSE regression, issue 13) carries the cube toward the
middle; a multimodal policy (diffusion) commits to one tray per episode.

Definition (:func:`tray_heading`). With tray centres A and B (xy), midpoint m = (A + B) / 2 and
unit axis u = (B - A) / |B - A|, the *tray-axis coordinate* of a point p is

    s(p) = (p_xy - m) . u / (|B - A| / 2)        -1 over A's centre, 0 on the bisector, +1 over B's

Over the episode's TCP samples (the simulator's ``sim/episode_status``, 5 Hz):

- ``tray0`` / ``tray1``: the TCP's closest approach (xy) to tray A's / B's centre was within
  ``commit_m`` (10 cm: over the tray, whose inner half-width is 7 cm, or at its rim); the tray
  reached first counts, ``switched`` says whether the other was reached later as well. The cube
  starts >= 14.5 cm from either tray centre (3000 default layouts), so grasping it never counts;
- ``between``: neither tray was reached, but the cube was carried (its centre rose >= ``lift_m`` =
  3 cm above its start at some sample): the episode transported the cube and stayed between;
- ``stalled``: neither (the cube was never carried and the TCP never reached a tray).

The extremes of s over the TCP samples are reported as well (``tray_axis_min`` / ``_max``; the
cube starts at |s| < 0.47 in the default layouts): an averaging policy keeps |s| well below 1.

The closed loop reports the fraction of episodes ``between`` (and the other counts).
"""

from __future__ import annotations

import numpy as np

HEADINGS = ("tray0", "tray1", "between", "stalled")


def tray_axis_coordinate(points_xy: np.ndarray, trays: np.ndarray) -> np.ndarray:
    """s(p) (see the module docstring) of points (..., 2) for two trays (2, 2) (xy, m)."""
    trays = np.asarray(trays, float).reshape(-1, 2)
    if trays.shape[0] != 2:
        raise ValueError(f"tray-axis coordinate needs exactly 2 trays. Got {trays.shape[0]}")
    a, b = trays
    half = float(np.linalg.norm(b - a)) / 2
    if half <= 0:
        raise ValueError(f"the two trays coincide: {trays.tolist()}")
    u = (b - a) / (2 * half)
    return (np.asarray(points_xy, float)[..., :2] - (a + b) / 2) @ u / half


def tray_heading(
    trays: np.ndarray,
    cube_start: np.ndarray,
    tcp: np.ndarray,
    cube: np.ndarray,
    commit_m: float = 0.10,
    lift_m: float = 0.03,
) -> dict:
    """Classify one episode (module docstring).

    Args:
        trays: (2, 2) tray centres xy (m).
        cube_start: (3,) the cube's centre at the episode start (m).
        tcp: (T, 3) TCP positions over the episode (m), time-ordered.
        cube: (T, 3) cube centres at the same samples (m).
    Returns:
        ``heading`` (one of HEADINGS), ``switched``, ``tray_axis_min`` / ``tray_axis_max`` (the
        extremes of s over the TCP samples), ``closest_tray_m`` (2,) and ``cube_lifted``.
    """
    tcp = np.asarray(tcp, float).reshape(-1, 3)
    cube = np.asarray(cube, float).reshape(-1, 3)
    if len(tcp) == 0:
        return {"heading": "stalled", "switched": False, "tray_axis_min": None, "tray_axis_max": None,
                "closest_tray_m": None, "cube_lifted": False}  # fmt: skip
    trays = np.asarray(trays, float).reshape(2, 2)
    s = tray_axis_coordinate(tcp[:, :2], trays)
    lifted = bool(len(cube) and (cube[:, 2] - float(cube_start[2]) >= lift_m).any())
    dist = np.linalg.norm(tcp[:, None, :2] - trays[None], axis=-1)  # (T, 2) m
    hit0 = np.flatnonzero(dist[:, 0] <= commit_m)
    hit1 = np.flatnonzero(dist[:, 1] <= commit_m)
    if len(hit0) or len(hit1):
        first0 = hit0[0] if len(hit0) else np.inf
        first1 = hit1[0] if len(hit1) else np.inf
        heading = "tray0" if first0 < first1 else "tray1"
    else:
        heading = "between" if lifted else "stalled"
    return {
        "heading": heading,
        "switched": bool(len(hit0) and len(hit1)),
        "tray_axis_min": round(float(s.min()), 4),
        "tray_axis_max": round(float(s.max()), 4),
        "closest_tray_m": [round(float(d), 4) for d in dist.min(axis=0)],
        "cube_lifted": lifted,
    }


def heading_from_statuses(statuses: list[dict]) -> dict | None:
    """:func:`tray_heading` from an episode's ``sim/episode_status`` dicts (None unless 2 trays)."""
    rows = [s for s in statuses if "tcp_position" in s and "cube_position" in s]
    if not rows or len(rows[0].get("trays", [])) != 2:
        return None
    return tray_heading(
        np.asarray(rows[0]["trays"], float),
        np.asarray(rows[0]["cubes"][0][:3], float),
        np.asarray([s["tcp_position"] for s in rows]),
        np.asarray([s["cube_position"] for s in rows]),
    )


def heading_fractions(headings: list[dict | None]) -> dict | None:
    """Fractions of episodes per heading (None when no episode had two trays)."""
    known = [h["heading"] for h in headings if h is not None]
    if not known:
        return None
    return {k: known.count(k) / len(known) for k in HEADINGS}
