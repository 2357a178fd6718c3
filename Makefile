# ravens — two commands for a fresh machine: `make demo` and `make test`.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: test check lint typecheck unit demo simulate bench soak clean screenshots

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[test,fast]'
	touch $(STAMP)

test: $(STAMP) lint typecheck unit

# The fast lane while working: lint, types, the core's tests (one seed per
# simulated property instead of thirty) and the tests that build nodes in
# process (tests/parallel.py CHECK, in three runs). `make test` is the whole
# suite, and what CI runs.
check: $(STAMP) lint typecheck
	$(BIN)/python -m tests.parallel --check

lint: $(STAMP)
	$(BIN)/ruff check consensus watchers notify tests
	$(BIN)/ruff format --check consensus watchers notify tests

typecheck: $(STAMP)
	$(BIN)/mypy

# Twelve pytest runs side by side (tests/parallel.py: the network scenarios
# in six lanes on their own address plans, the simulator's seeds in two,
# the real-process tests that wait on real time in two, the real processes
# that compute, then everything else): most network tests wait on real
# time. The run fails if a test ran in no lane or in two. One run alone:
# $(BIN)/pytest tests/unit
unit: $(STAMP)
	$(BIN)/python -m tests.parallel

simulate: $(STAMP)
	$(BIN)/ravens simulate --days 7 --targets 100 --seed 1 \
		--faults partition,isolation,path,flap,crash,skew,ntfy

# Every figure of BENCHMARKS.md (about 35 minutes): probe throughput against
# the blackbox exporter, the schedule at 1,000 and 10,000 targets, sync
# catch-up, storage, the API under load, detection to notification; then the
# simulator's speed. Writes bench-figures.md. BENCH_ARGS=--quick: about 5 minutes.
bench: $(STAMP)
	$(BIN)/python -m tests.bench $(BENCH_ARGS) --write bench-figures.md --json bench-figures.json
	$(BIN)/ravens simulate --days 7 --targets 100 --seed 1 \
		--faults partition,isolation,path,flap,crash,skew,ntfy | grep -E '^(checks|sim_seconds|wall)'

# Both nodes on their own networks (needs root and iproute2), 300 targets,
# outages at random and faults throughout; prints what was caught and missed.
# A short version runs in `make test`. SOAK_MINUTES=5 for a quick look.
SOAK_MINUTES ?= 30
soak: $(STAMP)
	RAVENS_TEST_NET=10.79 $(BIN)/python -m tests.network.soak --minutes $(SOAK_MINUTES) --targets 300

demo: $(STAMP)
	$(BIN)/ravens demo

# The README's pictures: a pair with 90 days of history seeded through each
# node's storage, photographed in Chromium (tests/screenshots.py).
screenshots: $(STAMP)
	$(BIN)/python -m tests.screenshots --out docs

clean:
	rm -rf $(VENV) .mypy_cache .pytest_cache .ruff_cache .hypothesis
