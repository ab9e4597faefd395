# dp: the two commands are `make demo` (main job) and `make test` (tests). Both set up what is missing.
SHELL := /bin/bash
.SHELLFLAGS := -eo pipefail -c
ENV := source ./env.sh >/dev/null &&
PYTEST_ARGS ?=

.PHONY: setup build test lint bench demo eval compare data train train-sim clean help
TRAIN_CONFIG ?= ros2_ws/src/dp_policy/config/train_simple_dp3.yaml
# simulator task of `make data` / `make train-sim`: reach (default), lift or place
TASK ?= reach
SIM_DATA := data/sim_$(TASK)_train.zarr
# demonstrations per task (lift: 1000, what checkpoints/sim_lift_dp3 was trained on; see its model card)
SIM_EPISODES_lift := 1000
SIM_EPISODES_place := 1000
SIM_EPISODES ?= $(or $(SIM_EPISODES_$(TASK)),200)
SIM_TRAIN_CONFIG := ros2_ws/src/dp_sim/config/train_sim_$(TASK).yaml
# `make compare`: the shipped checkpoints of the task (the blind *_state_only baselines read no points),
# plus the oracle; COMPARE_CL_ARGS go to every dp_sim.closed_loop run (e.g. --real-time-factor 1.0)
COMPARE_CHECKPOINTS_reach := checkpoints/sim_reach_dp3 checkpoints/sim_reach_image_dp checkpoints/sim_reach_state_only
COMPARE_CHECKPOINTS_lift := checkpoints/sim_lift_dp3 checkpoints/sim_lift_state_only
COMPARE_CHECKPOINTS_place := checkpoints/sim_place_dp3 checkpoints/sim_place_state_only
COMPARE_EPISODES ?= 20
COMPARE_OUT ?= out/compare$(if $(filter-out reach,$(TASK)),/$(TASK))

help:  ## list targets
	@grep -E '^[a-z]+:.*##' Makefile | sed 's/:.*##/\t/'

setup:  ## create .venv, install pinned requirements + Debian packages, build ros2_ws (idempotent)
	@bash scripts/setup.sh

build:  ## (re)build the colcon workspace
	@bash scripts/build.sh

test: setup  ## set up if needed, then run lint + all tests
	@$(ENV) python -m pytest -ra $(PYTEST_ARGS)

lint: setup  ## ruff over the whole tree
	@$(ENV) ruff check . && ruff format --check .

bench: setup  ## latency/throughput benchmarks of every stage, with baselines measured in the same run
	@$(ENV) for b in bench/bench_*.py; do echo "=== $$b"; python "$$b" $(BENCH_ARGS); done

demo: setup  ## closed-loop run of the whole pipeline on the embedded default
	@$(ENV) python scripts/demo.py $(DEMO_ARGS)

eval: setup  ## closed-loop success rate of the shipped checkpoint over 50 held-out seeded episodes
	@$(ENV) python -m dp_sim.closed_loop --episodes 50 --seed-start 10000 --out out/eval $(EVAL_ARGS)

compare: setup  ## the task's DP3 (and image DP), the blind baseline and the oracle on the same 20 seeded sim episodes: make compare [TASK=lift|place] (out/compare/)
	@$(ENV) python -m dp_sim.compare $(foreach c,$(COMPARE_CHECKPOINTS_$(TASK)),--checkpoint $(c)) --oracle \
		--episodes $(COMPARE_EPISODES) --out $(COMPARE_OUT) $(COMPARE_ARGS) -- --task $(TASK) $(COMPARE_CL_ARGS)

data: setup  ## simulator demonstrations (200 expert episodes, lift and place 1000, seeds from 0) as DP3 zarr: make data [TASK=lift|place]
	@$(ENV) python -m dp_sim.make_dataset --task $(TASK) --out $(SIM_DATA) --episodes $(SIM_EPISODES) --seed-start 0

train: setup  ## train a policy: make train TRAIN_CONFIG=cfg.yaml TRAIN_ARGS="dataset=... output_dir=..."
	@$(ENV) python -m dp_policy.train --config $(TRAIN_CONFIG) $(TRAIN_ARGS)

train-sim: setup  ## reproduce a shipped simulator checkpoint (data + training, resumable): make train-sim [TASK=lift|place]
	@$(ENV) test -f $(SIM_TRAIN_CONFIG) || { echo "make train-sim: no $(SIM_TRAIN_CONFIG) (TASK=reach, lift or place)" >&2; exit 2; }
	@$(ENV) test -d $(SIM_DATA) || python -m dp_sim.make_dataset --task $(TASK) --out $(SIM_DATA) --episodes $(SIM_EPISODES) --seed-start 0
	@$(ENV) python -m dp_policy.train --config $(SIM_TRAIN_CONFIG) $(TRAIN_ARGS)

clean:  ## remove build outputs (keeps .venv)
	rm -rf ros2_ws/build ros2_ws/install ros2_ws/log
