#!/usr/bin/env bash
# Build-time check of the image (a Dockerfile RUN step; also run by tests/test_docker.py against the
# development venv): every executable of dp's colcon install starts the venv's interpreter (the one
# that has torch), and that interpreter imports torch, rclpy and every executable's entry point (its
# node module and everything it imports: messages, numpy, mujoco, ...) without running it.
#
#   check_entry_points.sh [VENV_DIR] [INSTALL_DIR]    # defaults: /opt/dp/venv /opt/dp/ros2_ws/install
set -euo pipefail
venv="${1:-/opt/dp/venv}"
install="${2:-/opt/dp/ros2_ws/install}"
scripts=()
for exe in "$install"/dp_*/lib/dp_*/*; do
  [[ -f "$exe" && -x "$exe" ]] || continue
  read -r shebang <"$exe" || true
  interp="${shebang#\#!}"
  interp="${interp%% *}"
  case "$interp" in
    "$venv"/bin/python*) scripts+=("$exe") ;;
    *)
      echo "check_entry_points: $exe starts '$interp', not the venv's interpreter ($venv/bin/python):" \
        "build the workspace with $venv/bin/python -m colcon build" >&2
      exit 1
      ;;
  esac
done
if ((${#scripts[@]} == 0)); then
  echo "check_entry_points: no executables under $install/dp_*/lib/dp_*/" >&2
  exit 1
fi
"$venv/bin/python" - "${scripts[@]}" <<'PY'
import re
import runpy
import sys

import rclpy  # noqa: F401
import torch

for exe in sys.argv[1:]:
    text = open(exe, encoding="utf-8").read()
    # Runs the script's top level only (not its __main__ block): it defines load_entry_point.
    namespace = runpy.run_path(exe, run_name="dp_entry_point_check")
    spec = re.search(r"EASY-INSTALL-ENTRY-SCRIPT: '([^']+)','([^']+)','([^']+)'", text)
    if spec is not None:
        main = namespace["load_entry_point"](*spec.groups())
        if not callable(main):
            sys.exit(f"check_entry_points: {exe}: entry point {spec.groups()} is not callable")
        print(f"ok {exe} -> {main.__module__}.{main.__qualname__}")
    else:
        print(f"ok {exe} (top level ran)")
print(f"check_entry_points: {len(sys.argv) - 1} executables, {sys.executable}, torch {torch.__version__}")
PY
