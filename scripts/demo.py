"""`make demo`: the closed-loop simulator demo (sim + perception + policy + control, 5 seeded episodes).

Equivalent to `python -m dp_sim.closed_loop --episodes 5`; extra arguments are passed through. Writes
out/demo/summary.json, trajectories.png (commanded vs actual joints, gripper command vs finger
opening) and episode.gif (the first episode from the simulator's camera/image topic).
"""

import sys

from dp_sim.closed_loop import main

if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
