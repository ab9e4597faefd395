#!/usr/bin/env bash
# Smoke test of the dp image, run inside it (nothing is built):
#
#   docker compose -f docker/compose.yaml run --rm dp /opt/dp/docker/smoke.sh
#
# Starts the node list of launch/sim.launch.py headless (simulator, perception, policy, control, each
# in its own process, through dp_sim's closed_loop executable) with the shipped reach checkpoint, runs
# DP_SMOKE_EPISODES (1) seeded episodes and exits 0 only when at least one succeeded (the cube touched,
# judged by the simulator). Rendering is headless: MUJOCO_GL=egl (without a GPU EGL driver use
# MUJOCO_GL=osmesa PYOPENGL_PLATFORM=osmesa). Environment:
#   DP_SMOKE_CHECKPOINT  checkpoint directory (default: the image's checkpoints/sim_reach_dp3)
#   DP_SMOKE_EPISODES    episodes to run (default 1)
#   DP_SMOKE_OUT         report directory (default: a new directory under /tmp)
set -euo pipefail
dp_root="${DP_ROOT:-/opt/dp}"
checkpoint="${DP_SMOKE_CHECKPOINT:-$dp_root/checkpoints/sim_reach_dp3}"
episodes="${DP_SMOKE_EPISODES:-1}"
out="${DP_SMOKE_OUT:-$(mktemp -d /tmp/dp-smoke.XXXXXX)}"
export MUJOCO_GL="${MUJOCO_GL:-egl}"
if [[ -z "${AMENT_PREFIX_PATH:-}" ]]; then  # not started through the image's entrypoint
  # shellcheck disable=SC1090
  source "/opt/ros/${ROS_DISTRO:-jazzy}/setup.bash"
  # shellcheck disable=SC1091
  source "$dp_root/ros2_ws/install/setup.bash"
fi
echo "[smoke] closed loop in simulation: $episodes episode(s), checkpoint $checkpoint, report in $out"
"$dp_root/ros2_ws/install/dp_sim/lib/dp_sim/closed_loop" \
  --checkpoint "$checkpoint" --episodes "$episodes" --out "$out"
python - "$out/summary.json" <<'PY'
import json
import sys

summary = json.load(open(sys.argv[1], encoding="utf-8"))
ok = summary["successes"]
print(f"[smoke] {ok}/{summary['episodes']} episode(s) succeeded")
sys.exit(0 if ok >= 1 else 1)
PY
