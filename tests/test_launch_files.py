"""Every launch file resolves: packages and executables against the install, parameter files on disk.

Where launch_ros is importable the launch description itself is built too; where it is not (here),
the same node list the launch description is built from is checked statically, without starting
anything. A misspelled executable must be caught.
"""

from __future__ import annotations

import importlib.util
import pathlib

import pytest

from dp_common.launcher import NodeSpec, find_executable, load_launch_file, parse_launch_args

ROOT = pathlib.Path(__file__).resolve().parents[1]
LAUNCH_FILES = sorted((ROOT / "launch").glob("*.launch.py"))
REQUIRED = {"robot.launch.py": {"checkpoint": "/tmp/ckpt"}, "replay.launch.py": {"bag": "/tmp/demo.mcap"}}
HAVE_LAUNCH_ROS = importlib.util.find_spec("launch_ros") is not None


def _specs(path: pathlib.Path, extra: dict | None = None) -> list[NodeSpec]:
    module = load_launch_file(path)
    argv = [f"{k}:={v}" for k, v in {**REQUIRED.get(path.name, {}), **(extra or {})}.items()]
    return module.node_specs(parse_launch_args(module.ARGUMENTS, argv))


def test_launch_files_exist():
    names = {p.name for p in LAUNCH_FILES}
    assert {"robot.launch.py", "sim.launch.py", "replay.launch.py"} <= names


@pytest.mark.parametrize("path", LAUNCH_FILES, ids=lambda p: p.name)
def test_launch_file_resolves(path):
    module = load_launch_file(path)
    assert callable(getattr(module, "generate_launch_description", None))
    for arg in module.ARGUMENTS:
        assert arg.description.strip(), f"{path.name}: argument {arg.name} has no description"
    specs = _specs(path)
    assert specs, f"{path.name} starts no node"
    for spec in specs:
        if spec.package == "rviz2":
            continue  # rviz is off by default; its config file is checked below
        exe = find_executable(spec.package, spec.executable)
        assert exe.name == spec.executable
        for p in spec.parameters:
            if not isinstance(p, dict):
                assert pathlib.Path(p).is_file(), f"{path.name}: {spec.node_name}: missing parameter file {p}"
    names = [s.node_name for s in specs]
    assert len(names) == len(set(names)), f"{path.name}: duplicate node names {names}"
    if HAVE_LAUNCH_ROS:
        description = module.generate_launch_description()
        assert description.entities


@pytest.mark.parametrize("path", LAUNCH_FILES, ids=lambda p: p.name)
def test_rviz_option_points_at_config(path):
    module = load_launch_file(path)
    if "rviz" not in {a.name for a in module.ARGUMENTS}:
        pytest.fail(f"{path.name} has no rviz argument")
    rviz = [s for s in _specs(path, {"rviz": "true"}) if s.package == "rviz2"]
    assert len(rviz) == 1
    config = pathlib.Path(rviz[0].arguments[rviz[0].arguments.index("-d") + 1])
    assert config.is_file()


def test_misspelled_executable_is_caught():
    with pytest.raises(FileNotFoundError, match="perception_nod"):
        find_executable("dp_perception", "perception_nod")
    with pytest.raises(FileNotFoundError, match="no_such_pkg"):
        find_executable("no_such_pkg", "perception_node")


def test_unknown_launch_argument_is_caught():
    module = load_launch_file(ROOT / "launch" / "sim.launch.py")
    with pytest.raises(ValueError, match="unknown launch argument 'chekpoint'"):
        parse_launch_args(module.ARGUMENTS, ["chekpoint:=/x"])


def test_robot_launch_requires_checkpoint():
    module = load_launch_file(ROOT / "launch" / "robot.launch.py")
    with pytest.raises(ValueError, match="checkpoint"):
        module.node_specs(parse_launch_args(module.ARGUMENTS, []))


def test_robot_launch_servo_backend_reaches_control_node():
    from dp_control.core import ControlConfig

    specs = _specs(ROOT / "launch" / "robot.launch.py", {"backend": "servo", "servo_interface": "humble"})
    control = next(s for s in specs if s.executable == "control_node")
    overrides = {k: v for p in control.parameters if isinstance(p, dict) for k, v in p.items()}
    assert overrides["backend"] == "servo" and overrides["servo_interface"] == "humble"
    assert "servo_node" not in overrides  # not given: control.yaml's value stays
    ControlConfig(backend="servo", servo_interface=overrides["servo_interface"])


def test_make_demo_runs_place_with_the_shipped_checkpoint_unless_told_otherwise():
    spec = importlib.util.spec_from_file_location("dp_demo_script", ROOT / "scripts" / "demo.py")
    demo = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(demo)
    argv = demo.demo_argv([])
    assert argv[argv.index("--task") + 1] == "place"
    ckpt = pathlib.Path(argv[argv.index("--checkpoint") + 1])
    assert ckpt.name == "sim_place_dp3" and (ckpt / "config.json").is_file()
    # options given on the command line win; --oracle replaces the checkpoint
    argv = demo.demo_argv(["--task=reach", "--checkpoint", "x", "--episodes", "2"])
    assert argv == ["--task=reach", "--checkpoint", "x", "--episodes", "2"]
    assert "--checkpoint" not in demo.demo_argv(["--oracle"])


def _participant_stderr(extra_env: dict) -> str:
    import os
    import subprocess
    import sys

    env = {k: v for k, v in os.environ.items() if not k.endswith("_DEFAULT_PROFILES_FILE")}
    env.update(extra_env)
    code = (
        "import rclpy; rclpy.init(); n = rclpy.create_node('dp_profile_probe'); n.destroy_node(); "
        "rclpy.shutdown()"
    )
    proc = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    return proc.stderr


def test_fastdds_profile_is_loaded_once_without_xml_errors(tmp_path, monkeypatch):
    from dp_common import launcher

    env = launcher.fastdds_profile_env()
    assert len(env) == 1 and pathlib.Path(next(iter(env.values()))).is_file()
    if launcher.fastdds_major_version() == 3:  # this machine's Kilted wheels
        assert list(env) == ["FASTDDS_DEFAULT_PROFILES_FILE"]
        # both names make Fast DDS 3 load the file twice: the duplicate-transport errors this avoids
        names = ("FASTDDS_DEFAULT_PROFILES_FILE", "FASTRTPS_DEFAULT_PROFILES_FILE")
        both = dict.fromkeys(names, env["FASTDDS_DEFAULT_PROFILES_FILE"])
        assert "XMLPARSER" in _participant_stderr(both)
    assert "XMLPARSER" not in _participant_stderr(env)
    # a Humble / Jazzy install (Fast DDS 2: libfastrtps) gets the name it reads
    (tmp_path / "lib").mkdir()
    (tmp_path / "lib" / "libfastrtps.so.2.14").touch()
    monkeypatch.setenv("AMENT_PREFIX_PATH", str(tmp_path))
    assert launcher.fastdds_major_version() == 2
    assert list(launcher.fastdds_profile_env()) == ["FASTRTPS_DEFAULT_PROFILES_FILE"]


def _fake_install(prefix: pathlib.Path, monkeypatch, *executables: tuple[str, str]) -> None:
    """Executables in <prefix>/lib/<package>/ on AMENT_PREFIX_PATH, as a ROS install lays them out."""
    import os

    for package, executable in executables:
        exe = prefix / "lib" / package / executable
        exe.parent.mkdir(parents=True, exist_ok=True)
        exe.write_text("#!/bin/sh\n")
        exe.chmod(0o755)
    monkeypatch.setenv(
        "AMENT_PREFIX_PATH", os.pathsep.join([str(prefix), os.environ.get("AMENT_PREFIX_PATH", "")])
    )


TF_TOOLS = [("robot_state_publisher", "robot_state_publisher"), ("tf2_ros", "static_transform_publisher")]


def test_sim_launch_starts_robot_state_publisher_and_static_tf_where_installed(tmp_path, monkeypatch):
    import yaml

    from dp_common.launcher import is_installed
    from dp_sim.core.robot import find_panda_urdf
    from dp_sim.sim_node import urdf_with_file_uris

    path = ROOT / "launch" / "sim.launch.py"
    assert not any(
        s.package in ("robot_state_publisher", "tf2_ros")
        for s in _specs(path, {"robot_state_publisher": "false"})
    )
    _fake_install(tmp_path, monkeypatch, *TF_TOOLS)
    assert all(is_installed(*tool) for tool in TF_TOOLS)
    specs = {s.node_name: s for s in _specs(path)}
    rsp = specs["robot_state_publisher"]
    assert find_executable(rsp.package, rsp.executable).is_relative_to(tmp_path)
    params = {k: v for p in rsp.parameters for k, v in p.items()}
    # the URDF sim_node publishes, on sim time; robot_description stays sim_node's alone
    assert params == {"robot_description": urdf_with_file_uris(find_panda_urdf()), "use_sim_time": True}
    assert rsp.remappings == [("robot_description", "robot_state_publisher/robot_description")]

    def static_tf(spec):
        a = spec.arguments
        pose = [float(a[a.index(k) + 1]) for k in ("--x", "--y", "--z", "--qx", "--qy", "--qz", "--qw")]
        return a[a.index("--frame-id") + 1], a[a.index("--child-frame-id") + 1], pose

    assert static_tf(specs["world_to_base_tf"]) == ("world", "panda_link0", [0, 0, 0, 0, 0, 0, 1])
    perception = yaml.safe_load(pathlib.Path(specs["perception_node"].parameters[1]).read_text())
    camera = perception["/**"]["ros__parameters"]
    assert static_tf(specs["world_to_camera_tf"]) == (
        "world",
        "camera_optical_frame",
        camera["camera_to_target"],
    )
    # markers in world (= the robot base in the sim): drawn with or without TF
    for node in ("policy_node", "control_node"):
        assert specs[node].parameters[-1]["marker_frame"] == "world"
    assert not any(
        s.package in ("robot_state_publisher", "tf2_ros")
        for s in _specs(path, {"robot_state_publisher": "false"})
    )


def test_sim_launch_without_robot_state_publisher_says_so(monkeypatch, caplog):
    import logging

    path = ROOT / "launch" / "sim.launch.py"
    module = load_launch_file(path)
    monkeypatch.setattr(module, "is_installed", lambda package, executable: False)
    with caplog.at_level(logging.WARNING, logger="dp.sim.launch"):
        specs = module.node_specs(parse_launch_args(module.ARGUMENTS, []))
    assert {s.executable for s in specs} == {"sim_node", "perception_node", "policy_node", "control_node"}
    assert "robot_state_publisher and tf2_ros not installed: no TF" in caplog.text
    with pytest.raises(
        ValueError, match=r"robot_state_publisher:=true but \['robot_state_publisher', 'tf2_ros'\]"
    ):
        module.node_specs(parse_launch_args(module.ARGUMENTS, ["robot_state_publisher:=true"]))
    with pytest.raises(ValueError, match="must be auto, true or false"):
        module.node_specs(parse_launch_args(module.ARGUMENTS, ["robot_state_publisher:=yes please"]))


def test_robot_launch_uses_the_robots_tf_unless_asked(tmp_path, monkeypatch):
    path = ROOT / "launch" / "robot.launch.py"
    assert "robot_state_publisher" not in {s.executable for s in _specs(path)}
    with pytest.raises(ValueError, match="needs robot_description_file"):
        _specs(path, {"robot_state_publisher": "true"})
    urdf = tmp_path / "arm.urdf"
    urdf.write_text('<robot name="arm"><link name="base"/></robot>')
    module = load_launch_file(path)
    monkeypatch.setattr(module, "is_installed", lambda package, executable: False)
    argv = ["checkpoint:=/tmp/ckpt", "robot_state_publisher:=true", f"robot_description_file:={urdf}"]
    with pytest.raises(ValueError, match="robot_state_publisher is not installed"):
        module.node_specs(parse_launch_args(module.ARGUMENTS, argv))
    _fake_install(tmp_path / "ros", monkeypatch, TF_TOOLS[0])
    specs = {
        s.executable: s
        for s in _specs(path, {"robot_state_publisher": "true", "robot_description_file": urdf})
    }
    rsp = specs["robot_state_publisher"]
    assert rsp.parameters == [{"robot_description": urdf.read_text()}]
    assert rsp.remappings == specs["control_node"].remappings  # the robot's joint_states topic
