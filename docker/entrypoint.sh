#!/usr/bin/env bash
# Sources ROS 2 and the dp workspace, then runs the given command.
set -e
# shellcheck disable=SC1090
source "/opt/ros/${ROS_DISTRO:-jazzy}/setup.bash"
# shellcheck disable=SC1091
source /opt/dp/ros2_ws/install/setup.bash
exec "$@"
