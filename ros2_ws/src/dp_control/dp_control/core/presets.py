"""Controller presets: which topic and message type control_node commands an arm through (ROS-free).

=====================  ===========  ================================================================
``controller_preset``  message      topic (relative: namespaces and remapping apply)
=====================  ===========  ================================================================
``generic_jtc``        trajectory   ``joint_trajectory_controller/joint_trajectory`` (ros2_controllers)
``forward_position``   position     ``forward_position_controller/commands`` (ros2_controllers)
``franka_fr3``         trajectory   ``fr3_arm_controller/joint_trajectory`` (franka_ros2 FR3 bring-up)
``ur``                 trajectory   ``scaled_joint_trajectory_controller/joint_trajectory``
                                    (ur_robot_driver: speed scaling and the teach pendant respected)
=====================  ===========  ================================================================

"trajectory" = trajectory_msgs/JointTrajectory (the limited preview); "position" =
std_msgs/Float64MultiArray in ``joint_names`` order. An empty preset follows ``backend``
(``position`` -> ``forward_position``, ``trajectory`` / ``moveit`` -> ``generic_jtc``: the behaviour
before presets existed). A non-empty ``command_topic`` overrides the preset's topic. Presets set no
joint names: a UR or FR3 needs its own ``joint_names`` (e.g. ``fr3_joint1..7``, ``shoulder_pan_joint``...).
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class ControllerPreset:
    """A controller's message kind ("trajectory" / "position"), command topic and controller name."""

    kind: str
    topic: str
    controller: str


CONTROLLER_PRESETS: dict[str, ControllerPreset] = {
    "generic_jtc": ControllerPreset(
        "trajectory", "joint_trajectory_controller/joint_trajectory", "joint_trajectory_controller"
    ),
    "forward_position": ControllerPreset(
        "position", "forward_position_controller/commands", "forward_position_controller"
    ),
    "franka_fr3": ControllerPreset("trajectory", "fr3_arm_controller/joint_trajectory", "fr3_arm_controller"),
    "ur": ControllerPreset(
        "trajectory",
        "scaled_joint_trajectory_controller/joint_trajectory",
        "scaled_joint_trajectory_controller",
    ),
}
GRIPPER_BACKENDS = ("topic", "action")


def backend_kind(backend: str) -> str:
    """The message kind a control backend sends: "position" for ``position``, else "trajectory"."""
    return "position" if backend == "position" else "trajectory"


def preset_name(backend: str, preset: str) -> str:
    """``preset``, or the preset that matches ``backend`` when ``preset`` is empty."""
    if preset:
        return preset
    return "forward_position" if backend_kind(backend) == "position" else "generic_jtc"


def check_preset(backend: str, preset: str) -> None:
    """Raises ValueError when ``preset`` is unknown or sends another message kind than ``backend``."""
    if preset and preset not in CONTROLLER_PRESETS:
        raise ValueError(
            f"controller_preset must be '' or one of {tuple(CONTROLLER_PRESETS)}. Got {preset!r}"
        )
    kind = CONTROLLER_PRESETS[preset_name(backend, preset)].kind
    if kind != backend_kind(backend):
        expected = [n for n, p in CONTROLLER_PRESETS.items() if p.kind == backend_kind(backend)]
        raise ValueError(
            f"controller_preset {preset!r} takes {kind} commands but backend {backend!r} sends "
            f"{backend_kind(backend)} commands; with backend {backend!r} use one of {expected} (or '')"
        )


def resolve_command_topic(backend: str, preset: str, command_topic: str = "") -> tuple[str, str, str]:
    """(preset name, message kind, topic) for a backend, preset and optional topic override."""
    check_preset(backend, preset)
    name = preset_name(backend, preset)
    spec = CONTROLLER_PRESETS[name]
    return name, spec.kind, command_topic or spec.topic
