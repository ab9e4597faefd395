"""Realtime replay: the bag played with /clock into the real nodes, their outputs recorded.

    bag_player (this process, /clock)  ──camera/points, joint_states──▶  perception_node (process)
                                                                      ──▶ policy_node (process)
    bag_recorder (this process) ◀── dp/points, dp/action_chunk, /diagnostics

The nodes run as separate processes through dp_common.launcher (as a launch file would), with
use_sim_time, the checkpoint's perception parameters, a static camera transform (from the bag's
/tf_static or EvalConfig.camera_to_target) and `autostart`. The chunks are read back from the
output bag and scored exactly like stepped mode. Not deterministic: what the nodes see depends on
scheduling.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from pathlib import Path

import numpy as np

from dp_common.bags import BagReader
from dp_common.core.transforms import matrix_to_pose7
from dp_common.msgs import ns_to_s
from dp_common.msgs.chunk import read_chunk
from dp_eval.core.config import EvalConfig
from dp_eval.core.episodes import BagData
from dp_eval.core.report import Chunks

logger = logging.getLogger(__name__)

OUTPUT_TOPICS = ["dp/points", "dp/action_chunk", "/diagnostics"]


def _policy_config(checkpoint):
    from dp_policy.core import PolicyConfig

    meta = json.loads((Path(checkpoint) / "config.json").read_text())
    return PolicyConfig.from_dict(meta["policy"])


def node_specs(checkpoint, bag: BagData, cfg: EvalConfig, seed: int):
    """NodeSpecs of perception_node and policy_node for replaying `bag` with `checkpoint`."""
    from dp_common.launcher import NodeSpec
    from dp_eval.stepped import resolve_transform

    pc = _policy_config(checkpoint)
    perception = {k: v for k, v in dict(pc.perception).items() if v is not None}
    target = perception.get("target_frame", "world")
    transform = resolve_transform(bag.cloud_frame, target, bag, cfg)
    node_params = {"use_sim_time": True, "use_tf": False, "seed": cfg.perception_seed}
    if transform is not None:
        node_params.update(camera_frame=bag.cloud_frame, camera_to_target=matrix_to_pose7(transform))
    remap = [("camera/points", cfg.cloud_topic)] if cfg.cloud_topic.lstrip("/") != "camera/points" else []
    return [
        NodeSpec(
            "dp_perception", "perception_node", parameters=[{**perception, **node_params}], remappings=remap
        ),
        NodeSpec(
            "dp_policy",
            "policy_node",
            parameters=[
                {
                    "use_sim_time": True,
                    "checkpoint": str(Path(checkpoint).resolve()),
                    "autostart": True,
                    "seed": int(seed),
                    "device": cfg.device,
                    "publish_markers": False,
                    "num_threads": 1,
                }
            ],
            remappings=[("joint_states", cfg.joint_topic)] if cfg.joint_topic != "joint_states" else [],
        ),
    ]


def chunks_from_bag(path, bag: BagData) -> tuple[list[Chunks], list[float], str, list[str], float]:
    """Chunks of an output bag per episode, plus stamp->reception latencies (s), policy id, names, dt."""
    per_ep: list[list] = [[] for _ in bag.episodes]
    latencies, pid, names, dt = [], "", [], 0.1
    with BagReader(path) as r:
        for m in r.messages(["/dp/action_chunk", "dp/action_chunk"]):
            ch = read_chunk(r.deserialize(m))
            pid, names, dt = ch.policy_id, list(ch.joint_names), ch.dt
            latencies.append(ns_to_s(m.timestamp_ns - ch.stamp_ns))
            for e, ep in enumerate(bag.episodes):
                if ep.t0 - 1e-6 <= ns_to_s(ch.stamp_ns) <= ep.t1 + 1e-6:
                    per_ep[e].append(ch)
                    break
    out = []
    for chs in per_ep:
        if chs:
            h = min(c.rows.shape[0] for c in chs)
            stamps_s = np.array([ns_to_s(c.stamp_ns) for c in chs])
            out.append(Chunks(stamps_s, np.stack([c.rows[:h] for c in chs])))
        else:
            out.append(Chunks(np.zeros(0), np.zeros((0, 1, max(1, len(names))), dtype=np.float32)))
    return out, latencies, pid, names, dt


def diagnostics_from_bag(path) -> dict:
    """Last value of every key of every status on /diagnostics in an output bag."""
    out: dict[str, dict[str, str]] = {}
    with BagReader(path) as r:
        for m in r.messages(["/diagnostics", "diagnostics"]):
            for st in r.deserialize(m).status:
                out.setdefault(st.name, {}).update({kv.key: kv.value for kv in st.values})
    return out


def run_realtime(
    bag_path,
    bag: BagData,
    checkpoint,
    cfg: EvalConfig,
    out_dir,
    seed: int = 0,
    rate: float = 1.0,
    name: str | None = None,
    progress: bool = True,
    startup_timeout_s: float = 90.0,
) -> dict:
    """Plays `bag_path` into perception_node + policy_node processes; returns the report run dict."""
    import rclpy
    from rclpy.context import Context
    from rclpy.executors import SingleThreadedExecutor
    from rclpy.node import Node
    from rclpy.parameter import Parameter

    from dp_common.launcher import ProcessRunner
    from dp_eval.player import BagPlayer
    from dp_eval.recorder import BagRecorder

    out_dir = Path(out_dir)
    out_bag = out_dir / "outputs"
    if out_bag.exists():
        import shutil

        shutil.rmtree(out_bag)
    specs = node_specs(checkpoint, bag, cfg, seed)
    context = Context()
    rclpy.init(context=context)
    sim_time = [Parameter("use_sim_time", Parameter.Type.BOOL, True)]
    rec_node = Node("dp_eval_recorder", context=context, parameter_overrides=sim_time)
    play_node = Node("dp_eval_player", context=context)
    executor = SingleThreadedExecutor(context=context)
    executor.add_node(rec_node)
    executor.add_node(play_node)
    recorder = BagRecorder(rec_node, out_bag, OUTPUT_TOPICS, storage=cfg.output_storage)
    play_topics = [cfg.cloud_topic, cfg.joint_topic, "robot_description", "/tf_static"]
    player = BagPlayer(play_node, bag_path, topics=play_topics)
    stop = threading.Event()

    def spin():
        while not stop.is_set() and context.ok():
            executor.spin_once(timeout_sec=0.05)

    spinner = threading.Thread(target=spin, daemon=True)
    spinner.start()
    runner = ProcessRunner(specs, log_dir=out_dir / "logs")
    wall = 0.0
    try:
        runner.start()
        deadline = time.monotonic() + startup_timeout_s
        cloud_topic = play_node.resolve_topic_name(cfg.cloud_topic)
        while time.monotonic() < deadline:
            if runner.dead():
                raise RuntimeError(f"node(s) exited during start-up: {runner.dead()}; see {out_dir / 'logs'}")
            ready = (
                play_node.count_subscribers(cloud_topic) > 0
                and play_node.count_publishers("/dp/action_chunk") > 0
                and rec_node.count_publishers("/dp/points") > 0
            )
            if ready:
                break
            time.sleep(0.2)
        else:
            raise RuntimeError(f"nodes not ready after {startup_timeout_s:.0f} s; see {out_dir / 'logs'}")
        time.sleep(1.0)  # let the remaining subscriptions match
        bar = None
        if progress:
            from tqdm import tqdm

            bar = tqdm(total=player.reader.message_count, desc=f"realtime {name}", unit="msg", leave=False)
        t0 = time.monotonic()
        player.play_realtime(
            rate,
            should_stop=lambda: bool(runner.dead()),
            on_progress=(lambda m: bar.update(1)) if bar else None,
        )
        # Keep the clock running a little so the last observations still produce chunks.
        end_ns = player.last_ns or player.end_ns
        t_end = time.monotonic() + 1.0
        while time.monotonic() < t_end:
            end_ns += int(0.01 * rate * 1e9)
            player.publish_clock(end_ns)
            time.sleep(0.01)
        wall = time.monotonic() - t0
        if bar is not None:
            bar.close()
        if runner.dead():
            raise RuntimeError(f"node(s) exited during replay: {runner.dead()}; see {out_dir / 'logs'}")
    finally:
        runner.stop()
        stop.set()
        spinner.join(timeout=5.0)
        recorder.close()
        player.close()
        executor.shutdown()
        rec_node.destroy_node()
        play_node.destroy_node()
        context.try_shutdown()
    chunks, latencies, pid, names, dt = chunks_from_bag(out_bag, bag)
    pc = _policy_config(checkpoint)
    names = names or list(pc.joint_names)
    return {
        "name": name or Path(checkpoint).resolve().name,
        "path": str(checkpoint),
        "policy_id": pid,
        "joint_names": names,
        "dt": dt or pc.dt,
        "chunks": chunks,
        "timings": {"stamp_to_chunk_received": latencies},
        "dropped": {},
        "wall_s": wall,
        "sensor_span_s": bag.duration_s,  # the whole bag is played in real time (gaps too)
        "config": {"rate": rate, "nodes": [s.executable for s in specs]},
        "extra": {"diagnostics": diagnostics_from_bag(out_bag), "recorded": dict(recorder.counts)},
    }
