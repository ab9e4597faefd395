"""Rewrites build-machine include paths in the ROS wheels' CMake files to this machine's paths.

Usage: python scripts/fix_cmake_paths.py VENV
"""

from __future__ import annotations

import pathlib
import re
import sys
import sysconfig

import numpy


def local_equivalent(path: str) -> str | None:
    """Returns this interpreter's directory for a recorded include path, or None if unknown."""
    if re.search(r"/include/python3\.\d+$", path):
        return sysconfig.get_paths()["include"]
    if re.search(r"/numpy/(_core|core)/include$", path):
        return numpy.get_include()
    return None


def main() -> int:
    """Scans VENV/share/**/*.cmake and rewrites paths that do not exist here."""
    venv = pathlib.Path(sys.argv[1])
    pattern = re.compile(r"(/[^;\"\s)]*?(?:/include/python3\.\d+|/numpy/(?:_core|core)/include))(?=[;\"\s)])")
    changed = 0
    unresolved: set[str] = set()
    for cmake_file in (venv / "share").rglob("*.cmake"):
        text = cmake_file.read_text(errors="replace")
        if "/include" not in text:
            continue
        new_text = text
        for path in set(pattern.findall(text)):
            if pathlib.Path(path).exists():
                continue
            local = local_equivalent(path)
            if local is None or not pathlib.Path(local).exists():
                unresolved.add(path)
                continue
            new_text = new_text.replace(path, local)
        if new_text != text:
            cmake_file.write_text(new_text)
            changed += 1
    print(f"[setup] rewrote build-machine include paths in {changed} CMake files", file=sys.stderr)
    if unresolved:
        print(f"[setup] could not resolve: {sorted(unresolved)}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
