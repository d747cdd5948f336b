# Every target creates .venv on first use. torch goes in first: an already importable torch (a GPU
# build, say) is kept through --system-site-packages; otherwise the pinned CPU wheel is installed.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-dev

.PHONY: train test bench clean

$(STAMP): setup.py
	@if $(PYTHON) -c "import torch" 2>/dev/null; then \
		$(PYTHON) -m venv --system-site-packages $(VENV); \
	else \
		$(PYTHON) -m venv $(VENV); \
	fi
	@$(PY) -c "import torch" 2>/dev/null || $(PY) -m pip install -q torch==2.13.0
	$(PY) -m pip install -q -e ".[dev,ray]"
	@touch $(STAMP)

train: $(STAMP)
	$(PY) -m a3c.train

test: $(STAMP)
	$(PY) -m pytest -q tests

# The quick presets of the three studies; each writes its tables, CSVs and charts under benchmarks/results/.
bench: $(STAMP)
	$(PY) -m pip install -q -e ".[dev,bench]" || echo "optional bench extras unavailable; comparisons that need them are skipped"
	$(PY) -m benchmarks.throughput --quick
	$(PY) -m benchmarks.thread_scaling --family async --seeds 1
	$(PY) -m benchmarks.thread_scaling --family replay --seeds 1
	$(PY) -m benchmarks.compare --preset quick
	$(PY) -m benchmarks.sequence_replay

clean:
	rm -rf $(VENV) runs build *.egg-info
