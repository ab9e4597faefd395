"""Message classes by ROS type name, from rclpy's generated packages or from a rosbags typestore.

rclpy and rosbags messages have the same field names but want different containers for arrays:
rclpy takes ``bytes`` for ``uint8[]`` (assigning bytes is ~100x faster than a memoryview) and
``array.array`` for numeric sequences; rosbags dataclasses take numpy arrays. ``MsgTypes`` hides
that difference, so one builder serves a node and a bag writer.
"""

from __future__ import annotations

import array
import importlib

import numpy as np

_ARRAY_CODES = {np.dtype(np.float32): "f", np.dtype(np.float64): "d"}


class MsgTypes:
    """Message classes by name (``"sensor_msgs/msg/PointCloud2"``, or ``"sensor_msgs/PointCloud2"``) and
    the array containers they take.

    Raises (on lookup): ValueError for a malformed name or a type the typestore lacks; ImportError /
    AttributeError when the rclpy message package or class is not importable.

    Args:
        typestore: a rosbags typestore; None = the rclpy message packages (imported on first use).
    """

    def __init__(self, typestore=None) -> None:
        self.typestore = typestore
        self._cache: dict[str, type] = {}

    @property
    def is_rosbags(self) -> bool:
        """True when the classes come from a rosbags typestore."""
        return self.typestore is not None

    def __getitem__(self, name: str) -> type:
        cls = self._cache.get(name)
        if cls is not None:
            return cls
        parts = name.split("/")
        if len(parts) == 2:  # ROS 1 / short form 'package/Name'
            parts = [parts[0], "msg", parts[1]]
            return self._cache.setdefault(name, self["/".join(parts)])
        if len(parts) != 3 or parts[1] not in ("msg", "srv"):
            raise ValueError(f"message type must be 'package/msg/Name'. Got {name!r}")
        if self.typestore is not None:
            try:
                cls = self.typestore.types[name]
            except KeyError:
                raise ValueError(f"message type {name!r} is not registered in the typestore") from None
        else:
            module = importlib.import_module(f"{parts[0]}.{parts[1]}")
            cls = getattr(module, parts[2])
        self._cache[name] = cls
        return cls

    def uint8_array(self, buf) -> bytes | np.ndarray:
        """A ``uint8[]`` field value from bytes or a uint8 array (no per-element conversion)."""
        if self.typestore is not None:
            return np.frombuffer(bytes(buf) if isinstance(buf, memoryview) else buf, dtype=np.uint8)
        return buf.tobytes() if isinstance(buf, np.ndarray) else bytes(buf)

    def numeric_array(self, values, dtype) -> array.array | np.ndarray:
        """A ``float32[]`` / ``float64[]`` field value from any array-like (C-contiguous copy)."""
        arr = np.ascontiguousarray(values, dtype=dtype).reshape(-1)
        if self.typestore is not None:
            return arr.copy() if arr.base is not None else arr
        return array.array(_ARRAY_CODES[np.dtype(dtype)], arr.tobytes())


ROS = MsgTypes()
"""The rclpy message classes (what nodes publish)."""


def bag_types(typestore) -> MsgTypes:
    """``MsgTypes`` over a rosbags typestore (what bag tools write)."""
    return MsgTypes(typestore)


def as_numpy(values, dtype) -> np.ndarray:
    """A numeric sequence field of either message kind as a 1-D numpy array (a view where possible)."""
    try:
        return np.frombuffer(values, dtype=dtype)  # array.array / bytes from rclpy: no copy
    except (TypeError, ValueError):
        return np.asarray(values, dtype=dtype).reshape(-1)
