# gam_depth_ros developer commands. Both main targets create or reuse .venv by themselves.
#   make demo   - the main job on built-in data
#   make test   - lint + the whole test suite + the oldest-versions stage (what CI runs)
#   make test-oldest - the runtime tests on Python 3.10, numpy 1.21.5, OpenCV 4.5.4 (.venv-oldest)
SHELL := /bin/bash
.SHELLFLAGS := -eo pipefail -c
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.gam_depth_ros-deps
# The package's console scripts (gam-depth-bag-eval, gam-depth-export, ...) in $(VENV)/bin.
SCRIPTS_STAMP := $(VENV)/.gam_depth_ros-scripts
REQUIREMENTS := $(filter-out requirements/oldest.txt,$(wildcard requirements/*.txt))
# pip prints a warning for every package missing from the local mirrors it also searches; hide those.
PIP_QUIET := grep -v "^WARNING: Location" || true

# The oldest-versions stage: ROS 2 Humble's Python with Ubuntu 22.04's numpy and OpenCV (requirements/oldest.txt).
OLDEST_PYTHON ?= $(firstword $(wildcard $(HOME)/.pyenv/versions/3.10.*/bin/python) $(shell command -v python3.10))
OLDEST_VENV ?= .venv-oldest
OLDEST_PY := $(OLDEST_VENV)/bin/python
OLDEST_STAMP := $(OLDEST_VENV)/.gam_depth_ros-deps
# The small test model, exported by the main venv's torch (the oldest venv has none, like a robot).
OLDEST_MODEL := build/test-oldest/small_model
# The runtime tests: codec, pre/post-processing, ONNX Runtime backend, floor scale, point cloud, node
# modules, the node over DDS, bag evaluation, launch description, demo. Tests needing torch skip there.
OLDEST_TESTS := test/test_processing.py test/test_node_modules.py test/test_backends.py test/test_floor_scale.py \
	test/test_floor_scale_demo.py test/test_demo_model.py test/test_bag_eval.py test/test_bag_eval_floor.py \
	test/test_node.py test/test_node_faults.py test/test_node_floor_scale.py test/test_node_fuzz.py \
	test/test_node_overload.py test/test_synthetic_generator.py test/test_launch_file.py test/test_demo.py \
	test/test_hostile_files.py test/test_dds_profile.py test/test_lifecycle_node.py test/test_node_time.py \
	test/test_node_camera_changes.py

.PHONY: venv venv-oldest demo test test-oldest lint bench-inference clean

venv: $(STAMP) $(SCRIPTS_STAMP)

$(STAMP): $(REQUIREMENTS)
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	@echo "installing dependencies into $(VENV) (first run takes a few minutes)"
	$(PY) -m pip install -q -r requirements/dev.txt 2>&1 | { $(PIP_QUIET); }
	$(PY) -m pip install -q --no-deps -r requirements/stubs.txt 2>&1 | { $(PIP_QUIET); }
	@# The repository root on the venv's path: the runtime package and training/ import without install.
	$(PY) -c "import site, pathlib; pathlib.Path(site.getsitepackages()[0], 'gam_depth_ros_repo.pth').write_text('$(CURDIR)\n')"
	$(PY) -c "import torch, onnxruntime, rclpy; assert torch.__version__.startswith('2.13.0'), torch.__version__"
	@touch $(STAMP)

# An editable install of this package without dependencies (requirements/ has them) puts the
# console_scripts of setup.py into $(VENV)/bin, running the repository's code; share/ data files
# are not copied in editable mode. Redone when setup.py or setup.cfg change.
$(SCRIPTS_STAMP): $(STAMP) setup.py setup.cfg
	$(PY) -m pip install -q --no-deps --no-build-isolation -e . 2>&1 | { $(PIP_QUIET); }
	$(PY) -c "import importlib.metadata as m, pathlib, sys; names = [e.name for e in \
		m.distribution('gam_depth_ros').entry_points if e.group == 'console_scripts']; missing = [n for n in \
		names if not pathlib.Path(sys.prefix, 'bin', n).is_file()]; assert names and not missing, missing"
	@touch $(SCRIPTS_STAMP)

venv-oldest: $(OLDEST_STAMP)

$(OLDEST_STAMP): requirements/oldest.txt
	@test -n "$(OLDEST_PYTHON)" || { echo "test-oldest needs Python 3.10 (python3.10 or pyenv 3.10.x; or set OLDEST_PYTHON)"; exit 1; }
	@test -x $(OLDEST_PY) || $(OLDEST_PYTHON) -m venv $(OLDEST_VENV)
	@echo "installing the oldest supported versions into $(OLDEST_VENV)"
	@# Wheels only, so a pin without a wheel fails instead of building; empy has no wheel (pure Python).
	$(OLDEST_PY) -m pip install -q --only-binary=:all: --no-binary=empy -r requirements/oldest.txt 2>&1 \
		| { grep -v "^WARNING: Location\|DEPRECATION" || true; }
	$(OLDEST_PY) -c "import site, pathlib; pathlib.Path(site.getsitepackages()[0], 'gam_depth_ros_repo.pth').write_text('$(CURDIR)\n')"
	$(OLDEST_PY) -c "import sys, numpy, cv2, PIL, onnxruntime, rclpy; v = (sys.version_info[:2], numpy.__version__, \
		cv2.__version__, PIL.__version__); assert v == ((3, 10), '1.21.5', '4.5.4', '9.0.1'), v"
	@touch $(OLDEST_STAMP)

demo: venv
	$(PY) scripts/demo.py

lint: venv
	$(PY) -m ruff check .

test: lint
	$(PY) -m pytest -q test
	@$(MAKE) --no-print-directory test-oldest

test-oldest: venv venv-oldest
	$(PY) test/model_fixtures.py $(OLDEST_MODEL)
	GAM_TEST_SMALL_MODEL_DIR=$(CURDIR)/$(OLDEST_MODEL) $(OLDEST_PY) -m pytest -q -rs $(OLDEST_TESTS)

bench-inference: venv
	$(PY) bench/inference.py

clean:
	rm -rf build install log output .pytest_cache .ruff_cache .mypy_cache
