# ravens — two commands for a fresh machine: `make demo` and `make test`.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: test lint typecheck unit demo simulate bench clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[test]'
	touch $(STAMP)

test: $(STAMP) lint typecheck unit

lint: $(STAMP)
	$(BIN)/ruff check consensus watchers notify tests
	$(BIN)/ruff format --check consensus watchers notify tests

typecheck: $(STAMP)
	$(BIN)/mypy

unit: $(STAMP)
	$(BIN)/pytest

simulate: $(STAMP)
	$(BIN)/ravens simulate --days 7 --targets 100 --seed 1 \
		--faults partition,isolation,path,flap,crash,skew,ntfy

# The simulator's speed: a simulated week of 100 targets on two nodes, every fault on.
bench: $(STAMP)
	@echo "python $$($(BIN)/python -c 'import platform; print(platform.python_version())'), $$(nproc) cores"
	$(BIN)/ravens simulate --days 7 --targets 100 --seed 1 \
		--faults partition,isolation,path,flap,crash,skew,ntfy | grep -E '^(checks|sim_seconds|wall)'

demo: $(STAMP)
	$(BIN)/ravens demo

clean:
	rm -rf $(VENV) .mypy_cache .pytest_cache .ruff_cache .hypothesis
