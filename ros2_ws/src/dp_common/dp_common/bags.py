"""The one bag stack: rosbag2 reading and writing with the `rosbags` library (sqlite3 and mcap).

The typestore is the one of ROS 2 Kilted (or the newest rosbags knows) plus ``dp_msgs/msg/ActionChunk``
registered from its ``.msg`` text, so bags that carry chunks can be read and written without a
built ``dp_msgs``. Bags written here embed every message definition, so any rosbag2 reader (and
``ros2 bag``) can open them.
"""

from __future__ import annotations

import os
import pathlib
import struct
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass

from rosbags.highlevel import AnyReader
from rosbags.interfaces import (
    Qos,
    QosDurability,
    QosHistory,
    QosLiveliness,
    QosReliability,
    QosTime,
)
from rosbags.rosbag2 import StoragePlugin, Writer
from rosbags.serde import SerdeError
from rosbags.typesys import Stores, get_types_from_msg, get_typestore

from dp_common.msgs.types import MsgTypes, bag_types

ACTION_CHUNK_TYPE = "dp_msgs/msg/ActionChunk"
STORAGES = ("mcap", "sqlite3")

_HERE = pathlib.Path(__file__).resolve()


def find_msg_file(package: str, name: str) -> pathlib.Path:
    """Returns the .msg file of `package`/msg/`name`: source tree first, then installed prefixes.

    Raises:
        FileNotFoundError: naming every place that was searched.
    """
    candidates = []
    env_dir = os.environ.get("DP_MSGS_DIR")
    if env_dir:
        candidates.append(pathlib.Path(env_dir) / f"{name}.msg")
    # ros2_ws/src/dp_common/dp_common/bags.py -> ros2_ws/src/<package>/msg (source or symlink)
    for parent in _HERE.parents:
        candidates.append(parent / package / "msg" / f"{name}.msg")
        if parent.name == "src":
            break
    for prefix in os.environ.get("AMENT_PREFIX_PATH", "").split(os.pathsep):
        if prefix:
            candidates.append(pathlib.Path(prefix) / "share" / package / "msg" / f"{name}.msg")
    for c in candidates:
        if c.is_file():
            return c
    raise FileNotFoundError(
        f"{package}/msg/{name}.msg not found; searched {[str(c) for c in candidates]}. "
        "Set DP_MSGS_DIR or source the workspace."
    )


def make_typestore(extra: Sequence[tuple[str, str]] = ()):
    """Returns a rosbags Typestore: ROS 2 Kilted (or latest) + dp_msgs/ActionChunk + `extra`.

    Args:
        extra: (type name like 'pkg/msg/Name', .msg text) pairs to register as well.
    """
    store_enum = getattr(Stores, "ROS2_KILTED", None) or Stores.LATEST
    typestore = get_typestore(store_enum)
    types = {}
    text = find_msg_file("dp_msgs", "ActionChunk").read_text()
    types.update(get_types_from_msg(text, ACTION_CHUNK_TYPE))
    for name, msg_text in extra:
        types.update(get_types_from_msg(msg_text, name))
    typestore.register(types)
    return typestore


def header_stamp_ns(rawdata: bytes | memoryview) -> int | None:
    """Reads header.stamp (ns) of a CDR message whose first field is a std_msgs/Header.

    Cheap: no deserialization, so stamps of large clouds can be listed without decoding them.
    Returns None when the buffer is too short or not little/big-endian CDR.
    """
    if len(rawdata) < 12:
        return None
    kind = rawdata[1]
    if kind not in (0, 1):
        return None
    sec, nsec = struct.unpack_from("<iI" if kind == 1 else ">iI", rawdata, 4)
    return sec * 1_000_000_000 + nsec


def deserialize_cdr(typestore, rawdata: bytes | memoryview, msgtype: str):
    """ROS 2 CDR bytes -> rosbags dataclass, accepting rmw's final padding to 8 bytes.

    Raises:
        rosbags.serde.SerdeError: when the bytes do not decode as `msgtype` (or more than padding
            is left over: a schema mismatch).
    """
    try:
        return typestore.deserialize_cdr(rawdata, msgtype)
    except SerdeError as exc:
        if "size mismatch" not in str(exc) or len(rawdata) < 12:
            raise
        # Decoding stops where the message ends; dropping 4 unread padding bytes changes nothing.
        return typestore.deserialize_cdr(rawdata[:-4], msgtype)


@dataclass
class BagMessage:
    """One message of a bag: topic, ROS type name, bag (receive) time and CDR bytes."""

    topic: str
    msgtype: str
    timestamp_ns: int
    rawdata: bytes
    connection: object


class BagReader:
    """Reads a rosbag2 directory (sqlite3 or mcap) or ROS 1 .bag files.

    Use as a context manager. Messages keep their recorded bytes; :meth:`deserialize` decodes them
    into rosbags dataclasses, :meth:`cdr` returns ROS 2 CDR bytes (converting ROS 1 bags).
    """

    def __init__(self, path: str | os.PathLike | Sequence[str | os.PathLike], typestore=None):
        paths = [path] if isinstance(path, (str, os.PathLike)) else list(path)
        self.paths = [pathlib.Path(p) for p in paths]
        for p in self.paths:
            if not p.exists():
                raise FileNotFoundError(f"bag {p} does not exist")
        self.typestore = typestore or make_typestore()
        self._reader = AnyReader(self.paths, default_typestore=self.typestore)

    @property
    def types(self) -> MsgTypes:
        """The reader's typestore as ``MsgTypes`` (for the message layer's builders)."""
        return bag_types(self.typestore)

    def __enter__(self) -> BagReader:
        self._reader.open()
        return self

    def __exit__(self, *exc) -> None:
        self._reader.close()

    @property
    def is_ros2(self) -> bool:
        """True for rosbag2 (CDR) recordings."""
        return self._reader.is2

    @property
    def topics(self) -> dict[str, str]:
        """{topic: ROS 2 type name} of every connection."""
        return {c.topic: c.msgtype for c in self._reader.connections}

    @property
    def message_count(self) -> int:
        """Number of messages in the bag."""
        return self._reader.message_count

    @property
    def start_time_ns(self) -> int:
        """Bag time of the first message."""
        return self._reader.start_time

    @property
    def end_time_ns(self) -> int:
        """Bag time of the last message (exclusive)."""
        return self._reader.end_time

    def qos_of(self, topic: str) -> str:
        """'latched' when a connection of `topic` was offered transient-local, else 'reliable'."""
        for c in self._reader.connections:
            if c.topic != topic:
                continue
            for q in getattr(c.ext, "offered_qos_profiles", None) or []:
                if getattr(q, "durability", None) == QosDurability.TRANSIENT_LOCAL:
                    return "latched"
        return "reliable"

    def messages(self, topics: Iterable[str] | None = None) -> Iterator[BagMessage]:
        """Yields messages of `topics` (all when None) in bag-time order."""
        wanted = None if topics is None else set(topics)
        conns = [c for c in self._reader.connections if wanted is None or c.topic in wanted]
        if not conns:
            return
        for conn, t_ns, raw in self._reader.messages(connections=conns):
            yield BagMessage(conn.topic, conn.msgtype, t_ns, raw, conn)

    def deserialize(self, msg: BagMessage):
        """Decodes a message into a rosbags dataclass.

        ROS 2 CDR as rmw serializes it (what ``ros2 bag record`` and our recorder store) may end in
        padding to an 8-byte boundary, which rosbags' strict size check (4 bytes) refuses: such a
        message is decoded without its last 4 bytes -- only when they were not read anyway.
        """
        if not self.is_ros2:
            return self._reader.deserialize(msg.rawdata, msg.msgtype)
        return deserialize_cdr(self._reader.typestore, msg.rawdata, msg.msgtype)

    def cdr(self, msg: BagMessage) -> bytes:
        """ROS 2 CDR bytes of a message (recorded bytes for rosbag2, converted for ROS 1)."""
        if self.is_ros2:
            return bytes(msg.rawdata)
        obj = self._reader.deserialize(msg.rawdata, msg.msgtype)
        return bytes(self.typestore.serialize_cdr(obj, msg.msgtype))


def _qos(latched: bool) -> Qos:
    inf = QosTime(sec=0x7FFFFFFF, nsec=0xFFFFFFFF)
    return Qos(
        history=QosHistory.KEEP_LAST,
        depth=1 if latched else 10,
        reliability=QosReliability.RELIABLE,
        durability=QosDurability.TRANSIENT_LOCAL if latched else QosDurability.VOLATILE,
        deadline=inf,
        lifespan=inf,
        liveliness=QosLiveliness.AUTOMATIC,
        liveliness_lease_duration=inf,
        avoid_ros_namespace_conventions=False,
    )


class BagWriter:
    """Writes a rosbag2 directory with mcap or sqlite3 storage, embedding message definitions.

    Args:
        path: output directory (must not exist).
        storage: 'mcap' or 'sqlite3'.
        typestore: rosbags typestore (default: :func:`make_typestore`).
    """

    def __init__(self, path: str | os.PathLike, storage: str = "mcap", typestore=None):
        if storage not in STORAGES:
            raise ValueError(f"storage must be one of {STORAGES}. Got {storage!r}")
        self.path = pathlib.Path(path)
        if self.path.exists():
            raise FileExistsError(f"output bag {self.path} already exists; expected a new path")
        self.storage = storage
        self.typestore = typestore or make_typestore()
        plugin = StoragePlugin.MCAP if storage == "mcap" else StoragePlugin.SQLITE3
        self._writer = Writer(self.path, version=9, storage_plugin=plugin)
        self._conns: dict[str, object] = {}
        self._types: dict[str, str] = {}
        self.count = 0

    @property
    def types(self) -> MsgTypes:
        """The writer's typestore as ``MsgTypes``: build messages with ``types=writer.types``."""
        return bag_types(self.typestore)

    def open(self) -> BagWriter:
        """Opens the bag for writing."""
        self._writer.open()
        return self

    def close(self) -> None:
        """Finishes the bag (writes metadata.yaml)."""
        self._writer.close()

    def __enter__(self) -> BagWriter:
        return self.open()

    def __exit__(self, *exc) -> None:
        self.close()

    def add_topic(self, topic: str, msgtype: str, latched: bool = False) -> None:
        """Declares a topic (idempotent for the same type)."""
        if topic in self._conns:
            if self._types[topic] != msgtype:
                raise ValueError(f"topic {topic} already has type {self._types[topic]}; got {msgtype}")
            return
        if msgtype not in self.typestore.fielddefs:
            raise ValueError(f"unknown message type {msgtype!r}; register its .msg in the typestore")
        self._conns[topic] = self._writer.add_connection(
            topic, msgtype, typestore=self.typestore, offered_qos_profiles=[_qos(latched)]
        )
        self._types[topic] = msgtype

    def write_cdr(self, topic: str, timestamp_ns: int, data: bytes | memoryview) -> None:
        """Writes already serialized CDR bytes on a declared topic."""
        if topic not in self._conns:
            raise KeyError(f"topic {topic} was not declared with add_topic")
        self._writer.write(self._conns[topic], int(timestamp_ns), bytes(data))
        self.count += 1

    def write(self, topic: str, timestamp_ns: int, msg, msgtype: str | None = None) -> None:
        """Serializes a rosbags message dataclass and writes it (declares the topic if needed)."""
        msgtype = msgtype or msg.__msgtype__
        self.add_topic(topic, msgtype)
        self.write_cdr(topic, timestamp_ns, self.typestore.serialize_cdr(msg, msgtype))
