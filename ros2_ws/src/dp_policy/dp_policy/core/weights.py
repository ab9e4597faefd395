"""Whether a state_dict read from a file fits a module: the same keys, each with the same shape."""

from __future__ import annotations

from collections.abc import Mapping

import torch


def state_dict_mismatch(
    expected: Mapping[str, torch.Tensor], state: Mapping[str, torch.Tensor]
) -> tuple[list[str], list[str], tuple[str, tuple, tuple] | None]:
    """Compare ``state`` (read from a file) with ``expected`` (the module's own state_dict).

    Returns:
        (missing keys, unexpected keys, first shape mismatch as (key, shape in state, expected
        shape) or None); shapes are compared only when the keys match. All empty / None: it fits.
    """
    missing = sorted(set(expected) - set(state))
    unexpected = sorted(set(state) - set(expected))
    if missing or unexpected:
        return missing, unexpected, None
    for k, v in expected.items():
        if tuple(state[k].shape) != tuple(v.shape):
            return [], [], (k, tuple(state[k].shape), tuple(v.shape))
    return [], [], None


def head(names: list[str], n: int) -> str:
    """The first ``n`` names, with ``...`` when there are more (for error messages)."""
    return f"{names[:n]}{'...' if len(names) > n else ''}"
