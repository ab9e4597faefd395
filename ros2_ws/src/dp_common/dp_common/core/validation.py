"""Documented fields and the common checks of the dp config dataclasses.

Every component has one config dataclass: each field carries a ``help`` text (declared as the ROS
parameter's description by :func:`dp_common.params.declare_config`), and ``__post_init__`` raises
``ValueError("<field> must be <expected>. Got <value>")`` for a bad value. These helpers write that
message one way for every config.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import field
from typing import Any


def param(help: str, **kwargs: Any) -> Any:
    """A dataclass field documented with ``help``; ``default`` / ``default_factory`` as for ``field``."""
    return field(metadata={"help": help}, **kwargs)


def one_of(cfg: object, name: str, allowed: Sequence) -> None:
    """``cfg.<name>`` must be one of ``allowed``."""
    value = getattr(cfg, name)
    if value not in allowed:
        raise ValueError(f"{name} must be one of {allowed}. Got {value!r}")


def positive(cfg: object, *names: str, unit: str = "") -> None:
    """Every ``cfg.<name>`` must be > 0 (NaN fails); ``unit`` follows the bound in the message."""
    for name in names:
        value = getattr(cfg, name)
        if not value > 0:
            raise ValueError(f"{name} must be > 0{unit}. Got {value}")


def non_negative(cfg: object, *names: str, unit: str = "", finite: bool = False) -> None:
    """Every ``cfg.<name>`` must be >= 0 (NaN fails; with ``finite``, inf too)."""
    for name in names:
        value = getattr(cfg, name)
        if not (value >= 0 and (not finite or math.isfinite(value))):
            raise ValueError(f"{name} must be >= 0{unit}. Got {value}")


def at_least(cfg: object, name: str, low: float, bound: str | None = None) -> None:
    """``cfg.<name>`` must be >= ``low``; ``bound`` names the bound in the message (default its value)."""
    value = getattr(cfg, name)
    if not value >= low:
        raise ValueError(f"{name} must be >= {bound or low}. Got {value}")


def in_range(
    cfg: object, name: str, low: float, high: float, low_open: bool = False, bounds: str | None = None
) -> None:
    """``cfg.<name>`` must be in ``[low, high]`` (``(low, high]`` with ``low_open``).

    ``bounds`` replaces the interval's text in the message (e.g. ``"[1, num_points=1024]"``).
    """
    value = getattr(cfg, name)
    ok = (low < value if low_open else low <= value) and value <= high
    if not ok:
        bounds = bounds or f"{'(' if low_open else '['}{low}, {high}]"
        raise ValueError(f"{name} must be in {bounds}. Got {value}")


def finite_floats(cfg: object, name: str, size: int, what: str, allow_empty: bool = False) -> list[float]:
    """``cfg.<name>`` as a list of ``size`` finite floats (or empty with ``allow_empty``), stored back.

    Args:
        what: the expected value for the message, e.g. ``"[x, y, z] in meters"``.

    Returns:
        The converted list.
    """
    given = getattr(cfg, name)
    values = [float(v) for v in given]
    if not (allow_empty and not values) and (
        len(values) != size or not all(math.isfinite(v) for v in values)
    ):
        empty = "empty or " if allow_empty else ""
        raise ValueError(f"{name} must be {empty}{size} finite numbers {what}. Got {given}")
    setattr(cfg, name, values)
    return values
