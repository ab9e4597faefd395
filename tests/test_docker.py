"""The Docker image, checked without a Docker engine (none here).

Static: every COPY source exists in the build context (the repository) and is not excluded by the
Dockerfile's .dockerignore; the workspace is built by the venv's interpreter and the entry-point check
runs right after the build; compose's default checkpoint is one the image copies (and a complete
checkpoint in the repository); docker/smoke.sh is executable (also in git's index), parses (bash -n),
uses only commands the image has, and its paths exist in the image's layout.
Dynamic, here: docker/check_entry_points.sh (the image's build-time check) run against this
machine's venv and colcon install, and refusing an executable that starts another interpreter.
What only a Docker build and run can show: apt/pip installs, colcon under ROS Jazzy, the smoke episode.
"""

from __future__ import annotations

import fnmatch
import os
import pathlib
import posixpath
import re
import shlex
import subprocess
import sys

import pytest
import yaml

ROOT = pathlib.Path(__file__).resolve().parents[1]
DOCKER = ROOT / "docker"
IMAGE_ROOT = "/opt/dp"
SCRIPTS = ["smoke.sh", "entrypoint.sh", "check_entry_points.sh"]
# Commands docker/smoke.sh may run: bash builtins/keywords, coreutils of the ROS base image, and the
# venv's python (first on the image's PATH).
SMOKE_COMMANDS = {"set", "export", "source", "echo", "if", "then", "fi", "[[", "exit", "mktemp", "python"}


def dockerfile_instructions() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) of docker/Dockerfile, continuation lines joined, comments dropped."""
    lines, current = [], ""
    for raw in (DOCKER / "Dockerfile").read_text().splitlines():
        if raw.lstrip().startswith("#") or not raw.strip():
            continue
        current += raw.rstrip("\\").rstrip() + " "
        if not raw.rstrip().endswith("\\"):
            lines.append(current.strip())
            current = ""
    return [(line.split(None, 1)[0].upper(), line.split(None, 1)[1]) for line in lines]


def copies() -> list[tuple[list[str], str]]:
    """(sources, destination) of every COPY from the build context."""
    out = []
    for instr, args in dockerfile_instructions():
        if instr == "COPY" and "--from" not in args:
            parts = shlex.split(args)
            out.append((parts[:-1], parts[-1]))
    return out


def image_path(repo_rel: str) -> str | None:
    """Where a repository path lands in the image (None when no COPY brings it), by COPY's rules: a
    directory's contents go into the destination; a file goes to destination/<name> when the
    destination ends with '/', else to the destination itself."""
    workdir = "/"
    for instr, args in dockerfile_instructions():
        if instr == "WORKDIR":
            workdir = args.strip()
        if instr != "COPY":
            continue
        *sources, dest = shlex.split(args)
        base = dest if dest.startswith("/") else f"{workdir}/{dest}"
        for src in (s.rstrip("/") for s in sources):
            if repo_rel != src and not repo_rel.startswith(src + "/"):
                continue
            rest = repo_rel[len(src) :].lstrip("/")
            if (ROOT / src).is_dir():
                target = posixpath.normpath(base)
            elif base.endswith("/"):
                target = posixpath.join(posixpath.normpath(base), posixpath.basename(src))
            else:
                target = posixpath.normpath(base)
            return f"{target}/{rest}" if rest else target
    return None


def repo_path(image_abs: str) -> pathlib.Path | None:
    """The repository path an image path under /opt/dp was copied from (None when not copied)."""
    for sources, _ in copies():
        for src in sources:
            landed = image_path(src.rstrip("/"))
            if landed and (image_abs == landed or image_abs.startswith(landed + "/")):
                return ROOT / src.rstrip("/") / image_abs[len(landed) :].lstrip("/")
    return None


def test_copy_sources_exist_and_are_not_ignored():
    ignored = [
        line.strip()
        for line in (DOCKER / "Dockerfile.dockerignore").read_text().splitlines()
        if line.strip() and not line.startswith("#")
    ]
    for sources, _ in copies():
        for src in sources:
            assert (ROOT / src).exists(), f"Dockerfile copies {src}, which is not in the repository"
            assert not any(fnmatch.fnmatch(src.rstrip("/"), pat) for pat in ignored), (
                f"{src} is excluded by docker/Dockerfile.dockerignore"
            )


def test_workspace_is_built_by_the_venv_and_entry_points_are_checked():
    runs = [args for instr, args in dockerfile_instructions() if instr == "RUN"]
    (build,) = [r for r in runs if "colcon build" in r]
    assert "/opt/dp/venv/bin/python -m colcon build" in build, "colcon must run under the venv's python"
    assert "--symlink-install" in build  # closed_loop / launch files resolve the repo layout
    check = "/opt/dp/docker/check_entry_points.sh /opt/dp/venv /opt/dp/ros2_ws/install"
    assert check in build and build.index(check) > build.index("colcon build")
    assert image_path("docker/check_entry_points.sh") == "/opt/dp/docker/check_entry_points.sh"
    env = " ".join(args for instr, args in dockerfile_instructions() if instr == "ENV")
    assert "PATH=/opt/dp/venv/bin:" in env, "python in the image must be the venv's"


def test_compose_default_checkpoint_is_shipped_in_the_image():
    compose = yaml.safe_load((DOCKER / "compose.yaml").read_text())
    service = compose["services"]["dp"]
    assert (DOCKER / service["build"]["context"] / service["build"]["dockerfile"]).resolve() == (
        DOCKER / "Dockerfile"
    )
    (arg,) = [a for a in service["command"] if a.startswith("checkpoint:=")]
    value = arg.split(":=", 1)[1]
    m = re.fullmatch(r"\$\{DP_CHECKPOINT:-([^}]+)\}", value)
    default = m.group(1) if m else value
    src = repo_path(default)
    assert src is not None, f"compose's default checkpoint {default} is not copied into the image"
    for name in ("config.json", "model.safetensors", "normalizer.json"):
        assert (src / name).is_file(), f"{src} (image {default}) has no {name}"
    launch = [a for a in service["command"] if a.endswith(".launch.py")]
    assert launch and all(repo_path(p) and repo_path(p).is_file() for p in launch)


@pytest.mark.parametrize("name", SCRIPTS)
def test_scripts_parse_and_are_executable(name):
    path = DOCKER / name
    assert subprocess.run(["bash", "-n", str(path)], capture_output=True).returncode == 0
    assert os.access(path, os.X_OK), f"docker/{name} is not executable"
    mode = subprocess.run(
        ["git", "ls-files", "-s", f"docker/{name}"], cwd=ROOT, capture_output=True, text=True
    )
    if mode.stdout:  # tracked: the mode in git is what the build context gets from a clone
        assert mode.stdout.split()[0] == "100755", f"docker/{name} is not executable in git"


def _commands(script: str) -> set[str]:
    """First words of the simple commands of a bash script (heredoc bodies and comments skipped)."""
    words, heredoc = set(), None
    for line in script.splitlines():
        if heredoc is not None:
            if line.strip() == heredoc:
                heredoc = None
            continue
        m = re.search(r"<<-?'?(\w+)'?", line)
        if m:
            heredoc = m.group(1)
        code = line.split(" #", 1)[0] if not line.lstrip().startswith("#") else ""
        for part in re.split(r"\|\||&&|;|\||\$\(", code):
            tokens = [t for t in part.strip().split() if not re.match(r"^\w+=", t)]
            if tokens and not tokens[0].startswith(("--", '"$', "$", "}", ")")):
                words.add(tokens[0])
            elif tokens and tokens[0].startswith('"$'):
                words.add(tokens[0].strip('"'))
    return words


def test_smoke_uses_only_what_the_image_has():
    script = (DOCKER / "smoke.sh").read_text()
    assert image_path("docker/smoke.sh") == "/opt/dp/docker/smoke.sh"
    commands = _commands(script)
    paths = {c for c in commands if "/" in c}
    assert commands - paths <= SMOKE_COMMANDS, f"smoke.sh runs {sorted(commands - paths - SMOKE_COMMANDS)}"
    # Its one executable path: dp_sim's closed_loop entry point of the image's colcon install.
    assert paths == {"$dp_root/ros2_ws/install/dp_sim/lib/dp_sim/closed_loop"}, paths
    setup = (ROOT / "ros2_ws" / "src" / "dp_sim" / "setup.py").read_text()
    assert re.search(r"[\"']closed_loop\s*=\s*dp_sim\.closed_loop:main[\"']", setup)
    assert image_path("ros2_ws/src/dp_sim/setup.py") == "/opt/dp/ros2_ws/src/dp_sim/setup.py"
    # Its default checkpoint and the launch file the closed loop starts are in the image.
    m = re.search(r"DP_SMOKE_CHECKPOINT:-\$dp_root/([^}]+)\}", script)
    assert m and (repo_path(f"{IMAGE_ROOT}/{m.group(1)}") / "config.json").is_file()
    assert repo_path(f"{IMAGE_ROOT}/launch/sim.launch.py").is_file()
    assert 'dp_root="${DP_ROOT:-/opt/dp}"' in script


def test_entry_point_check_passes_on_this_install_and_refuses_another_interpreter(tmp_path):
    venv = pathlib.Path(sys.executable).parent.parent
    install = ROOT / "ros2_ws" / "install"
    if not any(install.glob("dp_*/lib/dp_*/*")):
        pytest.skip("workspace not built (make build)")
    out = subprocess.run(
        ["bash", str(DOCKER / "check_entry_points.sh"), str(venv), str(install)],
        capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
    assert "-> dp_control.control_node.main" in out.stdout and "torch" in out.stdout

    fake = tmp_path / "install" / "dp_fake" / "lib" / "dp_fake" / "fake_node"
    fake.parent.mkdir(parents=True)
    fake.write_text("#!/usr/bin/python3\nprint('hi')\n")
    fake.chmod(0o755)
    out = subprocess.run(
        ["bash", str(DOCKER / "check_entry_points.sh"), str(venv), str(tmp_path / "install")],
        capture_output=True, text=True,
    )  # fmt: skip
    assert out.returncode == 1 and "not the venv's interpreter" in out.stderr
