"""PointCloud2 raw layout <-> numpy, ROS-free (fields, steps and bytes; no messages).

A field is a tuple ``(name, offset, datatype, count)`` with the sensor_msgs/PointField
datatype codes below. Decoding builds a numpy structured dtype over the buffer, so no Python
code runs per point; in the common layout (native-endian float32 x, y, z next to each other,
rows without padding) the xyz array is a zero-copy strided view of the message bytes.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass

import numpy as np


class CloudError(ValueError):
    """A cloud that must be rejected; ``reason`` names the drop counter.

    Reasons raised here: ``too_large``, ``no_xyz``, ``unsupported_field_type``,
    ``inconsistent_layout``, ``short_data``; perception adds its own (``empty``, ``no_rgb``, ...).
    """

    reason = "invalid"

    def __init__(self, message: str, reason: str | None = None):
        super().__init__(message)
        if reason is not None:
            self.reason = reason


class CloudFormatError(CloudError):
    """The PointCloud2 layout (fields, steps, data length) is malformed or unsupported."""

    reason = "inconsistent_layout"


INT8, UINT8, INT16, UINT16, INT32, UINT32, FLOAT32, FLOAT64 = range(1, 9)
_DATATYPE_NAMES = {
    INT8: "INT8",
    UINT8: "UINT8",
    INT16: "INT16",
    UINT16: "UINT16",
    INT32: "INT32",
    UINT32: "UINT32",
    FLOAT32: "FLOAT32",
    FLOAT64: "FLOAT64",
}
_DATATYPE_CODES = {
    INT8: "i1",
    UINT8: "u1",
    INT16: "i2",
    UINT16: "u2",
    INT32: "i4",
    UINT32: "u4",
    FLOAT32: "f4",
    FLOAT64: "f8",
}
_NATIVE_BIG = sys.byteorder == "big"


@dataclass
class RawCloud:
    """The layout and bytes of a PointCloud2 (what the message carries besides the header)."""

    fields: list[tuple[str, int, int, int]]
    point_step: int
    row_step: int
    height: int
    width: int
    is_bigendian: bool
    data: bytes


@dataclass
class DecodedCloud:
    """A decoded cloud.

    Attributes:
        xyz: (N, 3) float32, N = height * width, in the cloud's frame, m (NaN kept). May be a
            read-only view of the message buffer: copy before writing.
        rgb_packed: (N,) uint32 0xAARRGGBB (alpha byte ignored), or None when the cloud has no
            color. May be a read-only view of the message buffer.
        height, width: organized shape (height 1 = unorganized).
    """

    xyz: np.ndarray
    rgb_packed: np.ndarray | None
    height: int
    width: int

    def rgb(self) -> np.ndarray | None:
        """(N, 3) float32 colors in [0, 1], or None."""
        return None if self.rgb_packed is None else unpack_rgb(self.rgb_packed)


def unpack_rgb(packed: np.ndarray) -> np.ndarray:
    """(N,) uint32 0x00RRGGBB -> (N, 3) float32 in [0, 1]."""
    packed = np.asarray(packed, dtype=np.uint32)
    out = np.empty((packed.shape[0], 3), dtype=np.float32)
    out[:, 0] = (packed >> 16) & 0xFF
    out[:, 1] = (packed >> 8) & 0xFF
    out[:, 2] = packed & 0xFF
    out *= np.float32(1.0 / 255.0)
    return out


def pack_rgb(rgb: np.ndarray) -> np.ndarray:
    """(N, 3) colors in [0, 1] (float) or 0..255 (uint8) -> (N,) uint32 0x00RRGGBB."""
    rgb = np.asarray(rgb)
    if rgb.dtype != np.uint8:
        rgb = np.clip(np.rint(rgb * 255.0), 0, 255).astype(np.uint8)
    c = rgb.astype(np.uint32)
    return (c[:, 0] << 16) | (c[:, 1] << 8) | c[:, 2]


def _normalize_fields(fields) -> list[tuple[str, int, int, int]]:
    out = []
    for f in fields:
        if isinstance(f, tuple | list):
            name, offset, datatype, count = f
        else:  # anything shaped like sensor_msgs/PointField
            name, offset, datatype, count = f.name, f.offset, f.datatype, f.count
        out.append((str(name), int(offset), int(datatype), int(count)))
    return out


def _check_layout(fields, point_step, row_step, height, width, n_bytes, max_points):
    if height < 0 or width < 0:
        raise CloudFormatError(f"height and width must be >= 0; got height={height}, width={width}")
    n = height * width
    if max_points is not None and n > max_points:
        raise CloudError(
            f"cloud has {n} points (height {height} x width {width}); expected at most "
            f"max_input_points={max_points}",
            reason="too_large",
        )
    names = [f[0] for f in fields]
    if len(set(names)) != len(names):
        raise CloudFormatError(f"duplicate field names {names}; expected each name once")
    for name, offset, datatype, count in fields:
        if datatype not in _DATATYPE_CODES:
            raise CloudError(
                f"field {name!r} has datatype {datatype}; expected a sensor_msgs/PointField code "
                f"1..8 (INT8..FLOAT64)",
                reason="unsupported_field_type",
            )
        size = np.dtype(_DATATYPE_CODES[datatype]).itemsize * max(count, 0)
        if offset < 0 or count < 1 or (n > 0 and offset + size > point_step):
            raise CloudFormatError(
                f"field {name!r} (offset {offset}, {count} x {_DATATYPE_NAMES[datatype]}) does not "
                f"fit in point_step={point_step}; expected offset + size <= point_step"
            )
    for axis in "xyz":
        if axis not in names:
            raise CloudError(f"cloud has fields {names}; expected x, y and z", reason="no_xyz")
    if n == 0:
        return
    if point_step <= 0:
        raise CloudFormatError(f"point_step must be > 0; got {point_step}")
    if row_step < width * point_step:
        raise CloudFormatError(
            f"row_step={row_step} is smaller than width*point_step={width}*{point_step}="
            f"{width * point_step}; expected row_step >= width*point_step"
        )
    expected = row_step * height
    if n_bytes < expected:
        raise CloudError(
            f"data has {n_bytes} bytes, shorter than row_step*height={row_step}*{height}={expected} declared",
            reason="short_data",
        )
    if n_bytes > expected:
        raise CloudFormatError(
            f"data has {n_bytes} bytes; expected row_step*height={row_step}*{height}={expected} "
            f"(point_step={point_step}, width={width})"
        )


def decode_pointcloud2(
    fields,
    point_step: int,
    row_step: int,
    height: int,
    width: int,
    is_bigendian: bool,
    data,
    *,
    max_points: int | None = None,
) -> DecodedCloud:
    """Decodes a PointCloud2 layout and buffer into xyz (+ packed rgb) arrays.

    Args:
        fields: sequence of (name, offset, datatype, count) tuples or PointField-like objects.
        point_step, row_step: bytes per point / per row.
        height, width: cloud shape (height 1 for unorganized clouds).
        is_bigendian: byte order of the data.
        data: bytes-like buffer (bytes, bytearray, memoryview, array.array, numpy uint8).
        max_points: reject clouds with more points than this before touching the data.

    Returns:
        DecodedCloud with xyz (N, 3) float32 (NaN kept) and rgb_packed (N,) uint32 or None.
        Colors come from a packed ``rgb``/``rgba`` field (FLOAT32, UINT32 or INT32) or from
        separate UINT8 ``r``, ``g``, ``b`` fields.

    Raises:
        CloudError (a ValueError) with reason ``no_xyz``, ``unsupported_field_type``,
        ``inconsistent_layout``, ``short_data`` or ``too_large``.
    """
    fields = _normalize_fields(fields)
    point_step, row_step, height, width = int(point_step), int(row_step), int(height), int(width)
    if isinstance(data, np.ndarray):
        buf = np.ascontiguousarray(data).view(np.uint8).reshape(-1)
    else:
        try:
            buf = memoryview(data).cast("B")
        except TypeError:  # a plain sequence of ints (slow, but still correct)
            buf = np.asarray(data, dtype=np.uint8)
    n_bytes = buf.nbytes
    _check_layout(fields, point_step, row_step, height, width, n_bytes, max_points)
    by_name = {f[0]: f for f in fields}
    for axis in "xyz":
        _, _, datatype, count = by_name[axis]
        if datatype not in (FLOAT32, FLOAT64) or count != 1:
            raise CloudError(
                f"field {axis!r} is {count} x {_DATATYPE_NAMES[datatype]}; expected 1 x FLOAT32 or FLOAT64",
                reason="unsupported_field_type",
            )
    rgb_fields = _rgb_fields(by_name)
    n = height * width
    if n == 0:
        xyz = np.empty((0, 3), dtype=np.float32)
        rgb = np.empty((0,), dtype=np.uint32) if rgb_fields else None
        return DecodedCloud(xyz=xyz, rgb_packed=rgb, height=height, width=width)

    order = ">" if is_bigendian else "<"
    names, formats, offsets = [], [], []
    for name in ["x", "y", "z", *rgb_fields]:
        _, offset, datatype, count = by_name[name]
        names.append(name)
        formats.append(order + _DATATYPE_CODES[datatype])
        offsets.append(offset)
    sdt = np.dtype({"names": names, "formats": formats, "offsets": offsets, "itemsize": point_step})
    raw = np.frombuffer(buf, dtype=np.uint8, count=row_step * height)
    # (height, width) structured view honoring row padding; a view, not a copy.
    points = np.ndarray(shape=(height, width), dtype=sdt, buffer=raw, strides=(row_step, point_step))
    contiguous_rows = row_step == width * point_step or height == 1
    xo, yo, zo = (by_name[a][1] for a in "xyz")
    if (
        contiguous_rows
        and all(by_name[a][2] == FLOAT32 for a in "xyz")
        and yo == xo + 4
        and zo == xo + 8
        and bool(is_bigendian) == _NATIVE_BIG
    ):
        xyz = np.ndarray(shape=(n, 3), dtype=np.float32, buffer=raw, offset=xo, strides=(point_step, 4))
    else:
        xyz = np.empty((n, 3), dtype=np.float32)
        flat = points.reshape(-1) if contiguous_rows else points
        for k, axis in enumerate("xyz"):
            xyz[:, k] = flat[axis].reshape(-1)
    rgb_packed = _decode_rgb(points, rgb_fields, by_name) if rgb_fields else None
    return DecodedCloud(xyz=xyz, rgb_packed=rgb_packed, height=height, width=width)


def decode_cloud_message(msg, *, max_points: int | None = None) -> DecodedCloud:
    """decode_pointcloud2 over anything shaped like a PointCloud2 (no ROS import).

    Works for a RawCloud, an rclpy sensor_msgs/PointCloud2 and a rosbags-deserialized one: it reads
    the attributes fields, point_step, row_step, height, width, is_bigendian and data.
    """
    return decode_pointcloud2(
        msg.fields,
        msg.point_step,
        msg.row_step,
        msg.height,
        msg.width,
        bool(msg.is_bigendian),
        msg.data,
        max_points=max_points,
    )


def decode_raw(raw: RawCloud, *, max_points: int | None = None) -> DecodedCloud:
    """decode_pointcloud2 over a RawCloud."""
    return decode_cloud_message(raw, max_points=max_points)


def _rgb_fields(by_name) -> list[str]:
    for name in ("rgb", "rgba"):
        if name in by_name:
            _, _, datatype, count = by_name[name]
            if datatype not in (FLOAT32, UINT32, INT32) or count != 1:
                raise CloudError(
                    f"field {name!r} is {count} x {_DATATYPE_NAMES[datatype]}; expected a packed "
                    "1 x FLOAT32, UINT32 or INT32",
                    reason="unsupported_field_type",
                )
            return [name]
    if all(c in by_name for c in "rgb"):
        for c in "rgb":
            if by_name[c][2] != UINT8 or by_name[c][3] != 1:
                raise CloudError(
                    f"field {c!r} is {by_name[c][3]} x {_DATATYPE_NAMES[by_name[c][2]]}; expected 1 x UINT8",
                    reason="unsupported_field_type",
                )
        return ["r", "g", "b"]
    return []


def _decode_rgb(points: np.ndarray, rgb_fields: list[str], by_name) -> np.ndarray:
    if len(rgb_fields) == 1:
        col = points[rgb_fields[0]]
        # Packed float32 / int32 colors are a uint32 bit pattern: reinterpret, never convert.
        # The alpha byte is left in place; unpack_rgb ignores it. Native order stays a view.
        packed = col.view(np.dtype(col.dtype.str[0] + "u4")).reshape(-1)
        if packed.dtype != np.uint32:
            packed = packed.astype(np.uint32)
        return packed
    r, g, b = (points[c].reshape(-1).astype(np.uint32) for c in "rgb")
    return (r << 16) | (g << 8) | b


def encode_xyz(xyz: np.ndarray, rgb: np.ndarray | None = None) -> RawCloud:
    """Encodes an unorganized cloud: float32 x, y, z (+ packed float32 rgb when `rgb` is given).

    Args:
        xyz: (N, 3) points, m.
        rgb: optional (N, 3) colors in [0, 1] (float) or 0..255 (uint8).

    Returns:
        RawCloud with point_step 12 (16 with rgb), little-endian, height 1, width N.
    """
    xyz = np.asarray(xyz)
    if xyz.ndim != 2 or xyz.shape[1] != 3:
        raise ValueError(f"xyz must be (N, 3); got shape {xyz.shape}")
    n = xyz.shape[0]
    fields = [("x", 0, FLOAT32, 1), ("y", 4, FLOAT32, 1), ("z", 8, FLOAT32, 1)]
    if rgb is None:
        data = np.ascontiguousarray(xyz, dtype="<f4").tobytes()
        return RawCloud(fields, 12, 12 * n, 1, n, False, data)
    rgb = np.asarray(rgb)
    if rgb.shape != (n, 3):
        raise ValueError(f"rgb must be (N, 3) = ({n}, 3); got shape {rgb.shape}")
    out = np.empty((n, 4), dtype="<f4")
    out[:, :3] = xyz
    out[:, 3] = pack_rgb(rgb).astype("<u4").view("<f4")
    fields.append(("rgb", 12, FLOAT32, 1))
    return RawCloud(fields, 16, 16 * n, 1, n, False, out.tobytes())


def encode_xyzrgb(xyz: np.ndarray, rgb: np.ndarray) -> RawCloud:
    """encode_xyz with color (float32 packed rgb, the PCL convention)."""
    return encode_xyz(xyz, rgb)


def encode_points(points: np.ndarray) -> RawCloud:
    """Encodes a preprocess_cloud output: (N, 3) xyz or (N, 6) xyz + rgb in [0, 1]."""
    points = np.asarray(points)
    if points.ndim != 2 or points.shape[1] not in (3, 6):
        raise ValueError(f"points must be (N, 3) or (N, 6); got shape {points.shape}")
    if points.shape[1] == 3:
        return encode_xyz(points)
    return encode_xyz(points[:, :3], points[:, 3:])
