# Each target makes its own virtual environment in .venv and installs what it needs.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
export LITELLM_LOCAL_MODEL_COST_MAP := True

.PHONY: demo test lint bench clean refenv

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[all]'
	touch $@

demo: $(VENV)/.installed
	$(PY) examples/quickstart.py
	$(PY) examples/fix_code.py
	$(PY) examples/train_prompt.py
	$(PY) examples/greeting_agent.py
	$(PY) examples/hybrid_controller.py

test: $(VENV)/.installed
	$(PY) -m ruff check tracegrad tests examples benchmarks
	$(PY) -m pytest

bench: $(VENV)/.installed
	$(PY) benchmarks/trace_overhead.py
	$(PY) benchmarks/optimizer_step.py
	$(PY) benchmarks/jax_replay.py
	$(PY) benchmarks/parallel_eval.py

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache

# The reference library, for side-by-side benchmarks only (never a dependency).
refenv: benchmarks/.refenv/bin/python
benchmarks/.refenv/bin/python:
	$(PYTHON) -m venv benchmarks/.refenv
	benchmarks/.refenv/bin/python -m pip install --quiet trace-opt
