"""bag_player: plays a rosbag2 (sqlite3 or mcap) onto its recorded topics, without `ros2 bag`.

Reads with the `rosbags` library, publishes every message on the topic it was recorded on, with
the type resolved from its name (``pkg/msg/Name`` -> ``pkg.msg.Name``): the recorded CDR bytes are
published as they are (ROS 1 bags are converted to CDR with the rosbags typestore first);
:func:`to_rclpy` turns them into an rclpy message where one is needed.

Modes:
  realtime  honors recorded timing (bag time x 1/rate) and publishes /clock (bag time) between
            messages at clock_hz, so nodes on use_sim_time follow the bag.
  stepped   as fast as possible, in bag order; /clock is set to each message's bag time just
            before it is published.

Where the `ros2` CLI has `bag`, ``use_ros2_bag:=true`` runs ``ros2 bag play --clock`` instead.

    ros2 run dp_eval bag_player --ros-args -p bag:=demos/ep0 -p rate:=2.0
    python -m dp_eval.player --ros-args -p bag:=demos/ep0 -p mode:=stepped
"""

from __future__ import annotations

import math
import shutil
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import rclpy
from rclpy.executors import ExternalShutdownException
from rclpy.node import Node
from rosgraph_msgs.msg import Clock

from dp_common.bags import BagMessage, BagReader
from dp_common.msgs import ROS
from dp_common.params import declare_config
from dp_common.qos import latched_qos, reliable_qos

LATCHED_TOPICS = ("robot_description", "tf_static")
MODES = ("realtime", "stepped")


def to_rclpy(cdr: bytes, msgtype: str):
    """CDR bytes -> rclpy message of `msgtype` (rclpy.serialization.deserialize_message)."""
    from rclpy.serialization import deserialize_message

    return deserialize_message(cdr, ROS[msgtype])


def ros2_bag_available() -> bool:
    """True when a `ros2` CLI with the `bag` verb is on PATH."""
    exe = shutil.which("ros2")
    if not exe:
        return False
    try:
        return subprocess.run([exe, "bag", "-h"], capture_output=True, timeout=20).returncode == 0
    except (OSError, subprocess.TimeoutExpired):
        return False


def ros2_bag_play_command(bag: str, rate: float = 1.0, topics=()) -> list[str]:
    """The `ros2 bag play` command line equivalent to realtime mode."""
    cmd = ["ros2", "bag", "play", str(bag), "--clock", "--rate", str(rate)]
    if topics:
        cmd += ["--topics", *topics]
    return cmd


@dataclass
class PlayerConfig:
    """Parameters of bag_player."""

    bag: str = field(default="", metadata={"help": "rosbag2 directory (sqlite3 or mcap)."})
    mode: str = field(
        default="realtime", metadata={"help": "realtime (recorded timing, /clock) | stepped (fast)."}
    )
    rate: float = field(default=1.0, metadata={"help": "realtime: bag seconds per wall second."})
    publish_clock: bool = field(default=True, metadata={"help": "Publish /clock (bag time)."})
    clock_hz: float = field(default=100.0, metadata={"help": "realtime: /clock rate between messages, Hz."})
    start_delay_s: float = field(
        default=0.5, metadata={"help": "Wall seconds to let subscribers match before playing."}
    )
    topics: list[str] = field(default_factory=lambda: [""], metadata={"help": "Topics to play; [''] = all."})
    exit_when_done: bool = field(default=True, metadata={"help": "Exit when the bag is played."})
    use_ros2_bag: bool = field(
        default=False, metadata={"help": "Run `ros2 bag play --clock` instead when it exists."}
    )

    def __post_init__(self) -> None:
        if self.mode not in MODES:
            raise ValueError(f"mode must be one of {MODES}. Got {self.mode!r}")
        if not (math.isfinite(self.rate) and self.rate > 0):
            raise ValueError(f"rate must be > 0. Got {self.rate}")
        if not self.clock_hz > 0:
            raise ValueError(f"clock_hz must be > 0 Hz. Got {self.clock_hz}")
        if self.start_delay_s < 0:
            raise ValueError(f"start_delay_s must be >= 0 s. Got {self.start_delay_s}")
        self.topics = [t for t in self.topics if t]


class BagPlayer:
    """Publishes a bag's messages through `node` (usable in-process, e.g. by tests and dp_eval).

    Args:
        node: the rclpy node that owns the publishers.
        bag: rosbag2 directory.
        topics: topics to play (None / empty = all).
        publish_clock: publish /clock with the bag time.
        remap: {recorded topic: published topic}.
    """

    def __init__(self, node: Node, bag, topics=None, publish_clock: bool = True, remap=None):
        self.node = node
        self.reader = BagReader(bag).__enter__()
        remap = remap or {}
        wanted = {t.lstrip("/") for t in topics} if topics else None
        self.publishers = {}
        for topic, msgtype in self.reader.topics.items():
            if wanted is not None and topic.lstrip("/") not in wanted:
                continue
            try:
                cls = ROS[msgtype]
            except (ImportError, AttributeError, ValueError):
                node.get_logger().warning(f"skipping {topic}: message type {msgtype} is not importable")
                continue
            latched = topic.lstrip("/") in LATCHED_TOPICS or self.reader.qos_of(topic) == "latched"
            qos = latched_qos() if latched else reliable_qos(depth=100)
            self.publishers[topic] = node.create_publisher(cls, remap.get(topic, topic), qos)
        self.clock_pub = (
            node.create_publisher(Clock, "/clock", reliable_qos(depth=10)) if publish_clock else None
        )
        self._iter = self.reader.messages(list(self.publishers))
        self.count = 0
        self.start_ns = self.reader.start_time_ns
        self.end_ns = self.reader.end_time_ns
        self.last_ns: int | None = None

    def close(self) -> None:
        """Closes the bag."""
        self.reader.__exit__(None, None, None)

    def publish_clock(self, t_ns: int) -> None:
        """Publishes /clock = t_ns (bag time)."""
        if self.clock_pub is not None:
            msg = Clock()
            msg.clock.sec, msg.clock.nanosec = divmod(int(t_ns), 1_000_000_000)
            self.clock_pub.publish(msg)

    def step(self) -> BagMessage | None:
        """Publishes the next message (after /clock at its bag time); None at the end."""
        m = next(self._iter, None)
        if m is None:
            return None
        self.publish_clock(m.timestamp_ns)
        self.publishers[m.topic].publish(self.reader.cdr(m))
        self.count += 1
        self.last_ns = m.timestamp_ns
        return m

    def play_stepped(self, on_step: Callable[[BagMessage], None] | None = None) -> int:
        """Publishes everything as fast as possible; `on_step` runs after each message."""
        while (m := self.step()) is not None:
            if on_step is not None:
                on_step(m)
        return self.count

    def play_realtime(
        self,
        rate: float = 1.0,
        clock_hz: float = 100.0,
        should_stop: Callable[[], bool] | None = None,
        on_progress: Callable[[BagMessage], None] | None = None,
    ) -> int:
        """Publishes with recorded timing scaled by 1/rate, /clock at clock_hz in between."""
        t0_bag = None
        t0_wall = time.monotonic()
        clock_period = 1.0 / clock_hz
        for m in self._iter:
            if t0_bag is None:
                t0_bag = m.timestamp_ns
                t0_wall = time.monotonic()
            target = t0_wall + (m.timestamp_ns - t0_bag) * 1e-9 / rate
            while True:
                if should_stop is not None and should_stop():
                    return self.count
                now = time.monotonic()
                if now >= target:
                    break
                self.publish_clock(t0_bag + int((now - t0_wall) * rate * 1e9))
                time.sleep(min(clock_period, target - now))
            self.publish_clock(m.timestamp_ns)
            self.publishers[m.topic].publish(self.reader.cdr(m))
            self.count += 1
            self.last_ns = m.timestamp_ns
            if on_progress is not None:
                on_progress(m)
        return self.count


class BagPlayerNode(Node):
    """Node wrapper of BagPlayer with parameters (PlayerConfig)."""

    def __init__(self, **kwargs):
        super().__init__("bag_player", **kwargs)
        self.cfg = declare_config(self, PlayerConfig)
        if not self.cfg.bag:
            raise ValueError("parameter 'bag' must name a rosbag2 directory. Got ''")
        self.player = BagPlayer(self, self.cfg.bag, self.cfg.topics or None, self.cfg.publish_clock)

    def play(self) -> int:
        """Plays the bag per the parameters; returns the number of messages published."""
        time.sleep(self.cfg.start_delay_s)
        t0 = time.monotonic()
        if self.cfg.mode == "stepped":
            n = self.player.play_stepped()
        else:
            n = self.player.play_realtime(self.cfg.rate, self.cfg.clock_hz)
        wall = time.monotonic() - t0
        span = (self.player.end_ns - self.player.start_ns) * 1e-9
        self.get_logger().info(
            f"played {n} messages, {span:.2f} s of bag time in {wall:.2f} s "
            f"({span / wall if wall > 0 else float('inf'):.2f}x real time)"
        )
        return n


def main(args=None) -> None:
    """Console script `bag_player`."""
    rclpy.init(args=args)
    node = None
    try:
        node = BagPlayerNode()
        if node.cfg.use_ros2_bag and ros2_bag_available():
            cmd = ros2_bag_play_command(node.cfg.bag, node.cfg.rate, node.cfg.topics)
            node.get_logger().info(f"running {' '.join(cmd)}")
            subprocess.run(cmd, check=False)
        else:
            node.play()
        if not node.cfg.exit_when_done:
            rclpy.spin(node)
    except (KeyboardInterrupt, ExternalShutdownException):
        pass
    finally:
        if node is not None:
            node.player.close()
            node.destroy_node()
        rclpy.try_shutdown()


if __name__ == "__main__":
    main()
