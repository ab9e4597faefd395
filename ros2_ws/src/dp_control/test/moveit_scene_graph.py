"""Run by test_moveit_scene.py in a subprocess whose PYTHONPATH starts with ``fakes/moveit_py`` (the moveit_py
fake): control_node's ``moveit`` backend against the CURRENT planning scene.

The fake MoveItPy's scene monitor follows joint_states like MoveIt's current state monitor; its toy
collision model (spheres on the Panda's links, fingertips moving with the finger joints, attached spheres,
world boxes) decides. The scene holds a "cup" attached to the hand and, in part 2, a wall that only the
cup meets on the commanded path.
"""

from __future__ import annotations

import copy
import pathlib
from types import SimpleNamespace as NS

import numpy as np
from rclpy.executors import SingleThreadedExecutor
from rclpy.node import Node
from rclpy.parameter import Parameter

from dp_common.msgs import now_ns, s_to_ns
from dp_common.msgs.chunk import build_chunk
from dp_common.msgs.joint_state import build_joint_state
from dp_common.testing import spin_for, spin_until

HERE = pathlib.Path(__file__).resolve().parent
SRDF = HERE.parent / "config" / "moveit" / "panda.srdf"
JOINTS = [f"panda_joint{i}" for i in range(1, 8)]
FINGERS = ["panda_finger_joint1", "panda_finger_joint2"]
Q0 = np.array([0.0, -np.pi / 4, 0.0, -3 * np.pi / 4, 0.0, np.pi / 2, np.pi / 4])  # SRDF "ready"
GOAL_J1 = 0.7
SPEED = 0.3  # rad/s of the test "policy" on joint 1


def box(object_id, centre, size, operation=0):
    """moveit_msgs/CollisionObject fields the scene reads (BOX primitive, planning frame)."""
    pose = NS(position=NS(x=centre[0], y=centre[1], z=centre[2]), orientation=NS(x=0, y=0, z=0, w=1))
    return NS(id=object_id, operation=operation, primitives=[NS(type=1, dimensions=list(size))],
              primitive_poses=[pose])  # fmt: skip


def attached_sphere(object_id, link, offset, radius):
    """moveit_msgs/AttachedCollisionObject fields the scene reads (SPHERE primitive, link frame)."""
    pose = NS(position=NS(x=offset[0], y=offset[1], z=offset[2]), orientation=NS(x=0, y=0, z=0, w=1))
    obj = NS(id=object_id, operation=0, primitives=[NS(type=2, dimensions=[radius])], primitive_poses=[pose])
    return NS(link_name=link, object=obj)


def setup_fake(context):
    import moveit.planning

    from dp_sim.core.robot import find_panda_urdf

    assert "fakes/moveit_py" in moveit.planning.__file__, moveit.planning.__file__
    moveit.planning.fake_setup(context, find_panda_urdf().read_text(), SRDF.read_text())
    return moveit.planning


class World:
    """Test side: the robot (joint_states: arm = last command, fingers given), the policy, /diagnostics."""

    def __init__(self, context, control, fingers: float):
        from diagnostic_msgs.msg import DiagnosticArray
        from sensor_msgs.msg import JointState
        from trajectory_msgs.msg import JointTrajectory

        from dp_common.qos import chunk_qos, reliable_qos
        from dp_msgs.msg import ActionChunk

        self.node = n = Node("world", context=context)
        self.control, self.fingers = control, fingers
        self.js_pub = n.create_publisher(JointState, "joint_states", reliable_qos(50))
        self.chunk_pub = n.create_publisher(ActionChunk, "dp/action_chunk", chunk_qos())
        self.sent: list[np.ndarray] = []  # commanded positions (first trajectory point) in order
        self.diag_text: list[str] = []
        topic = "joint_trajectory_controller/joint_trajectory"
        n.create_subscription(JointTrajectory, topic, self._on_traj, 50)
        n.create_subscription(DiagnosticArray, "/diagnostics", self._on_diag, 10)
        self.chunk_id = 0
        n.create_timer(0.01, self._state)
        n.create_timer(0.1, self._chunk)

    def q(self) -> np.ndarray:
        q = self.control.command_positions()
        return Q0 if q is None else q

    def _state(self):
        positions = [*self.q(), self.fingers, self.fingers]
        self.js_pub.publish(build_joint_state(now_ns(self.node), JOINTS + FINGERS, positions))

    def _chunk(self):
        # A policy heading for joint 1 = GOAL_J1 from where the arm is, at SPEED.
        q, k = self.q(), np.arange(15)[:, None]
        rows = np.tile(q, (15, 1))
        rows[:, :1] = q[0] + np.clip(GOAL_J1 - q[0], -SPEED * 0.1 * k, SPEED * 0.1 * k)
        self.chunk_id += 1
        stamp = now_ns(self.node) - s_to_ns(0.05)
        self.chunk_pub.publish(build_chunk(stamp, rows, JOINTS, 0.1, chunk_id=self.chunk_id, policy_id="t"))

    def _on_traj(self, msg):
        self.sent.append(np.array(msg.points[0].positions))

    def _on_diag(self, msg):
        for status in msg.status:
            values = " ".join(f"{v.key}={v.value}" for v in status.values)
            self.diag_text.append(f"{status.message} {values}")


def _executor(context, *nodes):
    ex = SingleThreadedExecutor(context=context)
    for node in nodes:
        ex.add_node(node)
    return ex


def test_checker_uses_the_monitored_fingers(rclpy_context):
    """MoveItChecker checks the monitored state: a box next to the open fingers collides only when the
    monitored fingers are open (a state from default values would have them closed)."""
    from sensor_msgs.msg import JointState

    from dp_common.qos import reliable_qos
    from dp_control.backends import MoveItChecker

    planning = setup_fake(rclpy_context)
    checker = MoveItChecker("panda_arm")
    monitor = checker.scene_monitor
    pub_node = Node("joint_states_pub", context=rclpy_context)
    pub = pub_node.create_publisher(JointState, "joint_states", reliable_qos(10))
    ex = _executor(rclpy_context, pub_node)
    try:
        model = checker.robot_model
        from moveit.core.robot_state import RobotState

        probe = RobotState(model)
        probe.joint_positions = dict(zip(JOINTS + FINGERS, [*Q0, 0.04, 0.04], strict=True))
        probe.update()
        tip = probe.get_global_link_transform("panda_leftfinger")
        tip_centre = tip[:3, :3] @ np.array([0.0, 0.0, 0.045]) + tip[:3, 3]
        outward = tip[:3, 1]  # the left finger opens along its +y
        with monitor.read_write() as scene:
            scene.apply_collision_object(box("post", tip_centre + 0.02 * outward, [0.02, 0.02, 0.02]))

        def publish_fingers(value, n0):
            def pred():
                pub.publish(build_joint_state(now_ns(pub_node), JOINTS + FINGERS, [*Q0, value, value]))
                with monitor.read_only() as scene:
                    seen = scene.current_state.joint_positions["panda_finger_joint1"]
                return monitor.fake_joint_states > n0 and abs(seen - value) < 1e-9

            assert spin_until(ex, pred, 10.0)

        publish_fingers(0.04, monitor.fake_joint_states)
        ok, why = checker.is_valid(JOINTS, Q0)
        assert not ok and why == "in collision"
        publish_fingers(0.0, monitor.fake_joint_states)
        assert checker.is_valid(JOINTS, Q0) == (True, "")
        # What was checked: the monitored fingers, the commanded arm, under the read-only lock.
        with monitor.read_only() as scene:
            calls = [c for c in scene.fake_calls if c["method"] == "is_state_valid"]
        assert [c["joint_positions"]["panda_finger_joint1"] for c in calls[-2:]] == [0.04, 0.0]
        assert all(c["group"] == "panda_arm" for c in calls)
        np.testing.assert_allclose([calls[-1]["joint_positions"][j] for j in JOINTS], Q0)
        # The monitored state itself is untouched by a check (the checker copies it).
        q_other = Q0 + 0.1
        checker.is_valid(JOINTS, q_other)
        with monitor.read_only() as scene:
            np.testing.assert_allclose([scene.current_state.joint_positions[j] for j in JOINTS], Q0)
        assert planning.fake_instances[-1] is checker.moveit
    finally:
        ex.shutdown()
        pub_node.destroy_node()
        checker.close()


def test_moveit_backend_holds_on_collision_and_resumes(rclpy_context):
    """A command stream that would carry the attached cup into a wall is replaced by a hold and reported;
    the checks saw the monitored fingers and the cup; commands resume once the wall is removed."""
    from dp_control.control_node import ControlNode

    planning = setup_fake(rclpy_context)
    control = ControlNode(
        context=rclpy_context,
        parameter_overrides=[Parameter("backend", value="moveit"), Parameter("autostart", value=True),
                             Parameter("gripper_joint", value="")],
    )  # fmt: skip
    world = World(rclpy_context, control, fingers=0.031)
    ex = _executor(rclpy_context, control, world.node)
    monitor = planning.fake_instances[-1].get_planning_scene_monitor()
    try:
        with monitor.read_write() as scene:
            scene.process_attached_collision_object(attached_sphere("cup", "panda_hand", [0, 0, 0.2], 0.04))
            # Where the cup is at joint 1 = 0.5 (fingers as monitored, 0.031).
            state = copy.copy(scene.current_state)
        state.joint_positions = dict(zip(JOINTS + FINGERS, [0.5, *Q0[1:], 0.031, 0.031], strict=True))
        state.update()
        hand = state.get_global_link_transform("panda_hand")
        cup = hand[:3, :3] @ np.array([0, 0, 0.2]) + hand[:3, 3]
        wall = box("wall", cup, [0.08, 0.08, 0.08])
        # Along the commanded path (joint 1 from 0 to GOAL_J1), only the cup meets the wall.
        with monitor.read_write() as scene:
            scene.apply_collision_object(wall)
            path = []
            for j1 in np.linspace(0.0, GOAL_J1, 121):
                s = copy.copy(scene.current_state)
                s.joint_positions = {"panda_joint1": float(j1), **dict(zip(JOINTS[1:], Q0[1:], strict=True))}
                s.update()
                path.append((j1, {part for part, _ in scene.fake_contacts(s)}))
        hits = [j1 for j1, parts in path if parts]
        assert hits and all(parts <= {"cup"} for _, parts in path), path
        first_hit = min(hits)

        # 1. The stream towards GOAL_J1 is held before the cup reaches the wall, and it is reported.
        assert spin_until(ex, lambda: control.diag.counter("commands refused by MoveIt") > 0, 20.0)
        spin_for(ex, 1.5)
        assert world.sent, "no command was sent before the hold"
        reached = max(q[0] for q in world.sent)
        assert 0.05 < reached < first_hit, (reached, first_hit)  # moved, then held short of the wall
        assert control.core.stats.holds["moveit_invalid"] >= 1
        assert any("MoveIt" in t and "in collision" in t for t in world.diag_text), world.diag_text[-5:]
        # Every check saw the monitored fingers and the attached cup (not default values).
        with monitor.read_only() as scene:
            calls = list(scene.fake_calls)
        checks = [c for c in calls if c["method"] == "is_state_valid"]
        assert len(checks) > 20 and monitor.fake_read_only_entries >= len(checks)
        assert all(c["attached"] == ["cup"] for c in checks)
        assert all(c["joint_positions"]["panda_finger_joint1"] == 0.031 for c in checks[-20:])
        assert all(c["joint_positions"]["panda_finger_joint2"] == 0.031 for c in checks[-20:])
        assert any(c["method"] == "is_state_colliding" for c in calls)  # the reason was asked
        # Nothing that was sent is in collision.
        with monitor.read_only() as scene:
            for q in world.sent:
                s = copy.copy(scene.current_state)
                s.joint_positions = dict(zip(JOINTS, q, strict=True))
                s.update()
                assert not scene.fake_contacts(s), q

        # 2. The wall is removed from the monitored scene: commands resume and pass where it was.
        wall.operation = 1
        monitor.process_collision_object(wall)
        assert spin_until(ex, lambda: world.sent and world.sent[-1][0] > first_hit + 0.1, 20.0), (
            world.sent[-1][0],
            control.core.state,
            control.core.reason,
        )
    finally:
        ex.shutdown()
        world.node.destroy_node()
        control.destroy_node()
