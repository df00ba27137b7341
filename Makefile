# Two entry points: `make demo` and `make test`. Both bootstrap .venv from nothing.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

# DDS must never leave this machine; each make invocation gets its own domain.
export ROS_AUTOMATIC_DISCOVERY_RANGE := LOCALHOST
export ROS_DOMAIN_ID ?= 57
export PYTHONDONTWRITEBYTECODE := 1

DEMO_OUT ?= demo_out

.PHONY: all venv demo test bench clean

all: test

$(STAMP): requirements.txt requirements-dev.txt constraints.txt setup.py
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check -r requirements-dev.txt -c constraints.txt
	$(PY) -m pip install --quiet --disable-pip-version-check --no-deps -e .
	touch $(STAMP)

venv: $(STAMP)

demo: $(STAMP)
	$(VENV)/bin/evif demo --out $(DEMO_OUT)

test: $(STAMP)
	$(PY) -m pytest -q test

bench: $(STAMP)
	$(PY) scripts/bench_voxel.py
	$(PY) scripts/bench_sim.py

clean:
	rm -rf $(VENV) $(DEMO_OUT) build *.egg-info
