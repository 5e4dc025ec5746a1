# gam_depth_ros developer commands. Both main targets create or reuse .venv by themselves.
#   make demo   - the main job on built-in data
#   make test   - lint + the whole test suite (what CI runs)
SHELL := /bin/bash
.SHELLFLAGS := -eo pipefail -c
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.gam_depth_ros-deps
REQUIREMENTS := $(wildcard requirements/*.txt)
# pip prints a warning for every package missing from the local mirrors it also searches; hide those.
PIP_QUIET := grep -v "^WARNING: Location" || true

.PHONY: venv demo test lint bench-inference clean

venv: $(STAMP)

$(STAMP): $(REQUIREMENTS)
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	@echo "installing dependencies into $(VENV) (first run takes a few minutes)"
	$(PY) -m pip install -q -r requirements/dev.txt 2>&1 | { $(PIP_QUIET); }
	$(PY) -m pip install -q --no-deps -r requirements/stubs.txt 2>&1 | { $(PIP_QUIET); }
	@# The repository root on the venv's path: the runtime package and training/ import without install.
	$(PY) -c "import site, pathlib; pathlib.Path(site.getsitepackages()[0], 'gam_depth_ros_repo.pth').write_text('$(CURDIR)\n')"
	$(PY) -c "import torch, onnxruntime, rclpy; assert torch.__version__.startswith('2.13.0'), torch.__version__"
	@touch $(STAMP)

demo: venv
	$(PY) scripts/demo.py

lint: venv
	$(PY) -m ruff check .

test: lint
	$(PY) -m pytest -q test

bench-inference: venv
	$(PY) bench/inference.py

clean:
	rm -rf build install log output .pytest_cache .ruff_cache .mypy_cache
