"""Hand-over between action chunks: the rows a new chunk is followed with, given the old ones.

``replace`` takes the new chunk's rows as they are; ``blend`` mixes the old reference into them,
resampled at the new row times, with a weight ramping to the new chunk over ``blend_window_s``;
``ensemble`` averages every chunk that covers a row time (ACT's temporal ensembling,
``w_i = exp(-m * i)`` with i = 0 the oldest chunk).
"""

from __future__ import annotations

import numpy as np


def blend_rows(
    times: np.ndarray,
    rows: np.ndarray,
    old_q: np.ndarray,
    t_now: float,
    blend_window_s: float,
    ref_end: float,
) -> np.ndarray:
    """Blend ``rows`` (H, n) at ``times`` (H,) [s] with the old reference's ``old_q`` (H, n).

    The weight of the new rows ramps from 0 at ``t_now`` to 1 after ``blend_window_s``; rows after
    ``ref_end`` (the old chunk's last row time) are the new chunk's alone.
    """
    if blend_window_s > 0:
        w = np.clip((times - t_now) / blend_window_s, 0.0, 1.0)
    else:
        w = np.ones_like(times)
    w = np.where(times > ref_end, 1.0, w)[:, None]
    return w * rows + (1.0 - w) * old_q


def ensemble_rows(times: np.ndarray, n_joints: int, history: list, decay: float) -> np.ndarray:
    """Temporal ensemble at ``times`` (H,) [s] of the chunks in ``history``, oldest first.

    Args:
        history: ``(chunk, reference)`` pairs; a chunk covers ``chunk.times[0]..chunk.times[-1]``
            and its reference gives its positions there.
        decay: ACT's m in ``w_i = exp(-m * i)``.

    Returns:
        (H, n_joints) weighted mean of the covering chunks at each time.
    """
    acc = np.zeros((times.size, n_joints))
    wsum = np.zeros((times.size, 1))
    # i = 0 is the oldest chunk covering a time (ACT: w_i = exp(-m * i)).
    index = np.zeros(times.size)
    for c, ref in history:
        cover = ((times >= c.times[0]) & (times <= c.times[-1]))[:, None]
        w = np.exp(-decay * index)[:, None] * cover
        acc += w * ref.sample(times)[0]
        wsum += w
        index += cover[:, 0]
    return acc / np.maximum(wsum, 1e-12)
