"""Depth camera realism: z^2 noise, holes at discontinuities, extrinsic jitter, distractor (seeded)."""

from __future__ import annotations

import mujoco
import numpy as np
import pytest

from dp_sim.core import SimConfig, SimScene
from dp_sim.core.sensors import corrupt_depth, discontinuity_mask, set_mujoco_camera


@pytest.mark.parametrize("z", [0.5, 1.0, 2.0])
def test_depth_noise_grows_with_distance_squared(z):
    depth = np.full((200, 200), z, dtype=np.float32)
    noisy = corrupt_depth(depth, np.random.default_rng(0), 0.001, 0.0, 0.5, 0.02)
    err = noisy - depth
    assert abs(err.mean()) < 3e-5 * z * z * 10
    assert err.std() == pytest.approx(0.001 * z * z, rel=0.03)
    # seeded: the same generator state gives the same image, another seed another one
    again = corrupt_depth(depth, np.random.default_rng(0), 0.001, 0.0, 0.5, 0.02)
    np.testing.assert_array_equal(noisy, again)
    other = corrupt_depth(depth, np.random.default_rng(1), 0.001, 0.0, 0.5, 0.02)
    assert not np.array_equal(noisy, other)


def test_holes_at_depth_discontinuities():
    depth = np.full((100, 100), 1.2, dtype=np.float32)
    depth[30:70, 30:70] = 1.0  # a box in front of a wall: 20 cm step at its border
    edges = discontinuity_mask(depth, 0.02)
    ring = np.zeros_like(edges)
    ring[29:71, 29:71] = True
    ring[31:69, 31:69] = False  # one pixel each side of the box border
    assert np.all(ring[edges]) and edges.sum() > 0.9 * ring.sum()
    out = corrupt_depth(depth, np.random.default_rng(3), 0.0, 0.0, 0.5, 0.02)
    holes = out == 0
    assert not np.any(holes & ~edges)  # holes only at the discontinuity
    assert holes[edges].mean() == pytest.approx(0.5, abs=0.1)
    np.testing.assert_array_equal(out[~holes], depth[~holes])  # no noise asked: values unchanged


def test_scene_realism_on_for_manipulation_off_for_reach():
    lift = SimScene(SimConfig(task="lift", camera_width=80, camera_height=60))
    reach = SimScene(SimConfig(task="reach", camera_width=80, camera_height=60))
    try:
        assert lift.cfg.realism and not reach.cfg.realism
        offsets, angles = [], []
        for seed in range(10):
            lift.reset(seed)
            d = lift.true_camera[:3, 3] - lift.nominal_camera[:3, 3]
            assert np.all(np.abs(d) <= lift.cfg.camera_jitter_m + 1e-12)
            r = lift.true_camera[:3, :3] @ lift.nominal_camera[:3, :3].T
            ang = np.degrees(np.arccos(np.clip((np.trace(r) - 1) / 2, -1, 1)))
            assert ang <= lift.cfg.camera_jitter_deg + 1e-9  # the angle is bounded, whatever the axis
            offsets.append(np.linalg.norm(d))
            angles.append(ang)
            # the consumer is given the nominal transform
            np.testing.assert_array_equal(lift.render(rgb=False)["transform"], lift.nominal_camera)
            assert lift.layout.distractor is not None
        assert np.mean(offsets) > 0.001 and np.mean(angles) > 0.1
        reach.reset(3)
        np.testing.assert_array_equal(reach.true_camera, reach.nominal_camera)
        assert reach.layout.distractor is None

        # per-episode seeding: the same seed renders the same noisy cloud, noise-free differs
        lift.reset(5)
        a = lift.render(rgb=False)["xyz"]
        lift.reset(5)
        b = lift.render(rgb=False)["xyz"]
        np.testing.assert_array_equal(a, b)
        lift.reset(5)
        clean = lift.render(rgb=False, noise=False)["xyz"]
        assert len(clean) > len(a)  # holes
        # the jittered camera really moved the image: the clean cloud differs from the nominal one
        lift.reset(6)
        jittered = lift.render(rgb=False, noise=False)["depth"]
        set_mujoco_camera(lift.model, lift._cam_id, lift.nominal_camera)
        mujoco.mj_forward(lift.model, lift.data)
        nominal = lift.render(rgb=False, noise=False)["depth"]
        assert np.abs(jittered - nominal).max() > 0.01
    finally:
        lift.close()
        reach.close()
