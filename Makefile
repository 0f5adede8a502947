# Two commands on a fresh machine:
#   make run    set up, build the index from seeds/ on first run, serve http://127.0.0.1:8000
#   make test   set up and run the whole test suite (what .ci/run calls)
PY ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
export HF_HUB_OFFLINE := 1
export TRANSFORMERS_OFFLINE := 1

.PHONY: setup run test browser-deps bench eval index

$(BIN)/python:
	$(PY) -m venv $(VENV)

# torch first (the CPU build from the local file), or pip pulls several GB of CUDA packages.
$(VENV)/.installed: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q torch==2.13.0
	$(BIN)/python -m pip install -q -e '.[test,ray]'
	touch $@

setup: $(VENV)/.installed

# Debian's Chromium for the browser test (playwright cannot download browsers here).
browser-deps:
	@test -x /usr/bin/chromium || (apt-get update -qq && apt-get install -y -qq chromium >/dev/null)

run: setup
	$(BIN)/qa serve

index: setup
	$(BIN)/qa index

test: setup browser-deps
	$(BIN)/python -m pytest

eval: setup
	$(BIN)/qa eval

# Figures only (no asserts): warm qa ask latency with its stage breakdown and the seed set's EM/F1, then /ask
# over HTTP at 1 and 8 clients (answer cache on: repeated questions are hits; QA_ANSWER_CACHE_SIZE=0 to time the pipeline).
bench: setup
	$(BIN)/python bench/bench_ask.py --rounds 1
	$(BIN)/python bench/bench_http.py --requests 40
