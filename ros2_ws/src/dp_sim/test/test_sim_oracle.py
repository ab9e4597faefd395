"""Oracle baseline core (chunks of the expert's plan from the true poses) and the tray-heading metric."""

from __future__ import annotations

import json

import numpy as np
import pytest

from dp_sim.core import SimConfig, SimScene, expert_step, make_expert
from dp_sim.core.metrics import heading_fractions, heading_from_statuses, tray_axis_coordinate, tray_heading
from dp_sim.core.oracle import OraclePlanner, layout_from_status

DT = 0.1


def _scene(task: str, **kw) -> SimScene:
    return SimScene(SimConfig(task=task, camera_width=64, camera_height=48, **kw))


def _status(scene) -> dict:
    return json.loads(json.dumps(scene.task_state()))  # as sim/episode_status carries it


def test_oracle_row0_is_the_expert_action_from_the_published_poses_and_lift_succeeds():
    scene = _scene("lift", episode_timeout_s=8.0)
    try:
        scene.reset(3)
        oracle = OraclePlanner("lift", dt=DT, rows=15, kin=scene.kin)
        assert oracle.joint_names[-1] == "panda_finger_joint1" and len(oracle.joint_names) == 8
        oracle.start(_status(scene), scene.q)
        reference = make_expert("lift", kin=scene.kin)
        reference.start(scene)
        while scene.success_time is None and not scene.is_timeout():
            rows = oracle.chunk(scene.q, DT)
            assert rows.shape == (15, 8) and rows.dtype == np.float32
            # the look-ahead rows move at most the expert's speed: consecutive rows are close
            assert np.abs(np.diff(rows[:, :7], axis=0)).max() < 0.2
            action = expert_step(scene, reference, DT)  # the expert as it wrote the demonstrations
            np.testing.assert_allclose(rows[0], action, atol=2e-3)  # poses are rounded to 1 um
            scene.step(DT)
        assert scene.success_time is not None, "the oracle's plan did not lift the cube"
    finally:
        scene.close()


def test_layout_from_status_refuses_a_status_without_poses():
    with pytest.raises(ValueError, match="object poses"):
        layout_from_status({"seed": 1})
    lay = layout_from_status({"cubes": [[0.5, 0.0, 0.025, 0.1]], "trays": [[0.5, 0.2], [0.5, -0.2]]})
    assert lay.cube_size == pytest.approx(0.05) and lay.trays.shape == (2, 2)


def test_tray_axis_coordinate_and_heading_classes():
    trays = np.array([[0.5, 0.25], [0.45, -0.25]])
    s = tray_axis_coordinate(np.array([[0.5, 0.25], [0.45, -0.25], [0.475, 0.0]]), trays)
    np.testing.assert_allclose(s, [-1.0, 1.0, 0.0], atol=1e-12)
    start = np.array([0.5, 0.0, 0.025])
    path = np.linspace([0.5, 0.0, 0.2], [0.45, -0.24, 0.2], 10)
    cube = np.tile([0.5, 0.0, 0.1], (10, 1))
    assert tray_heading(trays, start, path, cube)["heading"] == "tray1"
    hover = np.tile([0.48, 0.05, 0.2], (10, 1))
    assert tray_heading(trays, start, hover, cube)["heading"] == "between"
    assert tray_heading(trays, start, hover, np.tile(start, (10, 1)))["heading"] == "stalled"
    back_and_forth = np.concatenate([path, path[::-1], np.linspace([0.5, 0, 0.2], [0.5, 0.24, 0.2], 5)])
    h = tray_heading(trays, start, back_and_forth, np.tile(start, (25, 1)))
    assert h["heading"] == "tray1" and h["switched"]
    assert heading_fractions([h, None, {"heading": "between"}]) == {
        "tray0": 0.0, "tray1": 0.5, "between": 0.5, "stalled": 0.0,
    }  # fmt: skip
    assert heading_fractions([None]) is None


def test_heading_on_physical_rollouts_expert_commits_holding_aloft_is_between():
    """The expert commits to the tray it chose; stopping after the lift (cube carried, never
    transported toward a tray: what averaging the modes does) counts as 'between'."""
    scene = _scene("place_bimodal", episode_timeout_s=10.0)
    expert = make_expert("place_bimodal", kin=scene.kin)
    try:
        for stop_at in (None, "transport"):
            scene.reset(5)
            expert.start(scene)
            statuses = [_status(scene)]
            while scene.success_time is None and not scene.is_timeout():
                if stop_at is None or expert.phase_name != stop_at:
                    expert_step(scene, expert, DT)
                scene.step(DT)
                statuses.append(_status(scene))
            h = heading_from_statuses(statuses[::2])  # 5 Hz, as sim_node publishes them
            if stop_at is None:
                assert h["heading"] == f"tray{expert.target_index}", h
                assert not h["switched"] and h["closest_tray_m"][expert.target_index] < 0.03
            else:
                assert h["heading"] == "between" and h["cube_lifted"], h
                assert max(abs(h["tray_axis_min"]), abs(h["tray_axis_max"])) < 0.5
                assert min(h["closest_tray_m"]) > 0.12
    finally:
        scene.close()


def test_oracle_on_reach_follows_the_reach_expert():
    scene = _scene("reach")
    try:
        scene.reset(11)
        oracle = OraclePlanner("reach", kin=scene.kin)
        assert len(oracle.joint_names) == 7
        oracle.start(_status(scene), scene.q)
        reference = make_expert("reach", kin=scene.kin)
        reference.start(scene)
        for _ in range(5):
            rows = oracle.chunk(scene.q, DT)
            np.testing.assert_allclose(rows[0], expert_step(scene, reference, DT), atol=2e-3)
            scene.step(DT)
        with pytest.raises(ValueError, match="dt must be > 0"):
            OraclePlanner("reach", dt=0.0)
    finally:
        scene.close()
