"""Starts dp nodes as separate processes, as a launch file would, where `ros2 launch` is missing.

The launch files in ``launch/`` describe their nodes once, as a list of :class:`NodeSpec` returned by
``node_specs(args)``. With ``launch_ros`` importable, ``generate_launch_description()`` turns those
specs into ``launch_ros.actions.Node`` actions; without it, this module runs the very same specs:

    python -m dp_common.launcher launch/sim.launch.py rviz:=false checkpoint:=/path

Each node is its own process (the control node never shares a process with torch inference), started
from the executable colcon installed in ``<prefix>/lib/<package>/<executable>``, with the same
``--ros-args`` a launch file passes (node name, namespace, parameter files, parameters, remappings).
"""

from __future__ import annotations

import argparse
import dataclasses
import importlib.util
import os
import pathlib
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence

import yaml


@dataclasses.dataclass
class NodeSpec:
    """One node of a launch description.

    Attributes:
        package: ROS package name.
        executable: executable name (installed in lib/<package>).
        name: node name (default: the executable's).
        namespace: node namespace.
        parameters: parameter YAML file paths and/or dicts of parameter values, applied in order.
        remappings: (from, to) topic remappings.
        env: extra environment variables for this process.
        arguments: command-line arguments before --ros-args (e.g. rviz2's -d FILE).
    """

    package: str
    executable: str
    name: str | None = None
    namespace: str = ""
    parameters: list = dataclasses.field(default_factory=list)
    remappings: list = dataclasses.field(default_factory=list)
    env: dict = dataclasses.field(default_factory=dict)
    arguments: list = dataclasses.field(default_factory=list)

    @property
    def node_name(self) -> str:
        """The node name this spec starts."""
        return self.name or self.executable


@dataclasses.dataclass
class LaunchArgument:
    """A documented launch argument (name, default value as a string, description)."""

    name: str
    default: str
    description: str


def find_executable(package: str, executable: str) -> pathlib.Path:
    """Returns the installed executable <prefix>/lib/<package>/<executable>.

    Raises:
        FileNotFoundError: naming the package, the executable and where it looked.
    """
    prefixes = []
    try:
        from ament_index_python.packages import PackageNotFoundError, get_package_prefix

        try:
            prefixes.append(pathlib.Path(get_package_prefix(package)))
        except PackageNotFoundError:
            pass
    except ImportError:
        pass
    for p in os.environ.get("AMENT_PREFIX_PATH", "").split(os.pathsep):
        if p:
            prefixes.append(pathlib.Path(p))
    for prefix in prefixes:
        candidate = prefix / "lib" / package / executable
        if candidate.is_file() and os.access(candidate, os.X_OK):
            return candidate
    raise FileNotFoundError(
        f"executable '{executable}' of package '{package}' not found in lib/{package}/ of any prefix "
        f"{[str(p) for p in prefixes]}; is the workspace built and sourced (make build; source env.sh)?"
    )


def is_installed(package: str, executable: str) -> bool:
    """True when `find_executable` finds the executable (ament index or AMENT_PREFIX_PATH): how a
    launch file decides whether to start a ROS tool that may be missing (robot_state_publisher, ...)."""
    try:
        find_executable(package, executable)
    except FileNotFoundError:
        return False
    return True


REPO_ROOT = pathlib.Path(__file__).resolve().parents[4]


def package_file(package: str, *parts: str) -> str:
    """Returns the path of an installed data file of `package` (share/<package>/<parts>).

    Falls back to the source tree (ros2_ws/src/<package>/<parts>) when the package is not installed.
    """
    try:
        from ament_index_python.packages import PackageNotFoundError, get_package_share_directory

        try:
            return str(pathlib.Path(get_package_share_directory(package), *parts))
        except PackageNotFoundError:
            pass
    except ImportError:
        pass
    return str(REPO_ROOT / "ros2_ws" / "src" / package / pathlib.Path(*parts))


def fastdds_major_version() -> int | None:
    """Major version of the Fast DDS library on AMENT_PREFIX_PATH: 3 (libfastdds, Kilted and later),
    2 (libfastrtps, Humble / Jazzy), or None when neither is found."""
    for prefix in os.environ.get("AMENT_PREFIX_PATH", "").split(os.pathsep):
        lib = pathlib.Path(prefix) / "lib"
        if not prefix or not lib.is_dir():
            continue
        if any(lib.glob("libfastdds.so*")):
            return 3
        if any(lib.glob("libfastrtps.so*")):
            return 2
    return None


def fastdds_profile_env() -> dict:
    """Environment that puts the Fast DDS large shared-memory profile in effect in a process.

    Fast DDS 3 (Kilted) reads FASTDDS_DEFAULT_PROFILES_FILE and, for compatibility, also
    FASTRTPS_DEFAULT_PROFILES_FILE: given both, it loads the file twice and logs XMLPARSER errors
    for the duplicate transports. Fast DDS 2 (Humble, Jazzy) reads only the FASTRTPS_ name. So the
    one variable the installed version reads is set (both when the version cannot be found). The
    profile must be in effect on the publisher's side too (camera driver or simulator).
    """
    path = package_file("dp_perception", "config", "fastdds_shm_profile.xml")
    names = {3: ["FASTDDS_DEFAULT_PROFILES_FILE"], 2: ["FASTRTPS_DEFAULT_PROFILES_FILE"]}.get(
        fastdds_major_version(), ["FASTDDS_DEFAULT_PROFILES_FILE", "FASTRTPS_DEFAULT_PROFILES_FILE"]
    )
    return {name: path for name in names}


def launch_description(arguments: Sequence[LaunchArgument], node_specs_fn):
    """Builds a launch.LaunchDescription from dp's argument list and node_specs function.

    Used by each launch file's generate_launch_description() where launch_ros is installed.
    """
    from launch import LaunchDescription
    from launch.actions import DeclareLaunchArgument, OpaqueFunction
    from launch.substitutions import LaunchConfiguration
    from launch_ros.actions import Node

    def _setup(context):
        values = {a.name: LaunchConfiguration(a.name).perform(context) for a in arguments}
        return [
            Node(
                package=s.package,
                executable=s.executable,
                name=s.node_name,
                namespace=s.namespace or None,
                parameters=s.parameters,
                remappings=s.remappings,
                arguments=s.arguments,
                additional_env=s.env,
                output="screen",
            )
            for s in node_specs_fn(values)
        ]

    declared = [
        DeclareLaunchArgument(a.name, default_value=a.default, description=a.description) for a in arguments
    ]
    return LaunchDescription([*declared, OpaqueFunction(function=_setup)])


def as_bool(value: str) -> bool:
    """Parses a launch-argument boolean ('true'/'false', '1'/'0')."""
    v = str(value).strip().lower()
    if v in ("true", "1", "yes", "on"):
        return True
    if v in ("false", "0", "no", "off"):
        return False
    raise ValueError(f"expected true or false. Got '{value}'")


def _params_file(values: dict, tmpdir: pathlib.Path, tag: str) -> pathlib.Path:
    # One file per node and position: nodes read their files after start-up, so none may be reused.
    path = tmpdir / f"params_{tag}.yaml"
    path.write_text(yaml.safe_dump({"/**": {"ros__parameters": values}}))
    return path


def ros_args(spec: NodeSpec, tmpdir: pathlib.Path) -> list[str]:
    """Returns the --ros-args part of the command line for `spec`."""
    args = ["--ros-args", "-r", f"__node:={spec.node_name}"]
    if spec.namespace:
        args += ["-r", f"__ns:={spec.namespace}"]
    for i, p in enumerate(spec.parameters):
        if isinstance(p, dict):
            p = _params_file(p, tmpdir, f"{spec.node_name}_{i}")
        path = pathlib.Path(p)
        if not path.is_file():
            raise FileNotFoundError(f"parameter file {path} of node {spec.node_name} does not exist")
        args += ["--params-file", str(path)]
    for src, dst in spec.remappings:
        args += ["-r", f"{src}:={dst}"]
    return args


class ProcessRunner:
    """Runs NodeSpecs as child processes; stops them all (SIGINT, then SIGTERM, SIGKILL) on exit.

    Args:
        specs: the nodes to start, in order.
        log_dir: where each node's stdout/stderr go (<node>.log); None = inherit the terminal.
        env: extra environment for every node.
    """

    def __init__(
        self, specs: Sequence[NodeSpec], log_dir: str | os.PathLike | None = None, env: dict | None = None
    ):
        self.specs = list(specs)
        self.log_dir = pathlib.Path(log_dir) if log_dir else None
        self.env = dict(env or {})
        self.procs: dict[str, subprocess.Popen] = {}
        self._tmp = tempfile.TemporaryDirectory(prefix="dp_launch_")
        self._files = []

    def start(self) -> ProcessRunner:
        """Starts every node; raises (after stopping those started) if one cannot be started."""
        try:
            for spec in self.specs:
                exe = find_executable(spec.package, spec.executable)
                cmd = [str(exe), *spec.arguments, *ros_args(spec, pathlib.Path(self._tmp.name))]
                env = {**os.environ, **self.env, **spec.env}
                out = None
                if self.log_dir:
                    self.log_dir.mkdir(parents=True, exist_ok=True)
                    out = open(self.log_dir / f"{spec.node_name}.log", "w")  # noqa: SIM115
                    self._files.append(out)
                self.procs[spec.node_name] = subprocess.Popen(
                    cmd,
                    env=env,
                    stdout=out,
                    stderr=subprocess.STDOUT if out else None,
                    start_new_session=True,
                )
        except BaseException:
            self.stop()
            raise
        return self

    def dead(self) -> dict[str, int]:
        """Returns {node: exit code} of nodes that have exited."""
        return {n: p.returncode for n, p in self.procs.items() if p.poll() is not None}

    def stop(self, timeout_s: float = 5.0) -> None:
        """Stops all nodes in reverse start order."""
        for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGKILL):
            alive = [p for p in reversed(list(self.procs.values())) if p.poll() is None]
            if not alive:
                break
            for p in alive:
                try:
                    os.killpg(p.pid, sig)
                except ProcessLookupError:
                    pass
            deadline = time.monotonic() + timeout_s
            while time.monotonic() < deadline and any(p.poll() is None for p in alive):
                time.sleep(0.05)
        for f in self._files:
            f.close()
        self._files = []
        self._tmp.cleanup()

    def __enter__(self) -> ProcessRunner:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()


def load_launch_file(path: str | os.PathLike):
    """Imports a dp launch file as a module (it must define ARGUMENTS and node_specs)."""
    path = pathlib.Path(path)
    spec = importlib.util.spec_from_file_location(f"dp_launch_{path.stem.replace('.', '_')}", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    for attr in ("ARGUMENTS", "node_specs"):
        if not hasattr(module, attr):
            raise AttributeError(
                f"{path} defines no {attr}; dp launch files need ARGUMENTS and node_specs(args)"
            )
    return module


def parse_launch_args(arguments: Sequence[LaunchArgument], argv: Sequence[str]) -> dict[str, str]:
    """Parses `name:=value` pairs against the declared arguments (unknown names are an error)."""
    values = {a.name: a.default for a in arguments}
    for item in argv:
        if ":=" not in item:
            raise ValueError(f"launch argument '{item}' must look like name:=value")
        key, value = item.split(":=", 1)
        if key not in values:
            raise ValueError(f"unknown launch argument '{key}'; known: {sorted(values)}")
        values[key] = value
    return values


def main(argv: Sequence[str] | None = None) -> int:
    """CLI: run a dp launch file's nodes as processes until Ctrl-C or until one of them exits."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("launch_file")
    parser.add_argument("args", nargs="*", help="name:=value launch arguments")
    parser.add_argument("--log-dir", default=None, help="write each node's output to <dir>/<node>.log")
    parser.add_argument("--show-args", action="store_true", help="print the launch arguments and exit")
    ns = parser.parse_args(argv)
    module = load_launch_file(ns.launch_file)
    if ns.show_args:
        for a in module.ARGUMENTS:
            print(f"{a.name} (default '{a.default}'): {a.description}")
        return 0
    values = parse_launch_args(module.ARGUMENTS, ns.args)
    runner = ProcessRunner(module.node_specs(values), log_dir=ns.log_dir)
    with runner:
        try:
            while not runner.dead():
                time.sleep(0.2)
            print(f"node(s) exited: {runner.dead()}", file=sys.stderr)
            return 1
        except KeyboardInterrupt:
            return 0


if __name__ == "__main__":
    sys.exit(main())
