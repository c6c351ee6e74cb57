# libbackprop: the front door.
#
#   make demo     set up the machine, build the library, run the C and Python examples
#   make check    set up the machine and run every test (Swift, C, ABI, Python)
#
# Other targets: setup, lib, examples, run-examples, tests, test, swift-test, c-tests, abi-check,
# python-tests, clean. `make help` lists them.

SWIFT   ?= swift
PYTHON  ?= python3
CC      ?= cc

# The toolchain lives in /opt/swift on our machines; find it there when it is not on PATH, so
# that `make demo` works in a plain login shell too.
ifeq ($(shell command -v $(SWIFT) 2>/dev/null),)
  ifneq ($(wildcard /opt/swift/usr/bin/swift),)
    export PATH := $(PATH):/opt/swift/usr/bin
  endif
endif

# The steps of `test`, `check` and `demo` depend on each other in order (setup before building,
# pytest last so its summary is the final line). Each step parallelises internally (swift build
# uses every core), so running make's own prerequisites in parallel would gain nothing.
.NOTPARALLEL:

BUILD_DIR    := build
LIB_DIR      := $(BUILD_DIR)/lib
LIB          := $(LIB_DIR)/libbackprop.so
# The library's SONAME: programs linked against it look for this name at run time.
LIB_SONAME   := libbackprop.so.0
ABS_LIB_DIR  := $(abspath $(LIB_DIR))
HEADER       := include/backprop.h

# How a user builds against the library: plain C11, warnings on, and an rpath so the programs
# run from the build tree without LD_LIBRARY_PATH. Tests add -Werror on top.
CFLAGS      ?= -O2 -g
C_STD_FLAGS := -std=c11 -Wall -Wextra -pedantic -Iinclude
LDFLAGS_BP  := -L$(LIB_DIR) -lbackprop -Wl,-rpath,$(ABS_LIB_DIR) -lm

EXAMPLE_SRCS := $(wildcard examples/*.c)
EXAMPLE_BINS := $(patsubst examples/%.c,$(BUILD_DIR)/examples/%,$(EXAMPLE_SRCS))
CTEST_SRCS   := $(wildcard Tests/c/test_*.c)
CTEST_BINS   := $(patsubst Tests/c/%.c,$(BUILD_DIR)/tests/%,$(CTEST_SRCS))

PY_EXAMPLES  := bindings/python/examples/circuit.py bindings/python/examples/xor.py
PY_TESTS     := bindings/python/tests
# The Python package is used from the tree, and told where the freshly built library is.
PY_ENV       := PYTHONPATH=$(abspath bindings/python) BACKPROP_LIBRARY=$(abspath $(LIB))

.PHONY: all help setup lib examples run-examples run-c-examples run-python-examples tests \
        swift-test c-tests abi-check python-tests test check demo clean

all: lib examples

help:
	@echo "make demo          set up, build the library, run the C and Python examples"
	@echo "make check         set up, then run every test (same as: make setup test)"
	@echo "make setup         install system and Python packages (scripts/setup.sh)"
	@echo "make lib           build $(LIB) (and the $(LIB_SONAME) link)"
	@echo "make examples      build examples/*.c into $(BUILD_DIR)/examples/"
	@echo "make run-examples  run the C examples, then the Python examples"
	@echo "make test          Swift tests, C tests, examples, ABI checks, then pytest"
	@echo "make swift-test    only the Swift tests (swift test)"
	@echo "make c-tests       only the C tests in Tests/c"
	@echo "make abi-check     only the header, export and loading checks in Tests/abi"
	@echo "make python-tests  only pytest on $(PY_TESTS)"
	@echo "make clean         remove $(BUILD_DIR)/ and SwiftPM's build products"

# ---------------------------------------------------------------------------------------------
# Setup and the library
# ---------------------------------------------------------------------------------------------

setup:
	PYTHON=$(PYTHON) bash scripts/setup.sh

# Always ask SwiftPM: it knows what changed and does nothing quickly when nothing did. The copy
# keeps SwiftPM's timestamp (cp -p), so examples relink only when the library really changed,
# and goes through a temporary name so a running program never sees a half-written file.
lib:
	$(SWIFT) build -c release --product backprop
	@mkdir -p $(LIB_DIR)
	@bin="$$($(SWIFT) build -c release --show-bin-path)" && \
	  cp -p "$$bin/libbackprop.so" $(LIB).tmp && mv -f $(LIB).tmp $(LIB)
	@ln -sf libbackprop.so $(LIB_DIR)/$(LIB_SONAME)
	@echo "built $(LIB) ($(LIB_SONAME) -> libbackprop.so)"

# Other targets need the file; `make lib` is how it gets there.
$(LIB):
	$(MAKE) --no-print-directory lib

# ---------------------------------------------------------------------------------------------
# Examples
# ---------------------------------------------------------------------------------------------

examples: lib $(EXAMPLE_BINS)

$(BUILD_DIR)/examples/%: examples/%.c $(HEADER) $(LIB)
	@mkdir -p $(dir $@)
	$(CC) $(C_STD_FLAGS) $(CFLAGS) -o $@ $< $(LDFLAGS_BP)

run-examples: run-c-examples run-python-examples

# Every example runs even when one fails; any failure fails the target.
run-c-examples: examples
	@failed=""; for bin in $(EXAMPLE_BINS); do \
	  echo "== $$bin"; ./$$bin || failed="$$failed $$bin"; echo; \
	done; \
	if [ -n "$$failed" ]; then echo "C examples failed:$$failed"; exit 1; fi

run-python-examples: lib
	@failed=""; for script in $(PY_EXAMPLES); do \
	  echo "== $$script"; $(PY_ENV) $(PYTHON) $$script || failed="$$failed $$script"; echo; \
	done; \
	if [ -n "$$failed" ]; then echo "Python examples failed:$$failed"; exit 1; fi

# ---------------------------------------------------------------------------------------------
# Tests
# ---------------------------------------------------------------------------------------------

# The C tests compile like the examples, plus -Werror: they must stay warning-free.
$(BUILD_DIR)/tests/%: Tests/c/%.c Tests/c/check.h $(HEADER) $(LIB)
	@mkdir -p $(dir $@)
	$(CC) $(C_STD_FLAGS) -Werror $(CFLAGS) -o $@ $< $(LDFLAGS_BP)

tests: lib $(CTEST_BINS)

swift-test:
	$(SWIFT) test

# Each test program prints "N passed, M failed" and exits non-zero on any failure. All of them
# run even when one fails, so that one run shows every failure. First, a check that every
# function in the header has bad-input tests.
c-tests: tests
	@failed=""; bash Tests/c/check_coverage.sh $(HEADER) || failed=" check_coverage"; \
	for bin in $(CTEST_BINS); do \
	  echo "== $$bin"; ./$$bin || failed="$$failed $$bin"; \
	done; \
	if [ -n "$$failed" ]; then echo "C tests failed:$$failed"; exit 1; fi

# The header compiles alone as C99, C11 and C++; the exported symbols match it; and the library
# loads without the Swift toolchain.
abi-check: lib
	bash Tests/abi/check_header.sh $(HEADER)
	bash Tests/abi/check_exports.sh $(LIB) $(HEADER)
	bash Tests/abi/check_loading.sh $(LIB)

python-tests: lib
	$(PY_ENV) $(PYTHON) -m pytest $(PY_TESTS)

# pytest runs last, so its summary line closes the output.
test: swift-test lib c-tests run-examples abi-check python-tests

check: setup test

demo: setup lib run-examples

clean:
	rm -rf $(BUILD_DIR)
	-$(SWIFT) package clean
