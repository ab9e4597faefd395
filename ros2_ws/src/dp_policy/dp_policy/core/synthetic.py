"""Synthetic demonstration tasks for tests and benchmarks.

- Bimodal arcs (Diffusion Policy's teaching example): a 2-D point goes from a start to a goal
  along the upper or the lower half of a circle of radius R, half of the demos each way.
- Reach the cube: a cube lies at a random spot on a table; only the point cloud tells where; the
  end effector moves from a random start to above the cube.
"""

from __future__ import annotations

import numpy as np


# ----------------------------------------------------------------------------- arcs
def arc_points(radius: float, n_steps: int, upper: bool) -> np.ndarray:
    """(n_steps, 2) points from (0, 0) to (2R, 0) along the upper or lower half circle."""
    theta = np.linspace(0.0, np.pi, n_steps)
    y = radius * np.sin(theta) * (1.0 if upper else -1.0)
    return np.stack([radius - radius * np.cos(theta), y], axis=-1).astype(np.float32)


def make_arc_dataset(n_episodes: int = 100, radius: float = 1.0, n_steps: int = 17) -> dict:
    """Episodes alternate upper / lower arcs: agent_pos = position, action = next position."""
    agent, action = [], []
    for e in range(n_episodes):
        p = arc_points(radius, n_steps, upper=e % 2 == 0)
        agent.append(p[:-1])
        action.append(p[1:])
    ends = np.cumsum([len(a) for a in action]).astype(np.int64)
    return {"agent_pos": np.concatenate(agent), "action": np.concatenate(action), "episode_ends": ends}


def arc_distance(points: np.ndarray, radius: float = 1.0) -> np.ndarray:
    """Distance of points (..., 2) to the union of both arcs."""
    ref = np.concatenate([arc_points(radius, 2001, True), arc_points(radius, 2001, False)])
    d = np.linalg.norm(points[..., None, :] - ref, axis=-1)
    return d.min(axis=-1)


# ----------------------------------------------------------------------------- reach the cube
CUBE_SIZE = 0.05  # m
TABLE_HALF = 0.3  # m


def _cube_cloud(rng: np.random.Generator, center: np.ndarray, n: int) -> np.ndarray:
    """Points on the top and side faces of an axis-aligned cube resting on z = 0."""
    h = CUBE_SIZE / 2
    face = rng.integers(0, 5, n)
    uv = rng.uniform(-h, h, (n, 2))
    pts = np.zeros((n, 3))
    top = face == 0
    pts[top] = np.c_[uv[top], np.full(top.sum(), h)]
    for f, (axis, sign) in enumerate([(0, 1), (0, -1), (1, 1), (1, -1)], start=1):
        m = face == f
        side = np.zeros((m.sum(), 3))
        side[:, axis] = sign * h
        side[:, 1 - axis] = uv[m, 0]
        side[:, 2] = uv[m, 1]
        pts[m] = side
    return pts + center + np.array([0.0, 0.0, h])


def make_reach_dataset(
    n_episodes: int = 120, n_steps: int = 20, num_points: int = 128, seed: int = 0, noise_m: float = 0.002
) -> dict:
    """Reach toward a randomly placed cube.

    agent_pos / action: end-effector position (3,) m; the action is the next position. Episodes
    move with a smooth (minimum-jerk) profile from a random start to 5 cm above the cube in
    ``n_steps - 4`` steps and hold. Clouds: half table points, half cube points, ``num_points``.
    Returns arrays plus ``cube`` (E, 3) cube centers on the table.
    """
    rng = np.random.default_rng(seed)
    pcs, agent, action, cubes = [], [], [], []
    reach = n_steps - 4
    for _ in range(n_episodes):
        cube = np.array([*rng.uniform(-0.15, 0.15, 2), 0.0])
        start = np.array([*rng.uniform(-0.2, 0.2, 2), rng.uniform(0.25, 0.35)])
        goal = cube + np.array([0.0, 0.0, CUBE_SIZE + 0.05])
        s = np.clip(np.arange(n_steps + 1) / reach, 0.0, 1.0)
        s = 10 * s**3 - 15 * s**4 + 6 * s**5
        path = start + s[:, None] * (goal - start)
        n_cube = num_points // 2
        frames = []
        for _t in range(n_steps):
            table = np.c_[
                rng.uniform(-TABLE_HALF, TABLE_HALF, (num_points - n_cube, 2)), np.zeros(num_points - n_cube)
            ]
            pc = np.concatenate([table, _cube_cloud(rng, cube, n_cube)])
            pc += rng.normal(0.0, noise_m, pc.shape)
            frames.append(rng.permutation(pc))
        pcs.append(np.stack(frames))
        agent.append(path[:-1])
        action.append(path[1:])
        cubes.append(cube)
    ends = np.cumsum([len(a) for a in action]).astype(np.int64)
    return {
        "point_cloud": np.concatenate(pcs).astype(np.float32),
        "agent_pos": np.concatenate(agent).astype(np.float32),
        "action": np.concatenate(action).astype(np.float32),
        "episode_ends": ends,
        "cube": np.asarray(cubes, dtype=np.float32),
    }


def episode_slice(data: dict, e: int) -> slice:
    """Frame slice of episode e."""
    ends = data["episode_ends"]
    start = 0 if e == 0 else int(ends[e - 1])
    return slice(start, int(ends[e]))


def initial_obs(data: dict, e: int, n_obs_steps: int) -> tuple[dict[str, np.ndarray], np.ndarray]:
    """Observation at the start of episode e (padded history) and the true chunk (horizon rows
    are taken by the caller from the returned full action sequence, padded like training)."""
    sl = episode_slice(data, e)
    obs = {
        k: np.repeat(data[k][sl][:1], n_obs_steps, axis=0) for k in ("point_cloud", "agent_pos") if k in data
    }
    return obs, data["action"][sl]


def true_chunk(actions: np.ndarray, horizon: int, n_obs_steps: int) -> np.ndarray:
    """Training-style target chunk at the episode start: index -(n_obs_steps-1) edge-padded."""
    t = np.clip(np.arange(horizon) - (n_obs_steps - 1), 0, len(actions) - 1)
    return actions[t]
