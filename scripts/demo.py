"""`make demo`: the closed-loop pick-and-place demo (sim + perception + policy + control, 5 seeded episodes).

Runs `python -m dp_sim.closed_loop --task place --checkpoint checkpoints/sim_place_dp3 --episodes 5`;
extra arguments are passed through and win (e.g. `--task reach --checkpoint checkpoints/sim_reach_dp3`).
Writes out/demo/summary.json, trajectories.png (commanded vs actual joints, gripper command vs finger
opening) and episode.gif (the first episode from the simulator's camera/image topic); the last line
printed is the success rate.
"""

import sys

from dp_sim.closed_loop import REPO, main

DEFAULTS = {"--task": "place", "--checkpoint": str(REPO / "checkpoints" / "sim_place_dp3"), "--episodes": "5"}


def demo_argv(argv: list[str]) -> list[str]:
    """`argv` with the demo's defaults for every option it does not set (--oracle replaces --checkpoint)."""
    given = {a.split("=", 1)[0] for a in argv if a.startswith("--")}
    out: list[str] = []
    for opt, value in DEFAULTS.items():
        if opt not in given and not (opt == "--checkpoint" and "--oracle" in given):
            out += [opt, value]
    return out + list(argv)


if __name__ == "__main__":
    sys.exit(main(demo_argv(sys.argv[1:])))
