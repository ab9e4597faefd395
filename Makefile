# dp: the two commands are `make demo` (main job) and `make test` (tests). Both set up what is missing.
SHELL := /bin/bash
.SHELLFLAGS := -eo pipefail -c
ENV := source ./env.sh >/dev/null &&
PYTEST_ARGS ?=

.PHONY: setup build test lint bench demo train clean help

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

clean:  ## remove build outputs (keeps .venv)
	rm -rf ros2_ws/build ros2_ws/install ros2_ws/log
