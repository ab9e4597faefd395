"""dp_eval core: ROS-free import, metrics, config validation, bag round trips, episode split."""

from __future__ import annotations

import pathlib
import subprocess
import sys

import numpy as np
import pytest
from rosbags.highlevel import AnyReader
from rosbags.rosbag2 import StoragePlugin, Writer
from rosbags.typesys import Stores, get_types_from_msg, get_typestore

from dp_eval.core.bagio import BagReader, BagWriter, find_msg_file, header_stamp_ns, make_typestore
from dp_eval.core.config import EvalConfig
from dp_eval.core.episodes import load_bag
from dp_eval.core.messages import decode_chunk, decode_cloud, make_action_chunk, make_cloud, make_joint_state
from dp_eval.core.metrics import episode_metrics, interp_targets, json_safe

SRC = pathlib.Path(__file__).resolve().parents[2]


def test_core_does_not_import_rclpy():
    code = (
        "import sys, dp_eval.core, dp_eval.core.stepped, dp_eval.core.report, dp_eval.core.synthetic\n"
        "assert 'rclpy' not in sys.modules, 'core imported rclpy'\n"
    )
    paths = [str(p) for p in SRC.iterdir() if (p / "setup.py").exists()]
    env_path = ":".join(paths)
    r = subprocess.run(
        [sys.executable, "-c", code], env={"PYTHONPATH": env_path, "PATH": "/usr/bin:/bin"},
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert r.returncode == 0, r.stderr


def test_metrics_known_offset():
    rec_t = np.arange(0, 3.0, 0.1)
    rec_q = np.stack([rec_t, 2 * rec_t], axis=1)
    stamps = np.array([0.0, 0.5, 1.0])
    dt, h = 0.1, 15
    times = stamps[:, None] + dt * np.arange(h)
    truth = interp_targets(rec_t, rec_q, times, 0.05)
    chunks = truth + np.array([0.3, 0.4])  # L2 offset 0.5 everywhere
    m = episode_metrics(stamps, chunks, dt, rec_t, rec_q, (1, 4, 8, "end"))
    for key in ("l2_step_1", "l2_step_4", "l2_step_8", "l2_step_end", "l2_mean"):
        assert m[key] == pytest.approx(0.5, abs=1e-9), key
    assert m["chunk_rate_hz"] == pytest.approx(2.0)
    assert m["per_joint_mae"] == pytest.approx([0.3, 0.4])
    assert m["final_position_error"] == pytest.approx(np.linalg.norm(chunks[-1, -1] - rec_q[-1]))
    # Rows past the recording are not compared.
    late = episode_metrics(np.array([2.5]), chunks[:1], dt, rec_t, rec_q, ("end",))
    assert late["err"][0, -1] != late["err"][0, -1]  # NaN
    assert json_safe({"a": float("nan"), "b": np.float32(1.5)}) == {"a": None, "b": 1.5}


def test_eval_config_validation():
    with pytest.raises(ValueError, match="camera_to_target"):
        EvalConfig(camera_to_target=[1.0, 2.0])
    with pytest.raises(ValueError, match="output_storage"):
        EvalConfig(output_storage="bag")
    with pytest.raises(ValueError, match="unknown EvalConfig keys"):
        EvalConfig.from_dict({"nope": 1})
    assert EvalConfig().steps == [1, 4, 8, "end"]


def _chunk_rows(k):
    return (np.arange(15 * 7, dtype=np.float32).reshape(15, 7) + k) * 0.01


@pytest.mark.parametrize("storage", ["mcap", "sqlite3"])
def test_our_bag_reads_back_with_plain_rosbags(tmp_path, storage):
    ts = make_typestore()
    path = tmp_path / "ours"
    xyz = np.random.default_rng(0).normal(size=(50, 3)).astype(np.float32)
    with BagWriter(path, storage=storage, typestore=ts) as w:
        for k in range(3):
            t = 1.0 + 0.1 * k
            names = [f"j{i}" for i in range(7)]
            chunk = make_action_chunk(ts, t, k, "p@1", names, 0.1, _chunk_rows(k))
            w.write("dp/action_chunk", int(t * 1e9), chunk)
            w.write("dp/points", int(t * 1e9), make_cloud(ts, t, "world", xyz))
            w.write("joint_states", int(t * 1e9), make_joint_state(ts, t, ["a", "b"], [k, -k]))
    assert (path / "metadata.yaml").is_file()
    # Plain rosbags, no typestore given: ActionChunk must come from the definitions in the bag.
    with AnyReader([path]) as r:
        assert {c.topic: c.msgtype for c in r.connections}["dp/action_chunk"] == "dp_msgs/msg/ActionChunk"
        chunks, clouds, js = [], [], []
        for conn, t_ns, raw in r.messages():
            msg = r.deserialize(raw, conn.msgtype)
            if conn.topic == "dp/action_chunk":
                chunks.append((t_ns, msg))
            elif conn.topic == "dp/points":
                clouds.append(msg)
            else:
                js.append(msg)
    assert [c[1].chunk_id for c in chunks] == [0, 1, 2]
    for k, (t_ns, msg) in enumerate(chunks):
        assert t_ns == int((1.0 + 0.1 * k) * 1e9)
        ch = decode_chunk(msg)
        np.testing.assert_array_equal(ch.rows, _chunk_rows(k))
        assert ch.dt == 0.1 and ch.policy_id == "p@1" and ch.joint_names[6] == "j6"
    np.testing.assert_array_equal(decode_cloud(clouds[1]).xyz, xyz)
    assert list(js[2].position) == [2.0, -2.0]


@pytest.mark.parametrize("storage", [StoragePlugin.MCAP, StoragePlugin.SQLITE3])
def test_plain_rosbags_bag_reads_with_ours(tmp_path, storage):
    ts = get_typestore(Stores.ROS2_KILTED)
    text = find_msg_file("dp_msgs", "ActionChunk").read_text()
    ts.register(get_types_from_msg(text, "dp_msgs/msg/ActionChunk"))
    path = tmp_path / "theirs"
    with Writer(path, version=9, storage_plugin=storage) as w:
        conn = w.add_connection("dp/action_chunk", "dp_msgs/msg/ActionChunk", typestore=ts)
        msg = make_action_chunk(ts, 2.5, 7, "x", [f"j{i}" for i in range(7)], 0.05, _chunk_rows(7))
        raw = ts.serialize_cdr(msg, "dp_msgs/msg/ActionChunk")
        w.write(conn, 123, raw)
    with BagReader(path) as r:
        assert r.topics == {"dp/action_chunk": "dp_msgs/msg/ActionChunk"}
        (m,) = list(r.messages())
        assert header_stamp_ns(m.rawdata) == 2_500_000_000
        assert r.cdr(m) == bytes(raw)
        ch = decode_chunk(r.deserialize(m))
    assert ch.chunk_id == 7 and ch.dt == 0.05
    np.testing.assert_array_equal(ch.rows, _chunk_rows(7))


def test_writer_refuses_existing_and_unknown(tmp_path):
    (tmp_path / "x").mkdir()
    with pytest.raises(FileExistsError):
        BagWriter(tmp_path / "x")
    with pytest.raises(ValueError, match="storage"):
        BagWriter(tmp_path / "y", storage="rosbag")
    with BagWriter(tmp_path / "z") as w, pytest.raises(ValueError, match="unknown message type"):
        w.add_topic("a", "nope_msgs/msg/Nope")


def test_load_bag_splits_episodes(tmp_path):
    from dp_eval.core.synthetic import write_synthetic_bag

    info = write_synthetic_bag(
        tmp_path / "bag", storage="sqlite3", episodes=2, episode_s=1.0, width=16, height=12
    )
    bag = load_bag(tmp_path / "bag")
    assert len(bag.episodes) == 2
    assert bag.cloud_stamps.size == info["counts"]["camera/points"] == 22
    assert [e.i1 - e.i0 + 1 for e in bag.episodes] == [11, 11]
    assert bag.cloud_frame == "camera_optical_frame"
    np.testing.assert_allclose(
        bag.transforms[("world", "camera_optical_frame")], info["transform"], atol=1e-9
    )
    t, q = bag.actions.arrays(info["joint_names"])
    assert t.size == 22 and q.shape == (22, 7)
    with pytest.raises(ValueError, match="no action topic"):
        load_bag(tmp_path / "bag", action_topic="missing/topic")
