#!/usr/bin/env bash
# Builds ros2_ws with colcon against the venv's ROS 2 (serialized with a lock file).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="${DP_VENV:-$ROOT/.venv}"
# ament_index (rosidl typesupport discovery) needs the venv on AMENT_PREFIX_PATH; colcon warns that
# the venv has no local_setup files, which is expected here and filtered from the warning report.
export AMENT_PREFIX_PATH="$VENV${AMENT_PREFIX_PATH:+:$AMENT_PREFIX_PATH}"
export CMAKE_PREFIX_PATH="$VENV${CMAKE_PREFIX_PATH:+:$CMAKE_PREFIX_PATH}"
export PATH="$VENV/bin:$PATH"
export PYTHONWARNINGS="ignore::DeprecationWarning"
cd "$ROOT/ros2_ws"
exec 9>"$ROOT/ros2_ws/.colcon.lock"
flock 9
echo "[setup] colcon build" >&2
t0=$(date +%s)
mkdir -p "$ROOT/ros2_ws/log"
touch "$ROOT/ros2_ws/.build-start"
colcon --log-base log build --symlink-install --event-handlers console_cohesion+ \
  --cmake-args -DPython3_EXECUTABLE="$VENV/bin/python" -DBUILD_TESTING=OFF "$@" >"$ROOT/ros2_ws/log/last_build.txt" 2>&1 \
  || { cat "$ROOT/ros2_ws/log/last_build.txt"; echo "[setup] colcon build FAILED" >&2; exit 1; }
grep -iE "warning" "$ROOT/ros2_ws/log/last_build.txt" | grep -v "^--" | grep -v "doesn.t contain any .local_setup" >&2 || true
mv "$ROOT/ros2_ws/.build-start" "$ROOT/ros2_ws/install/.dp-build-stamp"
echo "[setup] colcon build done in $(( $(date +%s) - t0 )) s" >&2
