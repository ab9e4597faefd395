"""Errors of predicted action chunks against recorded actions (ROS-free, numpy).

A chunk stamped t with rows r_0..r_{H-1} (row k targets t + k * dt, row 0 = "now") is compared
with the recorded action trajectory a(.) (the expert's commanded joint targets), linearly
interpolated at the row times::

    chunk      r0    r1    r2    r3    r4 ...          r_end
    times      t     t+dt  t+2dt t+3dt t+4dt           t+(H-1)dt
    error_k  = || r_k - a(t + k dt) ||_2      (rad, over the joints; NaN past the recording's end)

Reported per episode and overall: the mean of error_k over chunks for k in `horizon_steps`
("step_1" is one dt ahead, "step_end" the last row), the mean over all rows, and the final-position
error ||last row of the last chunk - last recorded action||.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

DEFAULT_HORIZON_STEPS = (1, 4, 8, "end")


def interp_targets(rec_t: np.ndarray, rec_q: np.ndarray, times: np.ndarray, tol_s: float) -> np.ndarray:
    """Recorded actions at `times` (linear per column); NaN outside [t_first - tol, t_last + tol].

    Args:
        rec_t: (T,) increasing times, s. rec_q: (T, A). times: any shape, s.

    Returns:
        times.shape + (A,) array.
    """
    times = np.asarray(times, dtype=np.float64)
    flat = times.reshape(-1)
    out = np.empty((flat.size, rec_q.shape[1]))
    for j in range(rec_q.shape[1]):
        out[:, j] = np.interp(flat, rec_t, rec_q[:, j])
    outside = (flat < rec_t[0] - tol_s) | (flat > rec_t[-1] + tol_s)
    out[outside] = np.nan
    return out.reshape(*times.shape, rec_q.shape[1])


def chunk_errors(
    stamps: np.ndarray, chunks: np.ndarray, dt: float, rec_t: np.ndarray, rec_q: np.ndarray, tol_s: float
) -> tuple[np.ndarray, np.ndarray]:
    """Per-row L2 errors of chunks against recorded actions.

    Args:
        stamps: (M,) chunk stamps, s. chunks: (M, H, A). dt: row period, s.
        rec_t, rec_q: recorded actions (T,), (T, A) in the chunks' column order.
        tol_s: how far past the recording's ends a row may still be compared.

    Returns:
        err: (M, H) L2 error per row (NaN where no recorded target).
        abs_err: (M, H, A) absolute error per joint.
    """
    if chunks.ndim != 3 or chunks.shape[0] != stamps.shape[0]:
        raise ValueError(f"chunks must be (M, H, A) with M = len(stamps). Got {chunks.shape}")
    times = stamps[:, None] + dt * np.arange(chunks.shape[1])[None, :]
    target = interp_targets(rec_t, rec_q, times, tol_s)
    diff = chunks.astype(np.float64) - target
    return np.sqrt(np.sum(diff**2, axis=-1)), np.abs(diff)


def _nanmean(x) -> float:
    x = np.asarray(x, dtype=np.float64)
    x = x[np.isfinite(x)]
    return float(x.mean()) if x.size else float("nan")


def _step_index(step, horizon: int) -> int | None:
    if step == "end":
        return horizon - 1
    k = int(step)
    return k if 0 <= k < horizon else None


def episode_metrics(
    stamps: np.ndarray,
    chunks: np.ndarray,
    dt: float,
    rec_t: np.ndarray,
    rec_q: np.ndarray,
    horizon_steps: Sequence = DEFAULT_HORIZON_STEPS,
    tol_s: float | None = None,
) -> dict:
    """Metrics of one episode's chunks (see the module docstring). Errors in rad, rates in Hz.

    Returns:
        dict with n_chunks, chunk_rate_hz (chunks per second of sensor time), l2_step_<k>,
        l2_mean, final_position_error, per_joint_mae (list), and err (M, H) for aggregation.
    """
    tol = 0.5 * dt if tol_s is None else tol_s
    out: dict = {"n_chunks": int(stamps.size)}
    if stamps.size == 0:
        out.update({f"l2_step_{s}": float("nan") for s in horizon_steps})
        out.update(l2_mean=float("nan"), final_position_error=float("nan"), chunk_rate_hz=0.0)
        out["per_joint_mae"] = [float("nan")] * rec_q.shape[1]
        out["err"] = np.zeros((0, 0))
        return out
    err, abs_err = chunk_errors(stamps, chunks, dt, rec_t, rec_q, tol)
    horizon = chunks.shape[1]
    for s in horizon_steps:
        k = _step_index(s, horizon)
        out[f"l2_step_{s}"] = _nanmean(err[:, k]) if k is not None else float("nan")
    out["l2_mean"] = _nanmean(err)
    out["final_position_error"] = float(np.linalg.norm(chunks[-1, -1].astype(np.float64) - rec_q[-1]))
    span = float(stamps[-1] - stamps[0])
    out["chunk_rate_hz"] = (stamps.size - 1) / span if span > 0 else float("nan")
    out["per_joint_mae"] = [_nanmean(abs_err[..., j]) for j in range(abs_err.shape[-1])]
    out["err"] = err
    return out


def aggregate(episodes: Sequence[dict], horizon_steps: Sequence = DEFAULT_HORIZON_STEPS) -> dict:
    """Overall metrics: row errors pooled over all chunks of all episodes; rates averaged."""
    errs = [e["err"] for e in episodes if e["n_chunks"] > 0]
    out: dict = {"n_episodes": len(episodes), "n_chunks": int(sum(e["n_chunks"] for e in episodes))}
    if not errs:
        out.update({f"l2_step_{s}": float("nan") for s in horizon_steps})
        out.update(l2_mean=float("nan"), final_position_error=float("nan"), chunk_rate_hz=float("nan"))
        return out
    horizon = min(e.shape[1] for e in errs)
    pooled = np.concatenate([e[:, :horizon] for e in errs])
    for s in horizon_steps:
        k = _step_index(s, horizon)
        out[f"l2_step_{s}"] = _nanmean(pooled[:, k]) if k is not None else float("nan")
    out["l2_mean"] = _nanmean(pooled)
    out["final_position_error"] = _nanmean([e["final_position_error"] for e in episodes])
    out["chunk_rate_hz"] = _nanmean([e["chunk_rate_hz"] for e in episodes])
    return out


def latency_stats(seconds: Sequence[float]) -> dict:
    """{'n', 'p50_ms', 'p99_ms', 'mean_ms', 'max_ms'} of a list of durations in seconds."""
    x = np.asarray(seconds, dtype=np.float64)
    if x.size == 0:
        return {"n": 0, "p50_ms": float("nan"), "p99_ms": float("nan"), "mean_ms": float("nan"),
                "max_ms": float("nan")}  # fmt: skip
    return {
        "n": int(x.size),
        "p50_ms": float(np.percentile(x, 50) * 1e3),
        "p99_ms": float(np.percentile(x, 99) * 1e3),
        "mean_ms": float(x.mean() * 1e3),
        "max_ms": float(x.max() * 1e3),
    }


def json_safe(obj):
    """Recursively converts numpy scalars/arrays and NaN/Inf (-> None) for strict JSON."""
    if isinstance(obj, dict):
        return {str(k): json_safe(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [json_safe(v) for v in obj]
    if isinstance(obj, np.ndarray):
        return json_safe(obj.tolist())
    if isinstance(obj, (np.floating, float)):
        v = float(obj)
        return v if math.isfinite(v) else None
    if isinstance(obj, np.integer):
        return int(obj)
    return obj
