# Every target sets itself up in ./.venv, idempotently.
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
PIP    := $(PY) -m pip
# The CPU build of PyTorch. GPU users override it, e.g.
#   make install TORCH_INSTALL="torch --index-url https://download.pytorch.org/whl/cu126"
TORCH_INSTALL ?= torch==2.13.0
SHARED_DATA := $(abspath ../shared/datasets)
export DLCC_DATA_DIR ?= $(if $(wildcard $(SHARED_DATA)),$(SHARED_DATA),)

.PHONY: install demo test lint format bench bench-serve browser clean

$(VENV)/.installed: pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PIP) install --quiet --upgrade pip
	$(PIP) install --quiet $(TORCH_INSTALL)
	$(PIP) install --quiet -e ".[dev,torch,notebook,docs]"
	touch $@

install: $(VENV)/.installed

# Benchmark peers (PyTorch Lightning); the tests do not need them.
$(VENV)/.bench-installed: $(VENV)/.installed
	$(PIP) install --quiet -e ".[dev,torch,notebook,docs,bench]"
	touch $@

demo: install
	rm -rf runs/demo  # a finished run is never overwritten: start afresh
	$(VENV)/bin/dlcc numpy train --model cnn --dataset digits --out runs/demo

lint: install
	$(VENV)/bin/ruff check src tests benchmarks
	$(VENV)/bin/ruff format --check src tests benchmarks

format: install
	$(VENV)/bin/ruff format src tests benchmarks
	$(VENV)/bin/ruff check --fix src tests benchmarks

# Chromium for the web page's browser test: installed where apt-get can (Debian, as root);
# elsewhere the test skips and says why.
browser:
	@command -v chromium >/dev/null || (command -v apt-get >/dev/null && [ "$$(id -u)" = 0 ] \
		&& apt-get update -qq && apt-get install -y -qq chromium >/dev/null) \
		|| echo "no chromium: the browser test will skip"

test: install lint browser
	$(PY) -m pytest -n 2

bench: $(VENV)/.bench-installed
	$(PY) benchmarks/bench_numpy_nn.py --json benchmarks/results/numpy_nn.json
	$(PY) benchmarks/bench_training.py --ddp --json benchmarks/results/training.json
	$(PY) benchmarks/bench_segment_predict.py --json benchmarks/results/segment_predict.json

# The server's load test (real uvicorn on loopback): concurrency 1, 8, 32, batching on/off.
bench-serve: install
	$(PY) benchmarks/bench_serve.py --json benchmarks/results/serve.json

clean:
	rm -rf $(VENV) runs .pytest_cache .ruff_cache
