"""Computes the SRDF `<disable_collisions>` pairs of a URDF from its collision geometry.

The method is the MoveIt Setup Assistant's (moveit_setup_srdf_plugins, "Self-Collisions"):

- ``Adjacent``: two links joined by a joint, where links without collision geometry are skipped
  (panda_link7 and panda_hand are adjacent through the geometry-less panda_link8).
- ``Default``: in collision at MoveIt's default state (every joint at 0, or mid-range where 0 is
  outside its limits). The Setup Assistant disables all of these; here only pairs of links moved by one
  actuator (a joint and its mimic: the two fingers, which touch when the gripper is closed) are, because
  the other default-state contacts (panda_hand / panda_link7 against panda_link5 at joint 6 = 0) are real
  self-collisions near a joint limit that MoveIt must keep checking. They are printed as a comment.
- ``Always``: in collision in at least ``always_fraction`` of the random states.
- ``Never``: in collision in none of ``samples`` random states drawn uniformly within the joint limits
  (mimic joints follow their leader).

Collision checking uses pinocchio with the URDF's collision meshes and primitives (hpp-fcl / coal),
as MoveIt's FCL checker does. Pairs are reported once, in the order Adjacent, Default, Always, Never.

    python scripts/moveit_disabled_collisions.py [--urdf PATH] [--samples 10000] [--seed 0]

prints the XML block that ros2_ws/src/dp_control/config/moveit/panda.srdf contains.
"""

from __future__ import annotations

import argparse
import itertools
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import numpy as np


def default_urdf() -> Path:
    """example-robot-data's panda.urdf (the URDF dp_sim simulates)."""
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "ros2_ws" / "src" / "dp_sim"))
    from dp_sim.core.robot import find_panda_urdf

    return find_panda_urdf()


def _urdf_tree(urdf_path: Path) -> tuple[set[str], list[tuple[str, str]], dict[str, str]]:
    """(links with collision geometry, (parent, child) link pairs of every joint, mimic -> leader)."""
    root = ET.parse(urdf_path).getroot()
    if root.tag != "robot":
        raise ValueError(f"{urdf_path} is not a URDF (root element <{root.tag}>, expected <robot>)")
    with_geometry = {link.get("name") for link in root.findall("link") if link.find("collision") is not None}
    edges = [(j.find("parent").get("link"), j.find("child").get("link")) for j in root.findall("joint")]
    mimic = {
        j.get("name"): j.find("mimic").get("joint")
        for j in root.findall("joint")
        if j.find("mimic") is not None
    }
    return with_geometry, edges, mimic


def adjacent_pairs(urdf_path: Path) -> set[frozenset]:
    """Link pairs joined by a joint once geometry-less links are collapsed into their parent."""
    with_geometry, edges, _ = _urdf_tree(urdf_path)
    parent = {child: par for par, child in edges}

    def geometric_parent(link: str) -> str | None:
        p = parent.get(link)
        while p is not None and p not in with_geometry:
            p = parent.get(p)
        return p

    pairs = set()
    for link in with_geometry:
        p = geometric_parent(link)
        if p is not None:
            pairs.add(frozenset((p, link)))
    return pairs


class SelfCollision:
    """Link-pair self-collision queries on a URDF's collision geometry (pinocchio)."""

    def __init__(self, urdf_path: Path) -> None:
        import pinocchio as pin

        self._pin = pin
        package_dir = str(Path(urdf_path).resolve().parents[4])  # resolves package://example-robot-data/
        self.model = pin.buildModelFromUrdf(str(urdf_path))
        self.geom = pin.buildGeomFromUrdf(
            self.model, str(urdf_path), pin.GeometryType.COLLISION, package_dirs=package_dir
        )
        link_of = [self.model.frames[g.parentFrame].name for g in self.geom.geometryObjects]
        self.links = sorted(set(link_of))
        self.pair_index: dict[frozenset, list[int]] = {}
        for i, j in itertools.combinations(range(len(link_of)), 2):
            if link_of[i] != link_of[j]:
                self.geom.addCollisionPair(pin.CollisionPair(i, j))
                key = frozenset((link_of[i], link_of[j]))
                self.pair_index.setdefault(key, []).append(len(self.geom.collisionPairs) - 1)
        self.data = self.model.createData()
        self.geom_data = pin.GeometryData(self.geom)
        _, _, mimic = _urdf_tree(urdf_path)
        self.mimic = {
            self._q_index(m): self._q_index(lead) for m, lead in mimic.items() if self.model.existJointName(m)
        }
        self.lower = np.asarray(self.model.lowerPositionLimit, dtype=float)
        self.upper = np.asarray(self.model.upperPositionLimit, dtype=float)

    def _q_index(self, joint: str) -> int:
        return self.model.joints[self.model.getJointId(joint)].idx_q

    def _fix_mimic(self, q: np.ndarray) -> np.ndarray:
        for m, lead in self.mimic.items():
            q[m] = q[lead]
        return q

    def colliding(self, q: np.ndarray) -> set[frozenset]:
        """Link pairs in collision at configuration q."""
        self._pin.computeCollisions(self.model, self.data, self.geom, self.geom_data, q, False)
        results = self.geom_data.collisionResults
        return {key for key, idx in self.pair_index.items() if any(results[k].isCollision() for k in idx)}

    def default_state(self) -> np.ndarray:
        """MoveIt's default joint values: 0 where within the limits, else the middle of the range."""
        inside = (self.lower <= 0.0) & (self.upper >= 0.0)
        return self._fix_mimic(np.where(inside, 0.0, 0.5 * (self.lower + self.upper)))

    def random_state(self, rng: np.random.Generator) -> np.ndarray:
        """A configuration drawn uniformly within the joint limits."""
        return self._fix_mimic(rng.uniform(self.lower, self.upper))


def one_actuator_pairs(urdf_path: Path) -> set[frozenset]:
    """Link pairs moved by one actuator: the child links of a joint and of a joint mimicking it."""
    root = ET.parse(urdf_path).getroot()
    child = {j.get("name"): j.find("child").get("link") for j in root.findall("joint")}
    _, _, mimic = _urdf_tree(urdf_path)
    return {frozenset((child[m], child[lead])) for m, lead in mimic.items()}


def compute(urdf_path: Path, samples: int = 10000, seed: int = 0, always_fraction: float = 0.95) -> dict:
    """Returns {frozenset(link1, link2): reason} for every pair whose collision checking can be disabled,
    plus the default-state contacts that stay enabled under the reason "Default (kept)"."""
    checker = SelfCollision(urdf_path)
    reasons: dict[frozenset, str] = {p: "Adjacent" for p in adjacent_pairs(urdf_path)}
    one_actuator = one_actuator_pairs(urdf_path)
    for p in checker.colliding(checker.default_state()):
        reasons.setdefault(p, "Default" if p in one_actuator else "Default (kept)")
    rng = np.random.default_rng(seed)
    counts = dict.fromkeys(checker.pair_index, 0)
    for _ in range(samples):
        for p in checker.colliding(checker.random_state(rng)):
            counts[p] += 1
    for p, n in counts.items():
        if reasons.get(p) == "Default (kept)":
            continue
        if n >= always_fraction * samples:
            reasons.setdefault(p, "Always")
        elif n == 0:
            reasons.setdefault(p, "Never")
    return reasons


def srdf_lines(reasons: dict) -> list[str]:
    """`<disable_collisions .../>` lines, sorted by link names (kept pairs as comments)."""
    rows = sorted((sorted(p), r) for p, r in reasons.items())
    return [
        f"<!-- {a} / {b}: in collision at the default state, kept enabled -->"
        if r == "Default (kept)"
        else f'<disable_collisions link1="{a}" link2="{b}" reason="{r}"/>'
        for (a, b), r in rows
    ]


def main(argv: list[str] | None = None) -> int:
    """CLI: print the disable_collisions block for a URDF."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--urdf", type=Path, default=None, help="URDF (default: example-robot-data's Panda)")
    parser.add_argument("--samples", type=int, default=10000, help="random states (Setup Assistant: 10000)")
    parser.add_argument("--seed", type=int, default=0)
    ns = parser.parse_args(argv)
    urdf = ns.urdf or default_urdf()
    print(
        f"<!-- generated by scripts/moveit_disabled_collisions.py --samples {ns.samples} --seed {ns.seed} -->"
    )
    for line in srdf_lines(compute(urdf, ns.samples, ns.seed)):
        print(line)
    return 0


if __name__ == "__main__":
    sys.exit(main())
