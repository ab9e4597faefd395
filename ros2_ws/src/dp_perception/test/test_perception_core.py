"""Unit tests of the ROS-free perception core on seeded synthetic clouds."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest

from dp_common.core.pointcloud import (
    FLOAT32,
    FLOAT64,
    INT16,
    UINT8,
    UINT32,
    decode_pointcloud2,
    decode_raw,
    encode_points,
    encode_xyz,
    pack_rgb,
    unpack_rgb,
)
from dp_common.core.transforms import quaternion_to_matrix
from dp_perception.core import PerceptionConfig, PerceptionError, preprocess_cloud, sampling, transform_crop
from dp_perception.core.preprocess import transform_crop_cols
from dp_perception.core.sampling import coverage_radius, farthest_point_sample, voxel_downsample
from dp_perception.core.synthetic import TABLETOP_CROP, tabletop_cloud

CODES = {FLOAT32: "f4", FLOAT64: "f8", UINT32: "u4", UINT8: "u1", INT16: "i2"}


def make_cloud(xyz, fields, point_step, big=False, height=1, row_pad=0, values=None):
    """Packs (N, 3) xyz (+ extra field values) into PointCloud2 raw arguments."""
    n = xyz.shape[0]
    order = ">" if big else "<"
    dt = np.dtype(
        {
            "names": [f[0] for f in fields],
            "formats": [order + CODES[f[2]] for f in fields],
            "offsets": [f[1] for f in fields],
            "itemsize": point_step,
        }
    )
    arr = np.zeros(n, dtype=dt)
    for k, a in enumerate("xyz"):
        arr[a] = xyz[:, k]
    for name, v in (values or {}).items():
        arr[name] = v
    width = n // height
    rows = arr.view(np.uint8).reshape(height, width * point_step)
    padded = np.zeros((height, width * point_step + row_pad), dtype=np.uint8)
    padded[:, : width * point_step] = rows
    return dict(
        fields=fields,
        point_step=point_step,
        row_step=width * point_step + row_pad,
        height=height,
        width=width,
        is_bigendian=big,
        data=padded.tobytes(),
    )


def rand_xyz(n=600, seed=0):
    rng = np.random.default_rng(seed)
    xyz = rng.uniform(-2, 2, size=(n, 3)).astype(np.float32)
    xyz[rng.random(n) < 0.1] = np.nan
    return xyz


XYZ32 = [("x", 0, FLOAT32, 1), ("y", 4, FLOAT32, 1), ("z", 8, FLOAT32, 1)]
XYZ64 = [("x", 0, FLOAT64, 1), ("y", 8, FLOAT64, 1), ("z", 16, FLOAT64, 1)]


@pytest.mark.parametrize(
    "name, fields, step, big, color",
    [
        ("xyz32 packed", XYZ32, 12, False, None),
        ("xyz32 padded + rgb float", [*XYZ32, ("rgb", 16, FLOAT32, 1)], 32, False, "float"),
        ("xyz32 + rgb uint32", [*XYZ32, ("rgb", 12, UINT32, 1)], 16, False, "uint"),
        ("xyz32 + rgba uint32", [*XYZ32, ("rgba", 12, UINT32, 1)], 16, False, "uint"),
        ("xyz32 big-endian + rgb", [*XYZ32, ("rgb", 12, UINT32, 1)], 16, True, "uint"),
        ("xyz64", XYZ64, 24, False, None),
        ("xyz64 big-endian padded", [*XYZ64, ("rgb", 28, FLOAT32, 1)], 40, True, "float"),
        (
            "z-first order",
            [("z", 0, FLOAT32, 1), ("x", 4, FLOAT32, 1), ("y", 8, FLOAT32, 1)],
            16,
            False,
            None,
        ),
        (
            "separate r,g,b",
            [*XYZ32, ("r", 12, UINT8, 1), ("g", 13, UINT8, 1), ("b", 14, UINT8, 1)],
            16,
            False,
            "split",
        ),
    ],
)
def test_decode_layouts(name, fields, step, big, color):
    xyz = rand_xyz()
    rng = np.random.default_rng(1)
    rgb8 = rng.integers(0, 256, size=(len(xyz), 3), dtype=np.uint8)
    packed = pack_rgb(rgb8)
    values = {}
    if color == "float":
        values[fields[-1][0]] = packed.view(np.float32)
    elif color == "uint":
        values[fields[-1][0]] = packed | np.uint32(0xFF000000)  # alpha must be ignored
    elif color == "split":
        values = {"r": rgb8[:, 0], "g": rgb8[:, 1], "b": rgb8[:, 2]}
    raw = make_cloud(xyz, fields, step, big=big, values=values)
    dec = decode_pointcloud2(**raw)
    assert dec.xyz.shape == (len(xyz), 3) and dec.xyz.dtype == np.float32
    np.testing.assert_array_equal(dec.xyz, xyz)  # NaN compare equal here
    if color is None:
        assert dec.rgb_packed is None
    else:
        np.testing.assert_allclose(dec.rgb(), rgb8 / 255.0, atol=1e-6)


def test_decode_organized_with_row_padding_and_pointfield_objects():
    xyz = rand_xyz(12 * 10)
    raw = make_cloud(xyz, [*XYZ32, ("intensity", 12, FLOAT32, 1)], 16, height=12, row_pad=8)
    raw["fields"] = [SimpleNamespace(name=n, offset=o, datatype=d, count=c) for n, o, d, c in raw["fields"]]
    dec = decode_pointcloud2(**raw)
    assert (dec.height, dec.width) == (12, 10)
    np.testing.assert_array_equal(dec.xyz, xyz)


def test_decode_common_layout_is_a_zero_copy_view():
    raw = make_cloud(rand_xyz(), [*XYZ32, ("rgb", 16, FLOAT32, 1)], 32)
    dec = decode_pointcloud2(**raw)
    assert not dec.xyz.flags.owndata and dec.xyz.base is not None


def test_encode_roundtrip_xyz_and_rgb():
    xyz = rand_xyz(100)
    rgb = np.random.default_rng(2).random((100, 3)).astype(np.float32)
    raw = encode_points(np.concatenate([xyz, rgb], axis=1))
    assert raw.point_step == 16 and raw.width == 100 and raw.height == 1
    assert [f[0] for f in raw.fields] == ["x", "y", "z", "rgb"]
    dec = decode_raw(raw)
    np.testing.assert_array_equal(dec.xyz, xyz)
    np.testing.assert_allclose(dec.rgb(), rgb, atol=0.5 / 255 + 1e-6)
    raw3 = encode_xyz(xyz)
    assert raw3.point_step == 12 and len(raw3.data) == 1200
    np.testing.assert_array_equal(decode_raw(raw3).xyz, xyz)
    np.testing.assert_allclose(unpack_rgb(pack_rgb(rgb)), rgb, atol=0.5 / 255 + 1e-6)


def _good_raw(n=64):
    return make_cloud(rand_xyz(n), [*XYZ32, ("rgb", 12, FLOAT32, 1)], 16)


@pytest.mark.parametrize(
    "case, change, reason",
    [
        ("no xyz", dict(fields=[("x", 0, FLOAT32, 1), ("y", 4, FLOAT32, 1)]), "no_xyz"),
        ("int16 x", dict(fields=[("x", 0, INT16, 1), ("y", 4, FLOAT32, 1), ("z", 8, FLOAT32, 1)]), None),
        ("unknown datatype", dict(fields=[*XYZ32, ("rgb", 12, 42, 1)]), "unsupported_field_type"),
        ("float64 rgb", dict(fields=[*XYZ32, ("rgb", 8, FLOAT64, 1)]), "unsupported_field_type"),
        ("field past point_step", dict(point_step=10, row_step=640), "inconsistent_layout"),
        ("row_step too small", dict(row_step=100), "inconsistent_layout"),
        ("data longer than declared", dict(width=32, row_step=512), "inconsistent_layout"),
        ("point_step zero", dict(point_step=0, row_step=0), "inconsistent_layout"),
        ("duplicate field", dict(fields=[*XYZ32, ("x", 12, FLOAT32, 1)]), "inconsistent_layout"),
        ("short data", dict(width=80, row_step=1280), "short_data"),
    ],
)
def test_decode_rejects_bad_layouts(case, change, reason):
    raw = {**_good_raw(), **change}
    with pytest.raises(PerceptionError) as err:
        decode_pointcloud2(**raw)
    assert isinstance(err.value, ValueError)
    assert err.value.reason == (reason or "unsupported_field_type"), case
    assert "expected" in str(err.value) or "declared" in str(err.value)


def test_decode_short_data_bytes_cut():
    raw = _good_raw()
    raw["data"] = raw["data"][:-5]
    with pytest.raises(PerceptionError, match="shorter") as err:
        decode_pointcloud2(**raw)
    assert err.value.reason == "short_data"


def test_empty_cloud_decodes_then_is_rejected():
    raw = make_cloud(np.zeros((0, 3), np.float32), XYZ32, 12)
    dec = decode_pointcloud2(**raw)
    assert dec.xyz.shape == (0, 3)
    with pytest.raises(PerceptionError) as err:
        preprocess_cloud(dec.xyz, None, PerceptionConfig())
    assert err.value.reason == "empty"


def test_all_nan_cloud_rejected():
    xyz = np.full((5000, 3), np.nan, dtype=np.float32)
    xyz[::7] = np.inf
    with pytest.raises(PerceptionError) as err:
        preprocess_cloud(xyz, None, PerceptionConfig())
    assert err.value.reason == "too_few_points"
    assert "min_points" in str(err.value)


def test_five_million_point_cloud_rejected_cheaply():
    cfg = PerceptionConfig()
    n = 5_000_000
    with pytest.raises(PerceptionError) as err:
        preprocess_cloud(np.zeros((n, 3), dtype=np.float32), None, cfg)
    assert err.value.reason == "too_large"
    raw = dict(
        fields=XYZ32, point_step=16, row_step=16 * n, height=1, width=n, is_bigendian=False,
        data=bytes(16 * n),
    )  # fmt: skip
    with pytest.raises(PerceptionError) as err:
        decode_pointcloud2(**raw, max_points=cfg.max_input_points)
    assert err.value.reason == "too_large"


def _transform(seed=3):
    rng = np.random.default_rng(seed)
    q = rng.normal(size=4)
    return quaternion_to_matrix(rng.uniform(-0.5, 0.5, 3), q)


def test_crop_is_exact_and_drops_non_finite():
    rng = np.random.default_rng(4)
    xyz = rng.uniform(-1.5, 1.5, size=(20000, 3)).astype(np.float32)
    xyz[rng.random(len(xyz)) < 0.05] = np.nan
    xyz[rng.random(len(xyz)) < 0.01, 1] = np.inf
    t = _transform()
    lo, hi = np.array([-0.3, -0.4, -0.2]), np.array([0.5, 0.3, 0.6])
    ref = xyz.astype(np.float64) @ t[:3, :3].T + t[:3, 3]
    with np.errstate(invalid="ignore"):
        inside = np.all((ref >= lo) & (ref <= hi), axis=1)
        near = np.any((np.abs(ref - lo) < 1e-4) | (np.abs(ref - hi) < 1e-4), axis=1)
    keep = ~near  # float32 rounding may flip points within 1e-4 m of a face: leave them out
    idx, pts = transform_crop(xyz[keep], t, lo, hi)
    expected = np.flatnonzero(inside[keep])
    np.testing.assert_array_equal(idx, expected)
    np.testing.assert_allclose(pts, ref[keep][expected], atol=1e-5)
    assert np.isfinite(pts).all()
    mask, cols = transform_crop_cols(xyz[keep], t, lo, hi, chunk=777)  # many chunks, ragged end
    np.testing.assert_array_equal(np.flatnonzero(mask), expected)
    np.testing.assert_array_equal(cols.T, pts)
    idx0, pts0 = transform_crop(xyz[keep], None, lo, hi)  # identity transform
    with np.errstate(invalid="ignore"):
        inside0 = np.all((xyz[keep] >= lo) & (xyz[keep] <= hi), axis=1)
    np.testing.assert_array_equal(idx0, np.flatnonzero(inside0))


def test_quaternion_to_matrix():
    t = quaternion_to_matrix([1, 2, 3], [0, 0, np.sin(np.pi / 4), np.cos(np.pi / 4)])
    np.testing.assert_allclose(t[:3, :3] @ [1, 0, 0], [0, 1, 0], atol=1e-12)
    np.testing.assert_allclose(t[:3, 3], [1, 2, 3])
    with pytest.raises(ValueError):
        quaternion_to_matrix([0, 0, 0], [0, 0, 0, 0])


@pytest.mark.parametrize("dense", [True, False])
def test_voxel_counts_one_point_per_occupied_cell(dense, monkeypatch):
    if not dense:
        monkeypatch.setattr(sampling, "_DENSE_MAX_CELLS", 0)
    rng = np.random.default_rng(5)
    v = 0.01
    cells = rng.choice(40 * 40 * 40, size=700, replace=False)
    ijk = np.stack(np.unravel_index(cells, (40, 40, 40)), axis=1)
    reps = rng.integers(1, 6, size=len(cells))
    cell_of_point = np.repeat(ijk, reps, axis=0)
    pts = ((cell_of_point + rng.uniform(0.05, 0.95, size=cell_of_point.shape)) * v).astype(np.float32)
    perm = rng.permutation(len(pts))
    pts, cell_of_point = pts[perm], cell_of_point[perm]
    sel = voxel_downsample(pts, v, origin=[0, 0, 0])
    assert len(sel) == len(cells)
    assert np.all(np.diff(sel) > 0)
    got = {tuple(c) for c in cell_of_point[sel]}
    assert got == {tuple(c) for c in ijk}


def test_voxel_dense_and_sorted_paths_agree(monkeypatch):
    pts = np.random.default_rng(6).uniform(0, 0.3, size=(5000, 3)).astype(np.float32)
    a = voxel_downsample(pts, 0.02)
    monkeypatch.setattr(sampling, "_DENSE_MAX_CELLS", 0)
    b = voxel_downsample(pts, 0.02)
    np.testing.assert_array_equal(a, b)


@pytest.fixture(scope="module")
def small_tabletop():
    c = tabletop_cloud(width=320, height=240, seed=7)
    return c


def _cfg(**kw):
    base = dict(crop_min=list(TABLETOP_CROP[0]), crop_max=list(TABLETOP_CROP[1]))
    base.update(kw)
    return PerceptionConfig(**base)


@pytest.mark.parametrize("backend", ["fpsample", "torch", "exact"])
def test_fps_exactly_n_distinct_points_and_deterministic(backend):
    pts = np.random.default_rng(8).uniform(-1, 1, size=(3000, 3)).astype(np.float32)
    a = farthest_point_sample(pts, 256, backend=backend, seed=11)
    b = farthest_point_sample(pts, 256, backend=backend, seed=11)
    assert a.shape == (256,) and len(np.unique(a)) == 256
    assert a.min() >= 0 and a.max() < len(pts)
    np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("backend", ["fpsample", "torch", "exact"])
def test_fps_distinct_indices_with_coincident_points(backend):
    pts = np.zeros((2000, 3), dtype=np.float32)  # e.g. a driver's (0, 0, 0) for invalid depth
    pts[:10] = np.random.default_rng(13).random((10, 3))
    idx = farthest_point_sample(pts, 100, backend=backend, seed=0)
    assert len(np.unique(idx)) == 100
    assert set(range(10)) <= set(idx.tolist())  # the distinct points are all sampled


def test_torch_fps_matches_exact_fps():
    pts = np.random.default_rng(9).uniform(-1, 1, size=(2000, 3)).astype(np.float32)
    np.testing.assert_array_equal(
        farthest_point_sample(pts, 128, backend="torch", seed=1),
        farthest_point_sample(pts, 128, backend="exact", seed=1),
    )


@pytest.mark.parametrize("num_points, voxel", [(512, 0.01), (1024, 0.0075)])
def test_preprocess_output_and_coverage_bound(small_tabletop, num_points, voxel):
    c = small_tabletop
    cfg = _cfg(num_points=num_points, voxel_size=voxel)
    out = preprocess_cloud(c.xyz, None, cfg, c.transform, seed=3)
    assert out.shape == (num_points, 3) and out.dtype == np.float32
    assert len(np.unique(out, axis=0)) == num_points
    lo, hi = np.array(cfg.crop_min), np.array(cfg.crop_max)
    assert np.all(out >= lo - 1e-5) and np.all(out <= hi + 1e-5)
    np.testing.assert_array_equal(out, preprocess_cloud(c.xyz, None, cfg, c.transform, seed=3))
    assert not np.array_equal(out, preprocess_cloud(c.xyz, None, cfg, c.transform, seed=4))
    _, cropped = transform_crop(c.xyz.reshape(-1, 3), c.transform, cfg.crop_min, cfg.crop_max)
    cropped = np.ascontiguousarray(cropped)
    exact = cropped[farthest_point_sample(cropped, num_points, backend="exact", seed=3)]
    ratio = coverage_radius(cropped, out) / coverage_radius(cropped, exact)
    assert ratio <= 1.25, ratio


def test_preprocess_rgb_follows_points(small_tabletop):
    c = small_tabletop
    cfg = _cfg(num_points=256, use_rgb=True, voxel_size=0.01)
    xyz = c.xyz.reshape(-1, 3)
    packed = pack_rgb(c.rgb.reshape(-1, 3))
    out = preprocess_cloud(xyz, packed, cfg, c.transform, seed=0)
    out_f = preprocess_cloud(xyz, unpack_rgb(packed), cfg, c.transform, seed=0)
    np.testing.assert_array_equal(out, out_f)
    assert out.shape == (256, 6)
    idx, pts = transform_crop(xyz, c.transform, cfg.crop_min, cfg.crop_max)
    lookup = {tuple(p): i for i, p in zip(idx, np.asarray(pts), strict=True)}
    src = np.array([lookup[tuple(p)] for p in out[:, :3]])
    np.testing.assert_allclose(out[:, 3:], c.rgb.reshape(-1, 3)[src] / 255.0, atol=1e-6)
    with pytest.raises(PerceptionError) as err:
        preprocess_cloud(xyz, None, cfg, c.transform)
    assert err.value.reason == "no_rgb"


def test_padding_between_min_points_and_num_points_and_reject_below():
    rng = np.random.default_rng(10)
    cfg = PerceptionConfig(crop_min=[0, 0, 0], crop_max=[1, 1, 1], num_points=512, min_points=100)
    inside = rng.uniform(0.1, 0.9, size=(300, 3)).astype(np.float32)
    outside = rng.uniform(2, 3, size=(1000, 3)).astype(np.float32)
    xyz = np.concatenate([outside[:500], inside, outside[500:]])
    out = preprocess_cloud(xyz, None, cfg)
    assert out.shape == (512, 3)
    np.testing.assert_array_equal(out[:300], inside)  # all valid points, in input order
    np.testing.assert_array_equal(out[300:], inside[: 512 - 300])  # then repeated cyclically
    with pytest.raises(PerceptionError) as err:
        preprocess_cloud(np.concatenate([outside, inside[:99]]), None, cfg)
    assert err.value.reason == "too_few_points"


def test_coarse_voxel_falls_back_to_all_points_for_distinct_output():
    pts = np.random.default_rng(12).uniform(0, 1, size=(2000, 3)).astype(np.float32)
    cfg = PerceptionConfig(crop_min=[0, 0, 0], crop_max=[1, 1, 1], num_points=1024, voxel_size=0.25)
    out = preprocess_cloud(pts, None, cfg)
    assert len(np.unique(out, axis=0)) == 1024


def test_remove_plane_drops_the_table(small_tabletop):
    pytest.importorskip("open3d")
    c = small_tabletop
    kw = dict(num_points=256, voxel_size=0.005)
    base = preprocess_cloud(c.xyz, None, _cfg(**kw), c.transform, seed=0)
    cfg = _cfg(remove_plane=True, plane_distance=0.004, min_points=64, **kw)
    out = preprocess_cloud(c.xyz, None, cfg, c.transform, seed=0)
    on_table = lambda p: float(np.mean(np.abs(p[:, 2]) < 0.004))  # noqa: E731
    assert on_table(base) > 0.3
    assert on_table(out) < 0.05
    np.testing.assert_array_equal(out, preprocess_cloud(c.xyz, None, cfg, c.transform, seed=0))


@pytest.mark.parametrize(
    "kw",
    [
        dict(crop_min=[0, 0]),
        dict(crop_min=[1, 0, 0], crop_max=[0, 1, 1]),
        dict(voxel_size=-0.1),
        dict(num_points=0),
        dict(min_points=2000),
        dict(fps_backend="gpu"),
        dict(target_frame=""),
    ],
)
def test_config_validation(kw):
    with pytest.raises(ValueError, match="Got"):
        PerceptionConfig(**kw)


def test_config_dict_roundtrip():
    cfg = PerceptionConfig(num_points=512)
    assert PerceptionConfig.from_dict(cfg.to_dict()) == cfg
    with pytest.raises(ValueError, match="unknown"):
        PerceptionConfig.from_dict({"bogus": 1})
