# Source this file (`source env.sh`) for a shell in which dp's nodes run and its packages import:
# the project venv, ROS 2 Kilted from PyPI wheels, and the colcon workspace overlay.
# Run `make setup` once first. On a robot with a system ROS 2 use instead:
#   source /opt/ros/<distro>/setup.bash && cd ros2_ws && colcon build && source install/setup.bash
_dp_root="$(cd "$(dirname "${BASH_SOURCE[0]:-$0}")" && pwd)"
_dp_venv="${DP_VENV:-$_dp_root/.venv}"
if [ ! -x "$_dp_venv/bin/python" ]; then
  echo "env.sh: no venv at $_dp_venv; run 'make setup' first" >&2
  return 1 2>/dev/null || exit 1
fi
# shellcheck disable=SC1091
. "$_dp_venv/bin/activate"
export AMENT_PREFIX_PATH="$_dp_venv${AMENT_PREFIX_PATH:+:$AMENT_PREFIX_PATH}"
export CMAKE_PREFIX_PATH="$_dp_venv${CMAKE_PREFIX_PATH:+:$CMAKE_PREFIX_PATH}"
export RMW_IMPLEMENTATION="${RMW_IMPLEMENTATION:-rmw_fastrtps_cpp}"
export DP_ROOT="$_dp_root"
if [ -f "$_dp_root/ros2_ws/install/setup.sh" ]; then
  # colcon's setup.sh needs COLCON_CURRENT_PREFIX when sourced from another directory.
  COLCON_CURRENT_PREFIX="$_dp_root/ros2_ws/install" . "$_dp_root/ros2_ws/install/setup.sh"
else
  echo "env.sh: workspace not built yet; run 'make build'" >&2
fi
unset _dp_root _dp_venv
