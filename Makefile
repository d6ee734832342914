# Set-up and checks. Every target creates .venv itself; installs are pinned by constraints.txt
# (torch==2.13.0 named explicitly: an unpinned torch pulls a multi-GB CUDA build).
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: venv demo serve test lint bench build-demo-model clean screenshots

$(STAMP): pyproject.toml constraints.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade "pip>=24"
	$(BIN)/python -m pip install -q -c constraints.txt torch==2.13.0 -e ".[dev,postgres]"
	touch $(STAMP)

venv: $(STAMP)

demo: $(STAMP)
	$(BIN)/verl-studio serve

test: $(STAMP)
	bash scripts/test.sh

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

bench: $(STAMP)
	for b in bench/bench_*.py; do OMP_NUM_THREADS=1 $(BIN)/python $$b --quick || exit 1; done

build-demo-model: $(STAMP)
	$(BIN)/verl-studio build-demo-model

clean:
	rm -rf $(VENV) build *.egg-info test-artifacts

screenshots: $(STAMP)
	bash scripts/screenshots.sh
