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

# Figures only (no asserts). bench_ask: warm qa ask p50/p95 with its stage breakdown and the seed set's EM/F1
# (answer cache off). bench_http: POST /ask over loopback at 1, 8 and 32 clients (p50/p95, requests/s), the 120
# distinct seed questions, answer cache off (QA_ANSWER_CACHE_SIZE=0: the pipeline's figures, not the cache's),
# seeds/ served from a throw-away index (index/ untouched). BENCH_REQUESTS per client level.
BENCH_REQUESTS ?= 96
bench: setup
	$(BIN)/python bench/bench_ask.py --rounds 1
	QA_ANSWER_CACHE_SIZE=0 $(BIN)/python bench/bench_http.py --seed-questions --temp-index \
		--requests $(BENCH_REQUESTS) --concurrency 1 8 32
