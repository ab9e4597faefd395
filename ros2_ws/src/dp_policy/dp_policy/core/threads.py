"""Thread pools of a process that runs torch inference beside numpy work.

numpy's BLAS (OpenBLAS, from the numpy wheel) keeps its own pool of worker threads, which spin for a
while after every call. When a process alternates small numpy work (image resizing, transforms)
with torch inference, those spinning workers hold the cores torch's OpenMP workers need. Measured on
the 2-core development machine (inference p50 of ``python -m dp_eval.evaluate`` over a simulator
bag, 2 torch threads): image Diffusion Policy 113 -> 42 ms per chunk, DP3 19 -> 14 ms, once numpy's
BLAS was single-threaded. The numpy work in these processes is far too small to gain from threads.
"""

from __future__ import annotations

import logging

logger = logging.getLogger(__name__)

_limits = None  # the applied threadpoolctl limit (kept for the life of the process)


def single_threaded_numpy_blas() -> bool:
    """Limit numpy's BLAS to one thread in this process (torch's own pools are untouched).

    Returns:
        True when a BLAS library was found and limited; False without ``threadpoolctl``.
    """
    global _limits
    if _limits is not None:
        return True
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:
        logger.debug("threadpoolctl not installed: numpy's BLAS keeps its default thread count")
        return False
    _limits = threadpool_limits(limits=1, user_api="blas")
    return True
