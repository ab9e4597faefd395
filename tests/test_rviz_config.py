"""launch/dp.rviz shows what the nodes publish: every display's topic is published by a node of
sim.launch.py or robot.launch.py, with the message type the display reads, and the display subscribes
with the QoS the publisher offers (else rviz shows nothing: a reliable subscription never matches a
best-effort publisher, a transient-local one never matches a volatile publisher).

The publishers are found in the source of the nodes the launch files start: each executable's entry
point module (setup.py console_scripts) and every dp module it imports, scanned for
``create_publisher(Type, topic, qos)`` calls. Topics may be literals or module constants; the QoS must
be a call of a ``dp_common.qos`` factory, which the test calls to get the profile (nothing duplicated).
Anything the scanner cannot resolve fails the test rather than being skipped, and the scanner's result
is compared with a running perception_node's actual publisher QoS.
"""

from __future__ import annotations

import ast
import dataclasses
import pathlib
import re

import pytest
import yaml
from rclpy.qos import DurabilityPolicy, HistoryPolicy, ReliabilityPolicy

from dp_common import qos as dp_qos
from dp_common.launcher import load_launch_file, parse_launch_args

ROOT = pathlib.Path(__file__).resolve().parents[1]
SRC = ROOT / "ros2_ws" / "src"
RVIZ = ROOT / "launch" / "dp.rviz"
# Launch variants whose nodes may publish what rviz shows (the oracle replaces perception + policy).
LAUNCHES = [
    ("sim.launch.py", []),
    ("sim.launch.py", ["checkpoint:=oracle"]),
    ("robot.launch.py", ["checkpoint:=/tmp/ckpt"]),
]
QOS_FACTORIES = {"sensor_qos", "chunk_qos", "latched_qos", "reliable_qos", "record_qos"}
# rviz display class -> the message type it reads from its topic property.
DISPLAY_TYPES = {
    "rviz_default_plugins/PointCloud2": ("Topic", "sensor_msgs/msg/PointCloud2"),
    "rviz_default_plugins/MarkerArray": ("Topic", "visualization_msgs/msg/MarkerArray"),
    "rviz_default_plugins/Marker": ("Topic", "visualization_msgs/msg/Marker"),
    "rviz_default_plugins/Image": ("Topic", "sensor_msgs/msg/Image"),
    "rviz_default_plugins/RobotModel": ("Description Topic", "std_msgs/msg/String"),
}
# Property names and values as rviz_common writes them (rviz_common/properties/qos_profile_property.cpp):
# "Depth", "History Policy", "Reliability Policy", "Durability Policy" under the topic property.
RVIZ_RELIABILITY = {"Reliable": ReliabilityPolicy.RELIABLE, "Best Effort": ReliabilityPolicy.BEST_EFFORT}
RVIZ_DURABILITY = {"Volatile": DurabilityPolicy.VOLATILE, "Transient Local": DurabilityPolicy.TRANSIENT_LOCAL}


@dataclasses.dataclass(frozen=True)
class Publisher:
    node: str
    topic: str
    msg_type: str
    reliability: ReliabilityPolicy
    durability: DurabilityPolicy
    history: HistoryPolicy
    depth: int | None  # None: not a literal in the source (e.g. a node parameter)
    where: str


def _module_file(module: str) -> pathlib.Path | None:
    """Source file of a dp module (ros2_ws/src/<pkg>/<pkg>/...), None for other modules."""
    top = module.split(".")[0]
    if not (SRC / top / top).is_dir():
        return None
    base = SRC / top / pathlib.Path(*module.split("."))
    for candidate in (base.with_suffix(".py"), base / "__init__.py"):
        if candidate.is_file():
            return candidate
    raise AssertionError(f"dp module {module} has no source file under {SRC / top}")


class ModuleScan:
    """One module's AST: its imported names and module-level string constants."""

    def __init__(self, module: str):
        self.module = module
        self.path = _module_file(module)
        self.tree = ast.parse(self.path.read_text())
        self.imported: dict[str, tuple[str, str]] = {}  # local name -> (module, name)
        self.modules: set[str] = set()
        for n in ast.walk(self.tree):
            if isinstance(n, ast.ImportFrom):
                source = self._absolute(n)
                for a in n.names:
                    self.imported[a.asname or a.name] = (source, a.name)
                    self.modules.add(source)
                    sub = f"{source}.{a.name}"  # `from pkg import submodule`
                    top = sub.split(".")[0]
                    base = SRC / top / pathlib.Path(*sub.split("."))
                    if base.with_suffix(".py").is_file() or (base / "__init__.py").is_file():
                        self.modules.add(sub)
            elif isinstance(n, ast.Import):
                self.modules.update(a.name for a in n.names)
        self.constants: dict[str, str] = {
            t.id: n.value.value
            for n in self.tree.body
            if isinstance(n, ast.Assign)
            and isinstance(n.value, ast.Constant)
            and isinstance(n.value.value, str)
            for t in n.targets
            if isinstance(t, ast.Name)
        }

    def _absolute(self, n: ast.ImportFrom) -> str:
        """The absolute module name of a (possibly relative) `from ... import`."""
        if n.level == 0:
            return n.module
        package = self.module if self.path.name == "__init__.py" else self.module.rsplit(".", 1)[0]
        parts = package.split(".")
        base = ".".join(parts[: len(parts) - (n.level - 1)])
        return f"{base}.{n.module}" if n.module else base


# Modules whose publishers take their topic from a parameter (no literal to resolve): control_node's
# controller commands (controller_preset / command_topic / gripper_topic, dp_control.core.presets).
# rviz shows none of them; any other unresolved topic fails the scan.
PARAMETER_TOPICS = {
    "ros2_ws/src/dp_control/dp_control/command_publishers.py",
    "ros2_ws/src/dp_control/dp_control/servo_backend.py",  # MoveIt Servo's topics: servo_node parameter
}

_SCANS: dict[str, ModuleScan] = {}


def _scan(module: str) -> ModuleScan:
    if module not in _SCANS:
        _SCANS[module] = ModuleScan(module)
    return _SCANS[module]


def _constant(scan: ModuleScan, name: str) -> str | None:
    if name in scan.constants:
        return scan.constants[name]
    if name in scan.imported:
        module, original = scan.imported[name]
        if _module_file(module) is not None:
            return _constant(_scan(module), original)
    return None


def _publishers_in(scan: ModuleScan, node: str) -> list[Publisher]:
    found = []
    for call in ast.walk(scan.tree):
        if not (
            isinstance(call, ast.Call)
            and isinstance(call.func, ast.Attribute)
            and call.func.attr == "create_publisher"
        ):
            continue
        where = f"{scan.path.relative_to(ROOT)}:{call.lineno}"
        assert len(call.args) >= 3, f"{where}: create_publisher(Type, topic, qos) expected positionally"
        type_node, topic_node, qos_node = call.args[:3]
        if isinstance(topic_node, ast.Constant):
            topic = topic_node.value
        else:
            topic = _constant(scan, topic_node.id) if isinstance(topic_node, ast.Name) else None
        if topic is None and scan.path.relative_to(ROOT).as_posix() in PARAMETER_TOPICS:
            continue  # a topic chosen by a parameter, never shown in rviz (see PARAMETER_TOPICS)
        assert isinstance(topic, str), (
            f"{where}: topic {ast.unparse(topic_node)} does not resolve to a string"
        )
        assert isinstance(type_node, ast.Name) and type_node.id in scan.imported, f"{where}: message type?"
        type_module, type_name = scan.imported[type_node.id]
        msg_type = f"{type_module.replace('.', '/')}/{type_name}"
        assert (
            isinstance(qos_node, ast.Call)
            and isinstance(qos_node.func, ast.Name)
            and scan.imported.get(qos_node.func.id) == ("dp_common.qos", qos_node.func.id)
            and qos_node.func.id in QOS_FACTORIES
        ), f"{where}: QoS {ast.unparse(qos_node)} is not a dp_common.qos profile; name it there"
        factory = getattr(dp_qos, qos_node.func.id)
        literal = all(isinstance(a, ast.Constant) for a in qos_node.args) and not qos_node.keywords
        profile = factory(*[a.value for a in qos_node.args]) if literal else factory()
        found.append(
            Publisher(
                node, topic.lstrip("/"), msg_type, profile.reliability, profile.durability, profile.history,
                profile.depth if literal else None, where,
            )
        )  # fmt: skip
    return found


def _entry_module(package: str, executable: str) -> str:
    text = (SRC / package / "setup.py").read_text()
    found = re.findall(rf'"{re.escape(executable)}\s*=\s*([\w.]+):\w+"', text)
    assert len(found) == 1, f"{package}/setup.py: no console_scripts entry for {executable}"
    return found[0]


def node_publishers(package: str, executable: str) -> list[Publisher]:
    """Every publisher the executable's modules (entry point + dp imports, transitively) create."""
    todo, seen, pubs = [_entry_module(package, executable)], set(), []
    while todo:
        module = todo.pop()
        if module in seen or _module_file(module) is None:
            continue
        seen.add(module)
        scan = _scan(module)
        pubs += _publishers_in(scan, executable)
        todo += [m for m in scan.modules if m.split(".")[0].startswith("dp_")]
    return pubs


def _remap(topic: str, remappings) -> str:
    for src, dst in remappings:
        if src.lstrip("/") == topic:
            return dst.lstrip("/")
    return topic


@pytest.fixture(scope="module")
def published() -> dict[str, list[Publisher]]:
    """topic -> publishers, over every node of the launch variants (with their remappings)."""
    by_topic: dict[str, list[Publisher]] = {}
    for name, argv in LAUNCHES:
        module = load_launch_file(ROOT / "launch" / name)
        for spec in module.node_specs(parse_launch_args(module.ARGUMENTS, argv)):
            if not (SRC / spec.package).is_dir():
                continue  # rviz2, robot_state_publisher, static_transform_publisher: not dp nodes
            for pub in node_publishers(spec.package, spec.executable):
                pub = dataclasses.replace(pub, topic=_remap(pub.topic, spec.remappings))
                if pub not in by_topic.get(pub.topic, []):
                    by_topic.setdefault(pub.topic, []).append(pub)
    return by_topic


def rviz_displays(config: dict) -> list[dict]:
    """Every display of an rviz config, groups flattened."""
    out, todo = [], list(config["Visualization Manager"]["Displays"])
    while todo:
        d = todo.pop(0)
        out.append(d)
        todo += d.get("Displays", [])
    return out


def rviz_problems(config: dict, published: dict[str, list[Publisher]]) -> list[str]:
    """What is wrong with the displays of `config` given the publishers (empty = nothing)."""
    problems = []
    for d in rviz_displays(config):
        cls, name = d["Class"], d.get("Name", d["Class"])
        if cls not in DISPLAY_TYPES:
            if any(isinstance(v, dict) and "Value" in v and "Reliability Policy" in v for v in d.values()):
                problems.append(f"{name}: display class {cls} has a topic but no known message type")
            continue
        key, msg_type = DISPLAY_TYPES[cls]
        sub = d.get(key)
        if not isinstance(sub, dict) or not sub.get("Value"):
            problems.append(f"{name}: no '{key}' with a Value")
            continue
        topic = str(sub["Value"]).lstrip("/")
        pubs = published.get(topic, [])
        if not pubs:
            problems.append(f"{name}: no node of the launch files publishes {topic}")
            continue
        if any(p.msg_type != msg_type for p in pubs):
            problems.append(f"{name}: {cls} reads {msg_type}, {topic} carries {[p.msg_type for p in pubs]}")
        # The strongest QoS every publisher offers: best effort if any is, volatile if any is.
        want_rel = (
            ReliabilityPolicy.BEST_EFFORT
            if any(p.reliability == ReliabilityPolicy.BEST_EFFORT for p in pubs)
            else ReliabilityPolicy.RELIABLE
        )
        want_dur = (
            DurabilityPolicy.VOLATILE
            if any(p.durability == DurabilityPolicy.VOLATILE for p in pubs)
            else DurabilityPolicy.TRANSIENT_LOCAL
        )
        got_rel = RVIZ_RELIABILITY.get(sub.get("Reliability Policy"))
        got_dur = RVIZ_DURABILITY.get(sub.get("Durability Policy"))
        if got_rel != want_rel:
            problems.append(
                f"{name}: {topic} reliability {sub.get('Reliability Policy')!r}, publisher {want_rel.name}"
            )
        if got_dur != want_dur:
            problems.append(
                f"{name}: {topic} durability {sub.get('Durability Policy')!r}, publisher {want_dur.name}"
            )
        if sub.get("History Policy") != "Keep Last" or any(
            p.history != HistoryPolicy.KEEP_LAST for p in pubs
        ):
            problems.append(f"{name}: {topic} history must be 'Keep Last' (as every dp publisher)")
        depth = sub.get("Depth")
        known = [p.depth for p in pubs if p.depth is not None]
        if not isinstance(depth, int) or depth < 1:
            problems.append(f"{name}: {topic} Depth {depth!r} must be set (>= 1)")
        elif known and len(known) == len(pubs) and depth != max(known):
            problems.append(f"{name}: {topic} Depth {depth}, publishers' depth {max(known)}")
    return problems


@pytest.fixture(scope="module")
def config() -> dict:
    return yaml.safe_load(RVIZ.read_text())


def test_scanner_finds_the_contract_publishers(published):
    """The scan is not empty and finds the topic contract's publishers with the contract's QoS."""
    assert {"camera/points", "dp/points", "dp/action_chunk", "dp/markers", "robot_description"} <= set(
        published
    )
    # (control_node's controller command topics come from parameters: PARAMETER_TOPICS)
    assert "diagnostics" in published
    (points,) = published["dp/points"]
    assert points.node == "perception_node" and points.reliability == ReliabilityPolicy.BEST_EFFORT
    (desc,) = published["robot_description"]
    assert desc.durability == DurabilityPolicy.TRANSIENT_LOCAL and desc.depth == 1
    assert {p.node for p in published["dp/action_chunk"]} == {"policy_node", "oracle_node"}
    # commanded vs measured end-effector paths (dp_control.control_markers)
    (control_markers,) = published["dp/control_markers"]
    assert control_markers.node == "control_node" and control_markers.msg_type.endswith("/MarkerArray")
    assert control_markers.reliability == ReliabilityPolicy.RELIABLE and control_markers.depth == 1


def test_scanner_agrees_with_a_running_node(rclpy_context, published):
    """perception_node's actual dp/points publisher has the QoS the scan derived from its source."""
    from dp_perception.perception_node import PerceptionNode

    node = PerceptionNode(context=rclpy_context)
    try:
        (info,) = node.get_publishers_info_by_topic("/dp/points")
        (scanned,) = published["dp/points"]
        assert info.qos_profile.reliability == scanned.reliability
        assert info.qos_profile.durability == scanned.durability
        assert info.topic_type == scanned.msg_type
    finally:
        node.destroy_node()


def test_every_display_matches_its_publisher(config, published):
    displays = rviz_displays(config)
    topics = {str(d[DISPLAY_TYPES[d["Class"]][0]]["Value"]) for d in displays if d["Class"] in DISPLAY_TYPES}
    assert {"camera/points", "dp/points", "dp/markers", "dp/control_markers", "robot_description"} <= topics
    assert rviz_problems(config, published) == []


def test_the_check_catches_wrong_displays(config, published):
    """The bug this test exists for (dp/points subscribed reliable) and its relatives are reported."""
    import copy

    bad = copy.deepcopy(config)
    by_topic = {
        d[DISPLAY_TYPES[d["Class"]][0]]["Value"]: d for d in rviz_displays(bad) if d["Class"] in DISPLAY_TYPES
    }
    by_topic["dp/points"]["Topic"]["Reliability Policy"] = "Reliable"
    by_topic["robot_description"]["Description Topic"]["Durability Policy"] = "Volatile"
    by_topic["dp/markers"]["Topic"]["Value"] = "dp/commanded_path"
    by_topic["camera/points"]["Class"] = "rviz_default_plugins/Image"
    by_topic["dp/control_markers"]["Topic"]["Reliability Policy"] = "Best Effort"
    problems = rviz_problems(bad, published)
    assert any("dp/points reliability 'Reliable'" in p for p in problems)
    assert any("robot_description durability 'Volatile'" in p for p in problems)
    assert any("no node of the launch files publishes dp/commanded_path" in p for p in problems)
    assert any("reads sensor_msgs/msg/Image" in p for p in problems)
    assert any("dp/control_markers reliability 'Best Effort', publisher RELIABLE" in p for p in problems)


def test_robot_launch_remaps_rviz_like_perception():
    """On the robot the camera topic is an argument: rviz's camera cloud follows it."""
    module = load_launch_file(ROOT / "launch" / "robot.launch.py")
    argv = ["checkpoint:=/tmp/ckpt", "rviz:=true", "camera_topic:=/cam/depth/points"]
    specs = {s.executable: s for s in module.node_specs(parse_launch_args(module.ARGUMENTS, argv))}
    assert (
        specs["rviz2"].remappings
        == specs["perception_node"].remappings
        == [("camera/points", "/cam/depth/points")]
    )
