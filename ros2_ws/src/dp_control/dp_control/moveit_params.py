"""The parameter set MoveItPy needs, built from a MoveIt configuration directory (ROS-free).

``backend: moveit`` runs moveit_py's ``MoveItPy`` inside control_node. MoveItPy builds its own rclcpp
node from the ``--params-file`` arguments of the process (moveit_py ``moveit/utils.py``:
``get_launch_params_filepaths``), so the launch file hands control_node every MoveIt parameter,
flattened as ``moveit_configs_utils.MoveItConfigs.to_dict()`` would:

    robot_description, robot_description_semantic        URDF and SRDF text
    robot_description_kinematics.<group>.*                kinematics.yaml
    robot_description_planning.*                          joint_limits.yaml
    planning_pipelines.pipeline_names, <pipeline>.*       <pipeline>_planning.yaml (ompl_planning.yaml)
    moveit_controller_manager, moveit_simple_controller_manager.*, trajectory_execution.*
                                                          moveit_controllers.yaml
    planning_scene_monitor_options.*, plan_request_params.*   moveit_py.yaml

A configuration directory holds exactly one ``*.srdf`` (or ``*.srdf.xacro``, processed with xacro) and
those YAML files; dp_control ships one for example-robot-data's Panda (``config/moveit/``). The config/
directory of a MoveIt Setup Assistant package has the same files. Other arms' packages differ a little
(ur_moveit_config keeps its SRDF in srdf/, franka_fr3_moveit_config names its controllers
fr3_controllers.yaml): copy or link the files into one directory. The controllers file may be any
``*controllers.yaml`` except ros2_control's; where ``moveit_py.yaml`` is missing, dp_control's is used.
"""

from __future__ import annotations

import os
from pathlib import Path

import yaml

# Required parameters, as read by MoveIt 2 (moveit/moveit2, main branch, read 2026-08):
#   robot_description: rdf_loader/src/rdf_loader.cpp (the name given by
#     planning_scene_monitor_options.robot_description, moveit_cpp/include/.../moveit_cpp.hpp)
#   robot_description_semantic: rdf_loader.cpp (`ros_name + "_semantic"`)
#   robot_description_kinematics.<group>.kinematics_solver:
#     kinematics_plugin_loader/src/kinematics_plugin_loader.cpp
#   robot_description_planning.joint_limits.<joint>.*: robot_model_loader/src/robot_model_loader.cpp
#   planning_pipelines.pipeline_names: moveit_cpp.hpp (PlanningPipelineOptions::load)
#   <pipeline>.planning_plugins: planning_pipeline/res/planning_pipeline_parameters.yaml
#     (Humble: <pipeline>.planning_plugin, a string)
#   plan_request_params.*: moveit_cpp/include/.../planning_component.hpp (PlanRequestParameters::load)
#   planning_scene_monitor_options.*: moveit_cpp.hpp (PlanningSceneMonitorOptions::load)
#   moveit_controller_manager: trajectory_execution_manager/src/trajectory_execution_manager.cpp
#   moveit_simple_controller_manager.controller_names and <controller>.{type,action_ns,joints}:
#     moveit_plugins/moveit_simple_controller_manager/src/moveit_simple_controller_manager.cpp
REQUIRED_PARAMETERS: tuple[str, ...] = (
    "robot_description",
    "robot_description_semantic",
    "planning_pipelines.pipeline_names",
    "plan_request_params.planning_pipeline",
    "plan_request_params.planner_id",
    "plan_request_params.planning_attempts",
    "plan_request_params.planning_time",
    "plan_request_params.max_velocity_scaling_factor",
    "plan_request_params.max_acceleration_scaling_factor",
    "planning_scene_monitor_options.name",
    "planning_scene_monitor_options.robot_description",
    "planning_scene_monitor_options.wait_for_initial_state_timeout",
    "moveit_controller_manager",
    "moveit_simple_controller_manager.controller_names",
)
# Required for every planning group / pipeline / controller named in the parameters.
REQUIRED_PER_GROUP = ("robot_description_kinematics.{group}.kinematics_solver",)
REQUIRED_PER_PIPELINE = ("{pipeline}.planning_plugins", "{pipeline}.request_adapters")
REQUIRED_PER_PIPELINE_HUMBLE = ("{pipeline}.planning_plugin", "{pipeline}.request_adapters")
REQUIRED_PER_CONTROLLER = tuple(
    f"moveit_simple_controller_manager.{{controller}}.{k}" for k in ("type", "action_ns", "joints")
)
REQUIRED_PER_JOINT = (
    "robot_description_planning.joint_limits.{joint}.has_velocity_limits",
    "robot_description_planning.joint_limits.{joint}.max_velocity",
    "robot_description_planning.joint_limits.{joint}.has_acceleration_limits",
    "robot_description_planning.joint_limits.{joint}.max_acceleration",
)
CONFIG_FILES = ("kinematics.yaml", "joint_limits.yaml")


def default_config_dir() -> Path:
    """dp_control's MoveIt configuration for example-robot-data's Panda (installed or source tree)."""
    from dp_common.launcher import package_file

    return Path(package_file("dp_control", "config", "moveit"))


def _load(path: Path) -> dict:
    with open(path) as f:
        data = yaml.safe_load(f)
    if not isinstance(data, dict):
        raise ValueError(f"{path} must hold a YAML mapping, got {type(data).__name__}")
    return data


def find_srdf(config_dir: Path) -> Path:
    """The one ``*.srdf`` (or ``*.srdf.xacro``) of a MoveIt configuration directory."""
    found = sorted([*Path(config_dir).glob("*.srdf"), *Path(config_dir).glob("*.srdf.xacro")])
    if len(found) != 1:
        raise ValueError(
            f"MoveIt config directory {config_dir} must contain exactly one .srdf or .srdf.xacro file, "
            f"found {[p.name for p in found]}"
        )
    return found[0]


def find_controllers_file(config_dir: Path) -> Path:
    """moveit_controllers.yaml, else the one other ``*controllers.yaml`` that is not ros2_control's."""
    preferred = Path(config_dir) / "moveit_controllers.yaml"
    if preferred.is_file():
        return preferred
    found = [
        p
        for p in sorted(Path(config_dir).glob("*controllers.yaml"))
        if p.name not in ("ros2_controllers.yaml", "ros_controllers.yaml") and "fake" not in p.name
    ]
    if len(found) != 1:
        raise ValueError(
            f"MoveIt config directory {config_dir} needs moveit_controllers.yaml (MoveIt's controller "
            f"manager parameters); candidates found: {[p.name for p in found]}"
        )
    return found[0]


def humble_pipeline(cfg: dict) -> dict:
    """Converts a Jazzy-format planning pipeline config to MoveIt Humble's format.

    Humble reads ``planning_plugin`` (one string) and ``request_adapters`` (one space-separated string,
    response steps included as request adapters); Jazzy and later read string lists.
    """
    renames = {
        "default_planning_request_adapters/ResolveConstraintFrames": (
            "default_planner_request_adapters/ResolveConstraintFrames"
        ),
        "default_planning_request_adapters/ValidateWorkspaceBounds": (
            "default_planner_request_adapters/FixWorkspaceBounds"
        ),
        "default_planning_request_adapters/CheckStartStateBounds": (
            "default_planner_request_adapters/FixStartStateBounds"
        ),
        "default_planning_request_adapters/CheckStartStateCollision": (
            "default_planner_request_adapters/FixStartStateCollision"
        ),
        "default_planning_response_adapters/AddTimeOptimalParameterization": (
            "default_planner_request_adapters/AddTimeOptimalParameterization"
        ),
    }
    out = {
        k: v for k, v in cfg.items() if k not in ("planning_plugins", "request_adapters", "response_adapters")
    }
    plugins = cfg.get("planning_plugins") or []
    if plugins:
        out["planning_plugin"] = plugins[0]
    adapters = [
        renames[a]
        for a in [*cfg.get("request_adapters", []), *cfg.get("response_adapters", [])]
        if a in renames
    ]
    out["request_adapters"] = " ".join(adapters)
    return out


def read_robot_description(path: str | os.PathLike) -> str:
    """Text of a .urdf / .srdf file, or of a .xacro file processed with xacro (where importable)."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"robot description file {path} does not exist")
    if path.suffix == ".xacro":
        try:
            import xacro
        except ImportError as exc:
            raise ValueError(
                f"{path} is a xacro file and the xacro module is not importable; "
                f"run `xacro {path} > robot.urdf` and pass the .urdf"
            ) from exc
        return xacro.process_file(str(path)).toxml()
    return path.read_text()


def moveit_parameters(
    robot_description: str, config_dir: str | os.PathLike | None = None, distro: str | None = None
) -> dict:
    """The MoveItPy parameter dict (nested; launch files and dp_common.launcher flatten it with dots).

    Args:
        robot_description: URDF text (the robot's, with mesh URIs MoveIt can resolve).
        config_dir: MoveIt configuration directory (default: dp_control's, for the Panda).
        distro: ROS distribution (default: $ROS_DISTRO); ``humble`` gets Humble's pipeline format.

    Raises:
        FileNotFoundError / ValueError: naming the missing or malformed file.
    """
    config_dir = Path(config_dir) if config_dir else default_config_dir()
    if not config_dir.is_dir():
        raise FileNotFoundError(f"MoveIt config directory {config_dir} does not exist")
    if "<robot" not in robot_description:
        raise ValueError("robot_description must be URDF text (a <robot> element)")
    missing = [f for f in CONFIG_FILES if not (config_dir / f).is_file()]
    if missing:
        raise FileNotFoundError(f"MoveIt config directory {config_dir} lacks {missing}")
    distro = (distro if distro is not None else os.environ.get("ROS_DISTRO", "")).lower()
    params: dict = {
        "robot_description": robot_description,
        "robot_description_semantic": read_robot_description(find_srdf(config_dir)),
        "robot_description_kinematics": _load(config_dir / "kinematics.yaml"),
        "robot_description_planning": _load(config_dir / "joint_limits.yaml"),
    }
    params.update(_load(find_controllers_file(config_dir)))
    py_yaml = config_dir / "moveit_py.yaml"
    params.update(_load(py_yaml if py_yaml.is_file() else default_config_dir() / "moveit_py.yaml"))
    for pipeline in params.get("planning_pipelines", {}).get("pipeline_names", []):
        path = config_dir / f"{pipeline}_planning.yaml"
        if not path.is_file():
            raise FileNotFoundError(
                f"planning pipeline {pipeline!r} is listed in moveit_py.yaml but {path} is missing"
            )
        cfg = _load(path)
        params[pipeline] = humble_pipeline(cfg) if distro == "humble" else cfg
    return params


def flatten(params: dict, prefix: str = "") -> dict:
    """Nested parameter dict -> {"a.b.c": value} (how ROS names nested YAML parameters)."""
    flat = {}
    for key, value in params.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict):
            flat.update(flatten(value, f"{name}."))
        else:
            flat[name] = value
    return flat


def missing_parameters(params: dict, groups: list[str], joints: list[str], distro: str = "") -> list[str]:
    """Required MoveItPy parameters absent from ``params`` (nested or flat), given the planning groups
    with kinematics and the joints with limits. Empty when MoveItPy has all it reads at start-up."""
    flat = flatten(params)
    names = list(REQUIRED_PARAMETERS)
    names += [n.format(group=g) for g in groups for n in REQUIRED_PER_GROUP]
    names += [n.format(joint=j) for j in joints for n in REQUIRED_PER_JOINT]
    per_pipeline = REQUIRED_PER_PIPELINE_HUMBLE if distro.lower() == "humble" else REQUIRED_PER_PIPELINE
    for pipeline in flat.get("planning_pipelines.pipeline_names", []):
        names += [n.format(pipeline=pipeline) for n in per_pipeline]
    for controller in flat.get("moveit_simple_controller_manager.controller_names", []):
        names += [n.format(controller=controller) for n in REQUIRED_PER_CONTROLLER]
    return [n for n in names if n not in flat]
