"""Fixtures shared by dp_policy's tests."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

PKG = Path(__file__).resolve().parents[1]


@pytest.fixture
def dp_train_cli():
    """Runs ``python -m dp_policy.train --config config/<config> <overrides>`` as a user would.

    The process sees dp_policy's source only (PYTHONPATH = the package, no ROS overlay) and one
    OpenMP thread. Returns the CompletedProcess (text output captured).
    """

    def run(config: str, overrides: list[str], timeout: float = 240) -> subprocess.CompletedProcess:
        args = [sys.executable, "-m", "dp_policy.train", "--config", str(PKG / "config" / config), *overrides]
        env = {"PYTHONPATH": str(PKG), "PATH": "/usr/bin:/bin", "OMP_NUM_THREADS": "1"}
        return subprocess.run(args, capture_output=True, text=True, env=env, timeout=timeout)

    return run
