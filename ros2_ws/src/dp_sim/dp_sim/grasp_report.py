"""CLI: why grasps fail -- the hand's pose relative to the cube when it closes, from rollout traces.

Reads what ``python -m dp_sim.rollout --out DIR --traces`` wrote (summary.json + episode_<seed>.npz)
and prints, per episode, at the first tick whose gripper command is closed (< ``--closed-below`` m):

    offset   TCP - cube centre in the cube's own frame (x, y along its faces) and height (cm)
    yaw      the hand's yaw error against the nearest cube face, in (-45, 45] deg (0 = aligned;
             a policy that ignores the cube's yaw shows 22.5 on average over yaw +-45 deg)
    changes  how often the gripper command switched between open and closed (1 = one clean close)
    lift     the cube's highest rise above its start (cm)

and the medians over the episodes. Example::

    python -m dp_sim.rollout --checkpoint checkpoints/sim_lift_dp3 --task lift --episodes 50 \\
        --out out/rollout_lift --traces
    python -m dp_sim.grasp_report out/rollout_lift
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

from dp_sim.core.pick_expert import face_yaw


def _yaw(rot: np.ndarray) -> float:
    return float(np.arctan2(rot[1, 0], rot[0, 0]))


class GraspAnalyzer:
    """Hand-vs-cube geometry at the closing tick of a rollout trace (forward kinematics of q)."""

    def __init__(self, closed_below_m: float = 0.01) -> None:
        from dp_sim.core.expert import PandaIK
        from dp_sim.core.robot import HOME_Q

        self.ik = PandaIK()
        self.closed_below_m = closed_below_m
        # the experts' grasp orientation is Rz(yaw) @ (the TCP orientation at HOME_Q)
        self.home_yaw = _yaw(self.ik.fk(HOME_Q)[:3, :3])

    def episode(self, trace: dict) -> dict:
        """Per-episode figures (see the module docstring); closed = False when the hand never closed."""
        cmd = np.asarray(trace["grip_cmd"], float)
        valid = ~np.isnan(cmd)
        closed = valid & (cmd < self.closed_below_m)
        states = closed[valid].astype(int)
        out = {
            "closed": bool(closed.any()),
            "changes": int(np.abs(np.diff(states)).sum()) if states.size > 1 else 0,
            "max_lift_cm": float(100 * (np.nanmax(trace["cube"][:, 2]) - trace["cube"][0, 2])),
        }
        if not out["closed"]:
            return out
        i = int(np.argmax(closed))
        cube, tcp = trace["cube"][i], trace["tcp"][i]
        cube_yaw = float(trace["cube_yaw"][i])
        c, s = np.cos(-cube_yaw), np.sin(-cube_yaw)
        d = tcp[:2] - cube[:2]
        hand_yaw = _yaw(self.ik.fk(trace["q"][i])[:3, :3]) - self.home_yaw
        out.update(
            t_close_s=float(trace["t"][i]),
            offset_cm=[float(100 * (c * d[0] - s * d[1])), float(100 * (s * d[0] + c * d[1]))],
            height_cm=float(100 * (tcp[2] - cube[2])),
            yaw_error_deg=float(np.degrees(face_yaw(hand_yaw - cube_yaw))),
        )
        return out


def report(folder: Path, closed_below_m: float = 0.01) -> list[dict]:
    """Analyze every episode of a rollout folder; prints the table and returns the rows."""
    summary = json.loads((folder / "summary.json").read_text())
    analyzer = GraspAnalyzer(closed_below_m)
    rows = []
    print(f"{'seed':>6} {'result':7} {'close s':>7} {'offset x,y cm':>14} {'dz cm':>6} {'yaw deg':>7} "
          f"{'changes':>7} {'lift cm':>7}")  # fmt: skip
    for res in summary["results"]:
        path = folder / f"episode_{res['seed']}.npz"
        if not path.is_file():
            raise FileNotFoundError(f"{path}: no trace; run dp_sim.rollout with --traces")
        with np.load(path) as tr:
            if "cube_yaw" not in tr:
                raise ValueError(f"{path}: trace without cube_yaw (written by an older dp_sim.rollout)")
            row = {"seed": res["seed"], "success": res["success"], **analyzer.episode(dict(tr))}
        rows.append(row)
        result = "success" if row["success"] else "FAIL"
        if row["closed"]:
            ox, oy = row["offset_cm"]
            print(f"{row['seed']:>6} {result:7} {row['t_close_s']:7.2f} {ox:6.1f},{oy:6.1f}   "
                  f"{row['height_cm']:6.1f} {row['yaw_error_deg']:7.1f} {row['changes']:7d} "
                  f"{row['max_lift_cm']:7.1f}")  # fmt: skip
        else:
            print(
                f"{row['seed']:>6} {result:7} {'never closed':>30} {row['changes']:15d} "
                f"{row['max_lift_cm']:7.1f}"
            )
    closed = [r for r in rows if r["closed"]]
    if closed:
        off = np.median([np.hypot(*r["offset_cm"]) for r in closed])
        yaw = np.mean([abs(r["yaw_error_deg"]) for r in closed])
        print(f"{len(closed)}/{len(rows)} closed the hand; median TCP-cube offset {off:.1f} cm, "
              f"mean |yaw error| {yaw:.1f} deg (22.5 = yaw ignored)")  # fmt: skip
    return rows


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m dp_sim.grasp_report", description=__doc__.split("\n\n")[0])
    ap.add_argument("folder", help="a dp_sim.rollout --out folder written with --traces")
    ap.add_argument(
        "--closed-below", type=float, default=0.01, help="gripper command (m) that counts as closed"
    )
    args = ap.parse_args(argv)
    try:
        report(Path(args.folder), args.closed_below)
    except (FileNotFoundError, ValueError, KeyError) as exc:
        print(f"dp_sim.grasp_report: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
