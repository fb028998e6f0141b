# Borderflow: `make run` (the demo) and `make test` (every test) on a fresh
# Debian machine. Both call scripts/setup first, which installs what is missing
# and says nothing when all is there.
#
# Cargo's target directory lives outside the clone by default, so CI's warm
# runs and fresh clones reuse one build. Override with CARGO_TARGET_DIR.

export CARGO_TARGET_DIR ?= $(HOME)/.cache/borderflow/target
CARGO ?= cargo
WORKERS ?=

.PHONY: setup build run test bench bench-crossing clean-data

setup:
	@scripts/setup

build: setup
	$(CARGO) build --bin borderflow

run: build
	$(CARGO) run --quiet --bin borderflow -- $(if $(WORKERS),--workers $(WORKERS)) demo

test: setup
	$(CARGO) test --workspace --no-fail-fast

bench: setup
	$(CARGO) bench -p borderflow-benches

# Standing views over the crossing workload against DuckDB and Pathway
# (benches/crossing/README.md); BENCH_ARGS="--rows 100000" for a short run.
bench-crossing: build
	.local/venv/bin/python benches/crossing/run.py $(BENCH_ARGS)

clean-data:
	rm -rf data
