#!/usr/bin/env bash
# One-shot, idempotent set-up of the dp development environment (called by `make setup`, `make test`,
# `make demo`). From nothing it:
#   1. installs the Debian packages dp needs (when root; otherwise prints the apt-get line and stops),
#   2. creates the project venv .venv and installs requirements.txt (ROS 2 Kilted wheels, torch, ...),
#   3. makes the include paths recorded in the ROS wheels' CMake exports resolve on this machine,
#   4. builds ros2_ws with colcon (--symlink-install).
# Each step is skipped when its inputs did not change, so a second run takes a few seconds.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="${DP_VENV:-$ROOT/.venv}"
PYTHON="${DP_PYTHON:-python3}"
STAMPS="$VENV/.dp-stamps"
# open3d needs libusb; MuJoCo renders headless through EGL or OSMesa; cmake/g++ build dp_msgs.
DEB_PACKAGES=(libusb-1.0-0 libegl1 libegl-mesa0 libgl1-mesa-dri libosmesa6 cmake g++ make)

log() { printf '[setup] %s\n' "$*" >&2; }
t_start=$(date +%s)

# --- 1. Debian packages ---------------------------------------------------------------------------
missing=()
for p in "${DEB_PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
  if [[ $(id -u) -eq 0 ]]; then
    log "installing Debian packages: ${missing[*]}"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  else
    log "missing Debian packages: ${missing[*]}"
    log "run:  sudo apt-get install -y ${missing[*]}   and then this script again"
    exit 1
  fi
fi

# --- 2. venv + pinned requirements ----------------------------------------------------------------
if [[ ! -x "$VENV/bin/python" ]]; then
  "$PYTHON" -c 'import sys; assert sys.version_info[:2] == (3, 11), sys.version' 2>/dev/null || {
    log "dp's ROS 2 wheels are built for CPython 3.11; set DP_PYTHON to a python3.11 (found $($PYTHON --version 2>&1))"
    exit 1
  }
  log "creating venv $VENV"
  "$PYTHON" -m venv "$VENV"
fi
mkdir -p "$STAMPS"
req_hash=$(sha256sum "$ROOT/requirements.txt" | cut -d' ' -f1)
if [[ "$(cat "$STAMPS/requirements" 2>/dev/null)" != "$req_hash" ]]; then
  log "installing requirements.txt into $VENV (first time: several minutes)"
  "$VENV/bin/python" -m pip install -q --upgrade pip
  "$VENV/bin/python" -m pip install -q -r "$ROOT/requirements.txt"
  rm -f "$STAMPS/cmake-paths"
  echo "$req_hash" >"$STAMPS/requirements"
fi

# --- 3. CMake include paths of the wheels -----------------------------------------------------------
# The wheels' CMake exports name the include directories of the machine that built them
# (e.g. /opt/python/cp311-cp311/include/python3.11). Read those paths from the installed files and
# rewrite each one that does not exist here to this interpreter's equivalent.
if [[ ! -f "$STAMPS/cmake-paths" ]]; then
  "$VENV/bin/python" "$ROOT/scripts/fix_cmake_paths.py" "$VENV"
  touch "$STAMPS/cmake-paths"
fi

# --- 4. colcon build ----------------------------------------------------------------------------------
# Rebuild when any file under ros2_ws/src is newer than the last successful build.
build_stamp="$ROOT/ros2_ws/install/.dp-build-stamp"
need_build=1
if [[ -f "$build_stamp" && -f "$ROOT/ros2_ws/install/setup.sh" ]]; then
  # Files only: a directory's mtime changes when Python writes __pycache__ into it.
  if [[ -z "$(find "$ROOT/ros2_ws/src" -type f -newer "$build_stamp" -not -path '*/__pycache__*' \
              -not -name '*.pyc' -print -quit)" ]]; then
    need_build=0
  fi
fi
if ((need_build)) || [[ "${DP_FORCE_BUILD:-0}" == 1 ]]; then
  "$ROOT/scripts/build.sh"
else
  log "workspace up to date (no source changed since the last build)"
fi
log "set-up done in $(( $(date +%s) - t_start )) s"
