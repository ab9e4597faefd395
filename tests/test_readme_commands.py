"""Every command module the README tells people to run exists and answers --help."""

from __future__ import annotations

import pathlib
import re
import subprocess
import sys

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text()
MODULES = sorted(set(re.findall(r"python -m ([a-z_][a-z0-9_.]*)", README)))


def test_readme_names_the_commands():
    assert {"dp_sim.closed_loop", "dp_policy.train", "dp_eval.evaluate", "dp_common.launcher"} <= set(MODULES)


@pytest.mark.parametrize("module", MODULES)
def test_module_help(module):
    args = [sys.executable, "-m", module, "--help"]
    if module == "dp_common.launcher":
        args = [sys.executable, "-m", module, str(ROOT / "launch" / "sim.launch.py"), "--show-args"]
    out = subprocess.run(args, capture_output=True, text=True, timeout=180, cwd=ROOT)
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.strip(), f"{module} printed no help"


def test_make_targets_in_readme_exist():
    makefile = (ROOT / "Makefile").read_text()
    targets = set(re.findall(r"^([a-z][a-z-]*):", makefile, flags=re.M))
    for target in set(re.findall(r"`make ([a-z][a-z-]*)", README)):
        assert target in targets, f"README mentions `make {target}` but the Makefile has no such target"
