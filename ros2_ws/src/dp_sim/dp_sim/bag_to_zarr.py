"""CLI alias of ``python -m dp_eval.bag_to_zarr`` (same options) with the simulator's perception defaults.

Real-robot conversion lives in dp_eval; this name keeps working for the simulator's bags
(``dp_sim.record_demos``): --perception-config defaults to config/perception_sim.yaml and
unspecified PerceptionConfig fields to ``SIM_PERCEPTION_DEFAULTS``. ``--help`` lists the options.
"""

from __future__ import annotations

import sys

from dp_eval.bag_to_zarr import main as _main
from dp_sim.core.dataset import SIM_PERCEPTION_DEFAULTS
from dp_sim.make_dataset import DEFAULT_PERCEPTION_YAML


def main(argv: list[str] | None = None) -> int:
    """Entry point (console script `bag_to_zarr` of dp_sim)."""
    return _main(
        argv, perception_config=str(DEFAULT_PERCEPTION_YAML), perception_defaults=SIM_PERCEPTION_DEFAULTS
    )


if __name__ == "__main__":
    sys.exit(main())
