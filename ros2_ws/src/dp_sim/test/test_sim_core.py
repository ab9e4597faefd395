"""ROS-free simulator core: scene, randomization, kinematics, camera, expert, follower."""

from __future__ import annotations

import subprocess
import sys

import mujoco
import numpy as np
import pytest

from dp_sim.core import HOME_Q, JOINT_NAMES, ReachExpert, SimConfig, SimScene, expert_step, load_panda
from dp_sim.core.runtime import SimNodeConfig, TrajectoryFollower
from dp_sim.core.scene import camera_transform_from_config, transform_points


@pytest.fixture(scope="module")
def scene():
    s = SimScene(SimConfig())
    yield s
    s.close()


def test_scene_loads_with_panda_joints(scene):
    assert scene.model.njnt == 7 + 2  # arm + fingers (the reach cube is a static target)
    assert tuple(scene.joint_names) == JOINT_NAMES
    assert np.all(scene.lower < scene.upper)


def test_reset_is_seeded_and_within_ranges(scene):
    cfg = scene.cfg
    scene.reset(3)
    a = (scene.cube_poses.copy(), scene.q.copy())
    scene.reset(4)
    b = scene.cube_poses.copy()
    scene.reset(3)
    np.testing.assert_array_equal(scene.cube_poses, a[0])
    np.testing.assert_array_equal(scene.q, a[1])
    assert not np.allclose(a[0], b)
    for seed in range(30):
        scene.reset(seed)
        x, y, z, yaw = scene.cube_poses[0]
        assert cfg.cube_x_range[0] <= x <= cfg.cube_x_range[1]
        assert cfg.cube_y_range[0] <= y <= cfg.cube_y_range[1]
        assert cfg.cube_yaw_range[0] <= yaw <= cfg.cube_yaw_range[1]
        assert z == pytest.approx(cfg.cube_size_m / 2)
        assert np.all(np.abs(scene.q - HOME_Q) <= cfg.init_q_noise_rad + 1e-12)


def test_fk_matches_between_pinocchio_and_mujoco(scene):
    kin = load_panda()
    rng = np.random.default_rng(0)
    for _ in range(10):
        q = rng.uniform(kin.lower, kin.upper)
        scene.data.qpos[scene._qadr] = q
        mujoco.mj_kinematics(scene.model, scene.data)
        np.testing.assert_allclose(scene.tcp_pose(), kin.tcp_pose(q), atol=1e-6)


def test_servo_tracks_command_with_lag(scene):
    scene.reset(0)
    target = scene.q.copy()
    target[0] += 0.5
    scene.set_command(target)
    scene.step(0.05)
    assert abs(scene.q[0] - scene.q_cmd[0]) > 0.05  # tracked by a servo, not teleported
    assert scene.qd[0] > 0.5
    scene.step(2.0)
    np.testing.assert_allclose(scene.q, target, atol=1e-3)
    # a large step saturates the joint torque at the Panda's limit (87 Nm joints 1-4, 12 Nm 5-7)
    target[0] += 1.0
    target[6] += 1.0
    scene.set_command(target)
    peak = np.zeros(7)
    for _ in range(20):
        scene.step(0.002)
        peak = np.maximum(peak, np.abs(scene.data.actuator_force[:7]))
    assert peak[0] == pytest.approx(87.0) and peak[6] == pytest.approx(12.0)
    with pytest.raises(ValueError):
        scene.set_command([0.0] * 6)


def test_cloud_is_plausible_and_shows_the_cube(scene):
    scene.reset(11)
    obs = scene.render()
    h, w = scene.cfg.camera_height, scene.cfg.camera_width
    assert obs["depth"].shape == (h, w) and obs["rgb_image"].shape == (h, w, 3)
    assert obs["xyz"].dtype == np.float32 and obs["xyz"].shape[1] == 3
    assert obs["rgb"].shape == obs["xyz"].shape
    np.testing.assert_allclose(obs["transform"], camera_transform_from_config(scene.cfg), atol=1e-6)
    world = transform_points(obs["transform"], obs["xyz"])
    # the table top is at z = 0 and nothing lies below it
    assert world[:, 2].min() > -0.01
    goal = scene.goal_points()[0]
    near = np.linalg.norm(world - (goal - [0, 0, scene.cfg.cube_size_m / 2]), axis=1) < 0.05
    crop = (world[:, 2] > 0.005) & (world[:, 2] < 0.7)
    cube = world[near & crop]
    assert len(cube) >= 20
    # the visible cube points lie on the cube
    assert np.all(cube[:, 2] <= goal[2] + 0.005)
    # red cube in RGB
    rgb = obs["rgb"][near & crop]
    assert rgb[:, 0].mean() > 2 * rgb[:, 1].mean()


def test_depth_noise_is_seeded():
    s = SimScene(
        SimConfig(
            sensor_realism="on", depth_noise_m=0.01, depth_dropout=0.1, camera_width=64, camera_height=48
        )
    )
    try:
        s.reset(1)
        a = s.render(rgb=False)["xyz"]
        s.reset(1)
        b = s.render(rgb=False)["xyz"]
        np.testing.assert_array_equal(a, b)
        c = s.render(rgb=False, noise=False)["xyz"]
        assert len(c) > len(a)
    finally:
        s.close()


@pytest.mark.parametrize("variant,n", [("reach", 20), ("bimodal", 10)])
def test_expert_succeeds(variant, n):
    s = SimScene(SimConfig(variant=variant))
    expert = ReachExpert(kin=s.kin)
    ok, targets = 0, set()
    for seed in range(n):
        s.reset(seed)
        expert.start(s)
        for _ in range(100):
            expert_step(s, expert, 0.1)
            s.step(0.1)
            if s.success_time is not None:
                break
        ok += s.success_time is not None
        targets.add(expert.target_index)
    s.close()
    assert ok / n >= 0.95
    if variant == "bimodal":
        assert targets == {0, 1}


def test_config_validation():
    with pytest.raises(ValueError, match="variant"):
        SimConfig(variant="push")
    with pytest.raises(ValueError, match="cube_x_range"):
        SimConfig(cube_x_range=[0.6, 0.3])
    with pytest.raises(ValueError, match="cloud_frame"):
        SimNodeConfig(cloud_frame="base")
    with pytest.raises(ValueError, match="joint_names"):
        SimNodeConfig(joint_names=["a"])


def test_trajectory_follower_interpolates():
    f = TrajectoryFollower()
    q0 = np.zeros(7)
    f.set(10.0, ["panda_joint1"], [1.0, 2.0], [[1.0], [3.0]], q0)
    assert f.sample(9.0)[0] == 0.0
    assert f.sample(10.5)[0] == pytest.approx(0.5)
    assert f.sample(11.5)[0] == pytest.approx(2.0)
    assert f.sample(20.0)[0] == pytest.approx(3.0)
    assert np.all(f.sample(11.5)[1:] == 0.0)
    with pytest.raises(ValueError):
        f.set(0.0, ["nope"], [1.0], [[0.0]], q0)
    with pytest.raises(ValueError):
        f.set(0.0, ["panda_joint1"], [2.0, 1.0], [[0.0], [1.0]], q0)


def test_core_does_not_import_rclpy():
    code = (
        "import sys, dp_sim.core, dp_sim.core.dataset, dp_sim.core.runtime; "
        "assert 'rclpy' not in sys.modules, 'rclpy imported'"
    )
    env_path = ":".join(p for p in sys.path if p)
    res = subprocess.run(
        [sys.executable, "-c", code],
        env={"PYTHONPATH": env_path, "MUJOCO_GL": "egl", "PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert res.returncode == 0, res.stderr
