# relusv: `make demo` runs the main job, `make test` runs every test. Both do
# all set-up on a fresh Debian machine (as root): system packages, a .venv,
# the Swift build and the Python package.

SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
PIP := $(VENV)/bin/pip
SWIFT ?= $(shell command -v swift || echo /opt/swift/usr/bin/swift)
APT_PACKAGES := libopenblas-dev liblapacke-dev valgrind chromium fonts-dejavu-core
PY_PACKAGES := numpy scipy pytest scikit-learn matplotlib tqdm jsonschema mpmath pandas
LIB := python/relusv/libReluSVKit.so

.PHONY: demo test setup system-deps venv build install test-swift test-c test-python bench clean

demo: install
	$(VENV)/bin/relusv

test: install test-swift test-c test-python

setup: install

# Debian packages, installed only when one is missing.
system-deps:
	@missing=""; for p in $(APT_PACKAGES); do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then \
		echo "installing system packages:$$missing"; \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing >/dev/null; \
	fi

# The virtual environment with the test and plotting dependencies; torch from
# PyPI (its Linux wheels bring CUDA libraries; relusv uses the CPU only).
$(VENV)/.ready:
	$(PYTHON) -m venv $(VENV)
	$(PIP) install -q --upgrade pip
	$(PIP) install -q $(PY_PACKAGES)
	$(PIP) install -q torch
	touch $@

venv: $(VENV)/.ready

# libReluSVKit.so, self-contained apart from libc and OpenBLAS/LAPACKE.
build: system-deps venv
	cd python && ../$(PY) setup.py -q build_native

install: build venv
	RELUSV_SKIP_SWIFT_BUILD=1 $(PIP) install -q --no-build-isolation -e python

test-swift: system-deps
	$(SWIFT) test 2>&1 | tail -n 40; exit $${PIPESTATUS[0]}

# C programs linked against libReluSVKit through relusv.h, under valgrind.
C_EXAMPLES := gmw_example relu_spectrum_example
test-c: build
	for example in $(C_EXAMPLES); do \
		cc -std=c11 -Wall -Wextra -Werror -o examples/c/$$example examples/c/$$example.c \
			-ISources/CReluSV/include -Lpython/relusv -lReluSVKit -lm -Wl,-rpath,$(CURDIR)/python/relusv && \
		OPENBLAS_NUM_THREADS=1 valgrind -q --error-exitcode=1 --leak-check=full --errors-for-leak-kinds=definite \
			--show-possibly-lost=no examples/c/$$example || exit 1; \
	done

test-python: install
	$(VENV)/bin/pytest -q python/tests

bench: install
	$(PY) bench/gmw.py

clean:
	rm -rf .build python/build $(LIB) $(addprefix examples/c/,$(C_EXAMPLES))
