"""A TF tree read from a recording: static and dynamic transforms, looked up at a stamp (ROS-free).

What ``bag_to_zarr`` builds from a bag's ``/tf`` and ``/tf_static`` (no tf2_ros needed). Every
edge is a (4, 4) matrix ``parent <- child`` (the TF convention: it maps points of the child frame
into the parent frame); every frame has at most one parent. Chains have any length, e.g.::

    world -> base -> wrist_link (dynamic, /tf) -> camera_link -> camera_depth_frame
          -> camera_depth_optical_frame

A static edge holds at any time. A dynamic edge is interpolated at the asked stamp between its two
neighbouring samples: translation linearly, rotation by slerp (exact for a constant velocity about a
fixed axis). A stamp before the first or after the last sample of a dynamic edge is served by that
end sample only within ``tolerance_ns``; further out, or without a path between the frames, the
lookup raises :class:`TfLookupError` naming the frames, the edge and the time. Stamps are integer
nanoseconds.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from scipy.spatial.transform import Rotation


class TfLookupError(ValueError):
    """A transform cannot be resolved at a stamp (no path, or outside a dynamic edge's samples)."""


def _ns_s(ns: int) -> str:
    return f"{ns / 1e9:.3f} s"


@dataclass
class _Edge:
    """One parent <- child edge: a static matrix, or dynamic samples (sorted on first lookup)."""

    static: np.ndarray | None = None
    stamps: list[int] = field(default_factory=list)
    mats: list[np.ndarray] = field(default_factory=list)
    _t: np.ndarray | None = None  # (S,) int64 ns, sorted, unique
    _pos: np.ndarray | None = None  # (S, 3)
    _rot: Rotation | None = None  # S rotations

    def _prepare(self) -> None:
        order = np.argsort(np.asarray(self.stamps, dtype=np.int64), kind="stable")
        t = np.asarray(self.stamps, dtype=np.int64)[order]
        m = np.stack([self.mats[i] for i in order])
        keep = np.append(t[1:] != t[:-1], True)  # the last sample of equal stamps wins
        self._t, m = t[keep], m[keep]
        self._pos = m[:, :3, 3].copy()
        self._rot = Rotation.from_matrix(m[:, :3, :3])

    def at(self, stamp_ns: int, tolerance_ns: int) -> np.ndarray | str:
        """(4, 4) parent <- child at the stamp, or a reason string when out of range."""
        if self.static is not None:
            return self.static
        if self._t is None:  # reset by every add
            self._prepare()
        t = self._t
        if stamp_ns < t[0] - tolerance_ns or stamp_ns > t[-1] + tolerance_ns:
            return f"its samples span {_ns_s(int(t[0]))} .. {_ns_s(int(t[-1]))}"
        i = int(np.searchsorted(t, stamp_ns, side="right"))
        out = np.eye(4)
        if i == 0 or i == len(t):  # within tolerance of an end: that end sample
            j = 0 if i == 0 else len(t) - 1
            out[:3, :3] = self._rot[j].as_matrix()
            out[:3, 3] = self._pos[j]
            return out
        t0, t1 = int(t[i - 1]), int(t[i])
        a = (stamp_ns - t0) / (t1 - t0)  # integer ns difference, then one float division
        r0 = self._rot[i - 1]
        rel = (r0.inv() * self._rot[i]).as_rotvec()
        out[:3, :3] = (r0 * Rotation.from_rotvec(a * rel)).as_matrix()
        out[:3, 3] = (1.0 - a) * self._pos[i - 1] + a * self._pos[i]
        return out


class TfTree:
    """Static and dynamic transforms of one recording, looked up at a stamp (see the module docstring).

    Args:
        tolerance_ns: how far (ns) outside a dynamic edge's samples a lookup may use the end sample.
        name: what the transforms came from (a bag path), for error messages.
    """

    def __init__(self, tolerance_ns: int = 20_000_000, name: str = ""):
        if tolerance_ns < 0:
            raise ValueError(f"tolerance_ns must be >= 0. Got {tolerance_ns}")
        self.tolerance_ns = int(tolerance_ns)
        self.name = name
        self._edges: dict[str, tuple[str, _Edge]] = {}  # child -> (parent, edge)
        self._conflicts: dict[str, str] = {}  # child -> why it has no single parent

    def add(self, parent: str, child: str, stamp_ns: int, matrix, static: bool) -> None:
        """Adds one transform ``parent <- child`` (leading '/' of frame names is ignored).

        A child that already has another parent keeps the first one; a lookup through it raises.

        Raises:
            ValueError: one edge is both static and dynamic, or the matrix is not (4, 4) and finite.
        """
        parent, child = parent.lstrip("/"), child.lstrip("/")
        m = np.asarray(matrix, dtype=np.float64)
        if m.shape != (4, 4) or not np.all(np.isfinite(m)):
            raise ValueError(f"{self.name}: transform {parent} -> {child}: expected a finite (4, 4) matrix")
        if parent == child:
            raise ValueError(f"{self.name}: transform {parent} -> {child} links a frame to itself")
        old = self._edges.get(child)
        if old is not None and old[0] != parent:  # an error only for lookups through this frame
            self._conflicts.setdefault(
                child,
                f"{self.name}: frame {child} has two parents, {old[0]} and {parent} (at {_ns_s(stamp_ns)}); "
                "a TF tree gives every frame one parent",
            )
            return
        edge = old[1] if old is not None else _Edge()
        if static:
            if edge.stamps:
                raise ValueError(f"{self.name}: {parent} -> {child} is on both /tf and /tf_static")
            edge.static = m
        else:
            if edge.static is not None:
                raise ValueError(f"{self.name}: {parent} -> {child} is on both /tf and /tf_static")
            edge.stamps.append(int(stamp_ns))
            edge.mats.append(m)
            edge._t = None
        self._edges[child] = (parent, edge)

    @property
    def frames(self) -> set[str]:
        """Every frame named by a transform."""
        return set(self._edges) | {p for p, _ in self._edges.values()}

    def edges(self) -> dict[tuple[str, str], str]:
        """{(parent, child): 'static' | 'dynamic (N samples)'} (for reports and errors)."""
        return {
            (p, c): "static" if e.static is not None else f"dynamic ({len(e.stamps)} samples)"
            for c, (p, e) in self._edges.items()
        }

    def _chain(self, frame: str) -> list[str]:
        chain = [frame]
        while chain[-1] in self._edges:
            chain.append(self._edges[chain[-1]][0])
            if len(chain) > len(self._edges) + 1:
                raise TfLookupError(f"{self.name}: the TF tree has a loop through {frame}")
        return chain

    def _up(self, chain: list[str], stamp_ns: int, target: str, source: str) -> np.ndarray | None:
        """chain[-1] <- chain[0] at the stamp (None for an empty chain)."""
        out = None
        for child in chain[:-1]:
            parent, edge = self._edges[child]
            m = edge.at(stamp_ns, self.tolerance_ns)
            if isinstance(m, str):
                raise TfLookupError(
                    f"{self.name}: cannot transform {source} into {target} at {_ns_s(stamp_ns)}: the dynamic "
                    f"transform {parent} -> {child} on /tf has no sample within "
                    f"{self.tolerance_ns / 1e6:g} ms of that time ({m})"
                )
            out = m if out is None else m @ out
        return out

    def lookup(self, target: str, source: str, stamp_ns: int) -> np.ndarray:
        """(4, 4) ``target <- source`` at ``stamp_ns`` (maps points of ``source`` into ``target``).

        Raises:
            TfLookupError: no path between the frames, or a dynamic edge on the path has no sample
                near the stamp.
        """
        target, source = target.lstrip("/"), source.lstrip("/")
        if target == source:
            return np.eye(4)
        up_s, up_t = self._chain(source), self._chain(target)
        common = next((f for f in up_s if f in set(up_t)), None)
        if common is None:
            for child in up_s + up_t:
                if child in self._conflicts:
                    raise TfLookupError(self._conflicts[child])
            known = sorted(self.frames)
            raise TfLookupError(
                f"{self.name}: no transform path from {source} to {target} at {_ns_s(stamp_ns)} in /tf and "
                f"/tf_static (frames: {known if known else 'none'}); pass --camera-transform for a fixed "
                "camera"
            )
        s_chain = up_s[: up_s.index(common) + 1]
        t_chain = up_t[: up_t.index(common) + 1]
        for child in s_chain[:-1] + t_chain[:-1]:
            if child in self._conflicts:
                raise TfLookupError(self._conflicts[child])
        common_from_source = self._up(s_chain, stamp_ns, target, source)
        common_from_target = self._up(t_chain, stamp_ns, target, source)
        if common_from_target is None:
            return common_from_source
        inv = np.linalg.inv(common_from_target)
        return inv if common_from_source is None else inv @ common_from_source
