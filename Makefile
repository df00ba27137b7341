# Two entry points: `make demo` and `make test`. Both bootstrap .venv from nothing.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

# launch, launch_ros, ros2cli as wheels (not on PyPI); installed into .venv when present
ROS2_CLI ?= ../shared/ros2-cli/wheels

# DDS must never leave this machine; each make invocation gets its own domain (10-99)
# unless the caller chose one.
export ROS_AUTOMATIC_DISCOVERY_RANGE := LOCALHOST
ifeq ($(origin ROS_DOMAIN_ID),undefined)
ROS_DOMAIN_ID := $(shell echo $$(( RANDOM % 90 + 10 )))
endif
export ROS_DOMAIN_ID
export PYTHONDONTWRITEBYTECODE := 1

DEMO_OUT ?= demo_out

.PHONY: all venv demo test test-fast lint bench clean

all: test

$(STAMP): requirements-nonros.txt requirements.txt requirements-dev.txt constraints.txt setup.py
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check -r requirements-dev.txt -c constraints.txt
	$(PY) -m pip install --quiet --disable-pip-version-check --no-deps -e .
	if [ -d $(ROS2_CLI) ]; then \
	  $(PY) -m pip install --quiet --disable-pip-version-check --no-deps $(ROS2_CLI)/*.whl; fi
	touch $(STAMP)

venv: $(STAMP)

demo: $(STAMP)
	$(VENV)/bin/evif demo --out $(DEMO_OUT)

# everything: lint, layer contracts, unit tests, then the integration tests (DDS, launch,
# colcon, the CLI in subprocesses)
test: lint
	@echo "ROS_DOMAIN_ID=$(ROS_DOMAIN_ID)"
	$(PY) -m pytest -q test/unit test/integration

# the unit tests alone (no DDS, no subprocess graphs): seconds, for every change
test-fast: $(STAMP)
	$(PY) -m pytest -q test/unit -m "not slow"

lint: $(STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/lint-imports --no-cache

bench: $(STAMP)
	$(PY) scripts/bench_voxel.py
	$(PY) scripts/bench_sim.py

clean:
	rm -rf $(VENV) $(DEMO_OUT) build install log *.egg-info
