# Borderflow: `make run` (the demo) and `make test` (every test) on a fresh
# Debian machine. Both call scripts/setup first, which installs what is missing
# and says nothing when all is there.
#
# Cargo's target directory lives outside the clone by default, so CI's warm
# runs and fresh clones reuse one build. Override with CARGO_TARGET_DIR.

export CARGO_TARGET_DIR ?= $(HOME)/.cache/borderflow/target
CARGO ?= cargo
WORKERS ?=

.PHONY: setup build run test python-module bench bench-crossing bench-photos clean-data

setup:
	@scripts/setup

build: setup
	$(CARGO) build --bin borderflow

run: build
	$(CARGO) run --quiet --bin borderflow -- $(if $(WORKERS),--workers $(WORKERS)) demo

# The Rust tests, then the Python module's (engine/python/tests, pytest),
# even when a Rust test failed; the target fails if either did. With
# cargo-nextest installed the Rust tests run through it (.config/nextest.toml:
# two at a time across all test binaries, a hung test named and ended), and
# the doc tests, which nextest does not run, through `cargo test --doc`.
test:
	@scripts/setup --tests
	@status=0; \
	if $(CARGO) nextest --version >/dev/null 2>&1; then \
		echo "$(CARGO) nextest run --workspace --no-fail-fast"; \
		$(CARGO) nextest run --workspace --no-fail-fast || status=1; \
		echo "$(CARGO) test --workspace --doc"; \
		$(CARGO) test --workspace --doc || status=1; \
	else \
		echo "$(CARGO) test --workspace --no-fail-fast"; \
		$(CARGO) test --workspace --no-fail-fast || status=1; \
	fi; \
	echo "scripts/python-module && pytest engine/python/tests"; \
	{ scripts/python-module && .local/venv/bin/python -m pytest -q engine/python/tests; } || status=1; \
	exit $$status

# The Python module `borderflow`, built and installed into .local/venv.
python-module: setup
	scripts/python-module

bench: setup
	$(CARGO) bench -p borderflow-benches

# Standing views over the crossing workload against DuckDB and Pathway
# (benches/crossing/README.md); BENCH_ARGS="--rows 100000" for a short run.
bench-crossing: build
	.local/venv/bin/python benches/crossing/run.py $(BENCH_ARGS)

# Plate photos per second against rapidocr on the labelled sets in
# ../shared/data (benches/photos/run.py); BENCH_ARGS="--limit 40" for a short run.
bench-photos: build
	.local/venv/bin/python benches/photos/run.py $(BENCH_ARGS)

clean-data:
	rm -rf data
