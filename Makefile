# libbackprop: the front door.
#
#   make demo     set up the machine, build the library, run the C and Python examples
#   make check    set up the machine and run every test (Swift, C, ABI, Python)
#
# Other targets: setup, lib, examples, run-examples, tests, test, swift-test, c-tests, abi-check,
# docs-check, install-check, python-tests, install, uninstall, abi-update, clean. `make help`
# lists them.

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
ABS_LIB_DIR  := $(abspath $(LIB_DIR))
HEADER       := include/backprop.h

# The version comes from the header's BP_VERSION_* macros, the one place it is written down.
# The SONAME, the name programs linked against the library look for at run time, carries the
# major version: within one major version the ABI only grows (Tests/abi checks that).
header_macro  = $(shell sed -n 's/^.define $(1)  *\([0-9][0-9]*\).*/\1/p' $(HEADER))
VERSION_MAJOR := $(call header_macro,BP_VERSION_MAJOR)
VERSION_MINOR := $(call header_macro,BP_VERSION_MINOR)
VERSION_PATCH := $(call header_macro,BP_VERSION_PATCH)
VERSION      := $(VERSION_MAJOR).$(VERSION_MINOR).$(VERSION_PATCH)
LIB_SONAME   := libbackprop.so.$(VERSION_MAJOR)
LIB_REALNAME := libbackprop.so.$(VERSION)

# How a user builds against the library: plain C11, warnings on, and an rpath so the programs
# run from the build tree without LD_LIBRARY_PATH. Tests add -Werror on top.
CFLAGS      ?= -O2 -g
C_STD_FLAGS := -std=c11 -Wall -Wextra -pedantic -Iinclude
LDFLAGS_BP  := -L$(LIB_DIR) -lbackprop -Wl,-rpath,$(ABS_LIB_DIR) -lm

EXAMPLE_SRCS := $(wildcard examples/*.c)
EXAMPLE_BINS := $(patsubst examples/%.c,$(BUILD_DIR)/examples/%,$(EXAMPLE_SRCS))
CTEST_SRCS   := $(wildcard Tests/c/test_*.c)
CTEST_BINS   := $(patsubst Tests/c/%.c,$(BUILD_DIR)/tests/%,$(CTEST_SRCS))

PY_EXAMPLES  := bindings/python/examples/circuit.py bindings/python/examples/xor.py \
                bindings/python/examples/digits.py
PY_TESTS     := bindings/python/tests
# The Python package is used from the tree, and told where the freshly built library is.
PY_ENV       := PYTHONPATH=$(abspath bindings/python) BACKPROP_LIBRARY=$(abspath $(LIB))

.PHONY: all help setup lib examples run-examples run-c-examples run-python-examples tests \
        swift-test c-tests abi-check docs-check install-check python-tests test check demo \
        install uninstall abi-update clean

all: lib examples

help:
	@echo "make demo          set up, build the library, run the C and Python examples"
	@echo "make check         set up, then run every test (same as: make setup test)"
	@echo "make setup         install system and Python packages (scripts/setup.sh)"
	@echo "make lib           build $(LIB) (and the $(LIB_SONAME) link)"
	@echo "make examples      build examples/*.c into $(BUILD_DIR)/examples/"
	@echo "make run-examples  run the C examples, then the Python examples"
	@echo "make test          Swift and C tests, examples, ABI, docs and install checks, pytest"
	@echo "make swift-test    only the Swift tests (swift test)"
	@echo "make c-tests       only the C tests in Tests/c"
	@echo "make abi-check     only the header, ABI record, version and loading checks (Tests/abi)"
	@echo "make docs-check    only the documentation checks (header comments, docs/*.md)"
	@echo "make install-check only the install test (pkg-config and CMake users, uninstall)"
	@echo "make python-tests  only pytest on $(PY_TESTS)"
	@echo "make install       install the library, header, pkg-config and CMake files into PREFIX"
	@echo "                   (/usr/local; also DESTDIR, LIBDIR, INCLUDEDIR, PKGCONFIGDIR, CMAKEDIR)"
	@echo "make uninstall     remove exactly what make install put there (same variables)"
	@echo "make abi-update    record the header's new functions, types and constants in Tests/abi/"
	@echo "make clean         remove $(BUILD_DIR)/ and SwiftPM's build products"
	@echo "make bench         benchmarks against numpy, PyTorch, JAX; writes benchmarks/RESULTS.md"
	@echo "make bench-baselines  make benchmarks/.venv with numpy, PyTorch and JAX for make bench"
	@echo "make bench-smoke   a short run of the benchmark harness, numpy only (part of make test)"
	@echo "make reliability   asan-test, valgrind-test and fuzz-smoke (part of make test)"
	@echo "make asan-test     the C tests against an AddressSanitizer build, with ASan and UBSan"
	@echo "make valgrind-test the C tests under valgrind: no definite leaks, no memory errors"
	@echo "make fuzz-smoke    each libFuzzer harness for FUZZ_SMOKE_SECONDS (20) seconds"
	@echo "make fuzz          each libFuzzer harness for FUZZ_SECONDS (300) seconds"
	@echo "make fuzz-api      the Python API-sequence fuzzer with FUZZ_EXAMPLES (2000) examples"

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
# Install (README.md, "Installing")
# ---------------------------------------------------------------------------------------------

# Where `make install` puts things. Build first (`make lib`), then install, as root if PREFIX
# needs it: install only copies the library that is there. DESTDIR stages a tree for packaging
# (files go to $(DESTDIR)$(PREFIX)/..., and the files written refer to $(PREFIX)).
PREFIX       ?= /usr/local
LIBDIR       ?= $(PREFIX)/lib
INCLUDEDIR   ?= $(PREFIX)/include
PKGCONFIGDIR ?= $(LIBDIR)/pkgconfig
CMAKEDIR     ?= $(LIBDIR)/cmake/backprop
DESTDIR      ?=
INSTALL      ?= install

# Everything `make install` writes, and so everything `make uninstall` removes: the library
# under its full version, its SONAME link and the development link -lbackprop finds, the
# header, the pkg-config file and the CMake package files.
INSTALLED_FILES = $(LIBDIR)/$(LIB_REALNAME) $(LIBDIR)/$(LIB_SONAME) $(LIBDIR)/libbackprop.so \
                  $(INCLUDEDIR)/backprop.h $(PKGCONFIGDIR)/backprop.pc \
                  $(CMAKEDIR)/backpropConfig.cmake $(CMAKEDIR)/backpropConfigVersion.cmake

# The templates in pkgconfig/ and cmake/ are filled in with these. The CMake files find the
# prefix relative to their own directory (so the tree stays relocatable); the pkg-config file
# writes libdir and includedir relative to ${prefix} when they are below it.
relative_path   = $(shell realpath -s -m --relative-to='$(1)' '$(2)')
INSTALL_SUBST = sed \
    -e 's|@VERSION@|$(VERSION)|g' \
    -e 's|@VERSION_MAJOR@|$(VERSION_MAJOR)|g' \
    -e 's|@LIB_REALNAME@|$(LIB_REALNAME)|g' \
    -e 's|@LIB_SONAME@|$(LIB_SONAME)|g' \
    -e 's|@PREFIX@|$(PREFIX)|g' \
    -e 's|@PC_LIBDIR@|$(patsubst $(PREFIX)/%,$${prefix}/%,$(LIBDIR))|g' \
    -e 's|@PC_INCLUDEDIR@|$(patsubst $(PREFIX)/%,$${prefix}/%,$(INCLUDEDIR))|g' \
    -e 's|@CMAKEDIR_TO_PREFIX@|$(call relative_path,$(CMAKEDIR),$(PREFIX))|g' \
    -e 's|@LIBDIR_FROM_PREFIX@|$(call relative_path,$(PREFIX),$(LIBDIR))|g' \
    -e 's|@INCLUDEDIR_FROM_PREFIX@|$(call relative_path,$(PREFIX),$(INCLUDEDIR))|g'
INSTALL_STAGE   := $(BUILD_DIR)/install

# The library's SONAME must be the one the header's major version gives, or the links below
# would name a file the dynamic loader never asks for.
install: $(LIB)
	@soname="$$(readelf -d $(LIB) | sed -n 's/.*(SONAME).*\[\(.*\)\].*/\1/p')"; \
	if [ "$$soname" != "$(LIB_SONAME)" ]; then \
	  echo "install: $(LIB) has SONAME '$$soname'; the header's $(VERSION) says $(LIB_SONAME)"; \
	  exit 1; \
	fi
	@mkdir -p $(INSTALL_STAGE)
	@echo "filling in pkgconfig/backprop.pc.in and cmake/*.cmake.in for $(PREFIX)"
	@$(INSTALL_SUBST) pkgconfig/backprop.pc.in >$(INSTALL_STAGE)/backprop.pc
	@for file in backpropConfig backpropConfigVersion; do \
	  $(INSTALL_SUBST) cmake/$$file.cmake.in >$(INSTALL_STAGE)/$$file.cmake || exit 1; \
	done
	$(INSTALL) -d '$(DESTDIR)$(LIBDIR)' '$(DESTDIR)$(INCLUDEDIR)' '$(DESTDIR)$(PKGCONFIGDIR)' \
	  '$(DESTDIR)$(CMAKEDIR)'
	$(INSTALL) -m 755 $(LIB) '$(DESTDIR)$(LIBDIR)/$(LIB_REALNAME)'
	ln -sfn $(LIB_REALNAME) '$(DESTDIR)$(LIBDIR)/$(LIB_SONAME)'
	ln -sfn $(LIB_SONAME) '$(DESTDIR)$(LIBDIR)/libbackprop.so'
	$(INSTALL) -m 644 $(HEADER) '$(DESTDIR)$(INCLUDEDIR)/backprop.h'
	$(INSTALL) -m 644 $(INSTALL_STAGE)/backprop.pc '$(DESTDIR)$(PKGCONFIGDIR)/backprop.pc'
	$(INSTALL) -m 644 $(INSTALL_STAGE)/backpropConfig.cmake \
	  $(INSTALL_STAGE)/backpropConfigVersion.cmake '$(DESTDIR)$(CMAKEDIR)/'
	@echo "installed libbackprop $(VERSION) into $(DESTDIR)$(PREFIX)" \
	  "(in a system library directory, run ldconfig once so programs find $(LIB_SONAME))"

# Removes the files listed above, and the CMake package directory if that leaves it empty;
# the shared directories (lib, include, pkgconfig) stay.
uninstall:
	rm -f $(foreach file,$(INSTALLED_FILES),'$(DESTDIR)$(file)')
	@if [ -d '$(DESTDIR)$(CMAKEDIR)' ]; then rmdir '$(DESTDIR)$(CMAKEDIR)' 2>/dev/null || \
	  echo "uninstall: kept $(DESTDIR)$(CMAKEDIR): it holds files make install did not write"; fi

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

# The header compiles alone with gcc and clang as C99, C11, C17, C++11 and C++17; the exported
# symbols are the header's functions; the functions and type layouts match the committed record
# (Tests/abi/symbols.txt and layout.txt: additions go through `make abi-update`, removals
# fail); the version macros, bp_version() and the SONAME agree; and the library loads without
# the Swift toolchain. Every check runs even when one fails.
ABI_CHECKS = "bash Tests/abi/check_header.sh $(HEADER)" \
             "bash Tests/abi/check_exports.sh $(LIB) $(HEADER)" \
             "$(PYTHON) Tests/abi/abi.py check --header $(HEADER) --lib $(LIB)" \
             "bash Tests/abi/check_version.sh $(LIB) $(HEADER)" \
             "bash Tests/abi/check_loading.sh $(LIB)"

# Every declaration in the header has a comment; docs/OPS.md lists every op of the header; and
# the C programs in docs/C-API.md compile and print what the guide says.
DOCS_CHECKS = "$(PYTHON) Tests/abi/check_comments.py $(HEADER)" \
              "$(PYTHON) Tests/docs/check_ops.py $(HEADER) docs/OPS.md" \
              "$(PYTHON) Tests/docs/check_snippets.py --lib $(LIB) docs/C-API.md"

# Runs each quoted command of $(1), all of them, and fails at the end if any failed.
run_all = @failed=""; for check in $(1); do \
	  echo "== $$check"; \
	  CC="$(CC)" PYTHON="$(PYTHON)" sh -c "$$check" || failed="$$failed\n    $$check"; \
	done; \
	if [ -n "$$failed" ]; then printf "$(2) failed:$$failed\n"; exit 1; fi

abi-check: lib
	$(call run_all,$(ABI_CHECKS),ABI checks)

docs-check: lib
	$(call run_all,$(DOCS_CHECKS),documentation checks)

# Installs into a temporary prefix, builds programs against it with pkg-config and with CMake,
# runs them, and uninstalls (Tests/abi/check_install.sh).
install-check: lib
	MAKE="$(MAKE)" bash Tests/abi/check_install.sh $(LIB)

# Records new functions and type layouts of the header in Tests/abi/symbols.txt and layout.txt.
# Refuses to drop or change recorded ones; ABI_BREAK=1 allows that, for entries never released.
abi-update:
	$(PYTHON) Tests/abi/abi.py update --header $(HEADER) $(if $(filter 1,$(ABI_BREAK)),--allow-break)

python-tests: lib
	$(PY_ENV) $(PYTHON) -m pytest $(PY_TESTS)

# pytest runs last, so its summary line closes the output.
test: swift-test lib c-tests run-examples abi-check docs-check install-check reliability \
      bench-smoke python-tests

check: setup test

demo: setup lib run-examples

clean:
	rm -rf $(BUILD_DIR)
	-$(SWIFT) package clean

# ---------------------------------------------------------------------------------------------
# Benchmarks (benchmarks/README.md)
# ---------------------------------------------------------------------------------------------

.PHONY: bench bench-baselines bench-smoke

BENCH_DIR    := $(BUILD_DIR)/bench
# The baselines' virtual environment when `make bench-baselines` has made it, else $(PYTHON).
BENCH_PYTHON := $(if $(wildcard benchmarks/.venv/bin/python),benchmarks/.venv/bin/python,$(PYTHON))
# Options for benchmarks/run.py, e.g. BENCH_ARGS="--configs tiny,small --threads 1".
BENCH_ARGS   ?=

# What benchmarks/run.py runs: the library, the C harness and its two LD_PRELOAD counters.
BENCH_TOOLS  := lib $(BENCH_DIR)/bench $(BENCH_DIR)/libmalloc_count.so $(BENCH_DIR)/libgemm_count.so

bench: $(BENCH_TOOLS)
	$(BENCH_PYTHON) benchmarks/run.py $(BENCH_ARGS)

bench-baselines:
	PYTHON=$(PYTHON) bash benchmarks/setup_baselines.sh

# The harness itself, in a short run (part of make test): every measurement must run and
# libbackprop must train as the numpy implementation does; the report written again from the
# raw results must be the same text; and two rounds of compare.py, the library against itself.
# The rates are not results.
bench-smoke: $(BENCH_TOOLS)
	$(PYTHON) benchmarks/run.py --quick --strict --configs tiny,small --threads 1,2 --max-wait 0 \
	  --output $(BENCH_DIR)/smoke.md --raw $(BENCH_DIR)/smoke.json
	$(PYTHON) benchmarks/run.py --report-from $(BENCH_DIR)/smoke.json \
	  --output $(BENCH_DIR)/smoke-again.md
	cmp $(BENCH_DIR)/smoke.md $(BENCH_DIR)/smoke-again.md
	$(PYTHON) benchmarks/compare.py $(LIB) $(LIB_DIR) --layers 2,16,2 --batch 4 --rounds 2

$(BENCH_DIR)/bench: benchmarks/bench.c $(HEADER) $(LIB)
	@mkdir -p $(dir $@)
	$(CC) $(C_STD_FLAGS) $(CFLAGS) -o $@ $< $(LDFLAGS_BP) -lopenblas -ldl

$(BENCH_DIR)/libmalloc_count.so: benchmarks/malloc_count.c
	@mkdir -p $(dir $@)
	$(CC) $(C_STD_FLAGS) $(CFLAGS) -shared -fPIC -o $@ $<

$(BENCH_DIR)/libgemm_count.so: benchmarks/gemm_count.c
	@mkdir -p $(dir $@)
	$(CC) $(C_STD_FLAGS) $(CFLAGS) -shared -fPIC -o $@ $< -ldl

# ---------------------------------------------------------------------------------------------
# Reliability (docs/RELIABILITY.md): sanitizers, leaks and fuzzing
# ---------------------------------------------------------------------------------------------

.PHONY: reliability asan-lib asan-test valgrind-test fuzz-build fuzz-seeds fuzz-smoke fuzz \
        fuzz-api reliability-clean

# The Swift toolchain's own clang: its AddressSanitizer and libFuzzer runtimes are the ones the
# Swift compiler instruments the library for (the system compiler's may not match).
SWIFT_BIN_DIR := $(dir $(realpath $(or $(shell command -v $(SWIFT) 2>/dev/null),/opt/swift/usr/bin/swift)))
SAN_CC        ?= $(SWIFT_BIN_DIR)clang
# Swift has no UndefinedBehaviorSanitizer (its release builds trap on overflow and bad indexes
# anyway); UBSan checks the C side: the tests and the fuzz harnesses.
SAN_FLAGS     := -O1 -g -fno-omit-frame-pointer -fsanitize=address,undefined \
                 -fno-sanitize-recover=undefined -fuse-ld=lld
# The library turns a failed allocation into BP_ERR_OUT_OF_MEMORY; ASan would abort instead.
SAN_ENV       := ASAN_OPTIONS=allocator_may_return_null=1 UBSAN_OPTIONS=print_stacktrace=1

# One instrumented build serves both: AddressSanitizer, plus libFuzzer's coverage counters so
# the fuzzers see which branches of the library an input reaches (without them libFuzzer only
# sees the harness). Its own scratch path keeps it apart from the release build.
ASAN_SCRATCH  := .build-asan
ASAN_LIB_DIR  := $(BUILD_DIR)/asan/lib
ASAN_LIB      := $(ASAN_LIB_DIR)/libbackprop.so
ASAN_TESTS    := $(patsubst Tests/c/%.c,$(BUILD_DIR)/asan/tests/%,$(CTEST_SRCS))
SAN_LDFLAGS    = -L$(ASAN_LIB_DIR) -lbackprop -Wl,-rpath,$(abspath $(ASAN_LIB_DIR)) -lm

asan-lib:
	$(SWIFT) build -c release --product backprop -Xswiftc -sanitize=fuzzer,address \
	  --scratch-path $(ASAN_SCRATCH)
	@mkdir -p $(ASAN_LIB_DIR)
	@bin="$$($(SWIFT) build -c release --scratch-path $(ASAN_SCRATCH) --show-bin-path)" && \
	  cp -p "$$bin/libbackprop.so" $(ASAN_LIB).tmp && mv -f $(ASAN_LIB).tmp $(ASAN_LIB)
	@ln -sf libbackprop.so $(ASAN_LIB_DIR)/$(LIB_SONAME)

$(ASAN_LIB):
	$(MAKE) --no-print-directory asan-lib

$(BUILD_DIR)/asan/tests/%: Tests/c/%.c Tests/c/check.h $(HEADER) $(ASAN_LIB)
	@mkdir -p $(dir $@)
	$(SAN_CC) $(C_STD_FLAGS) -Werror $(SAN_FLAGS) -o $@ $< $(SAN_LDFLAGS)

# Every C test, with the library and the test both under AddressSanitizer. A finding makes the
# test's child process exit with ASan's report, which fails that test.
asan-test: asan-lib $(ASAN_TESTS)
	@failed=""; for bin in $(ASAN_TESTS); do \
	  echo "== $$bin (AddressSanitizer, UBSan)"; $(SAN_ENV) ./$$bin || failed="$$failed $$bin"; \
	done; \
	if [ -n "$$failed" ]; then echo "ASan tests failed:$$failed"; exit 1; fi

# Every C test under valgrind's memcheck, following each test's child process: an invalid read
# or write, or a block definitely lost when the child exits, fails the test (exit status 99).
# The Swift runtime keeps a few blocks reachable or "possibly lost" on purpose; those are not
# counted.
VALGRIND       ?= valgrind
VALGRIND_FLAGS := -q --leak-check=full --show-leak-kinds=definite \
                  --errors-for-leak-kinds=definite --error-exitcode=99

valgrind-test: tests
	@command -v $(VALGRIND) >/dev/null || { \
	  echo "valgrind-test: $(VALGRIND) not found (scripts/setup.sh installs it)"; exit 1; }
	@failed=""; for bin in $(CTEST_BINS); do \
	  echo "== $$bin (valgrind)"; \
	  BACKPROP_TEST_TOOL=valgrind $(VALGRIND) $(VALGRIND_FLAGS) ./$$bin || failed="$$failed $$bin"; \
	done; \
	if [ -n "$$failed" ]; then echo "valgrind tests failed:$$failed"; exit 1; fi

# libFuzzer harnesses (Tests/fuzz) against the instrumented library, their seeds, and runs.
FUZZERS            := checkpoint csv
FUZZ_DIR           := $(BUILD_DIR)/fuzz
FUZZ_BINS          := $(patsubst %,$(FUZZ_DIR)/fuzz_%,$(FUZZERS))
FUZZ_SECONDS       ?= 300
FUZZ_SMOKE_SECONDS ?= 20
FUZZ_EXAMPLES      ?= 2000

$(FUZZ_DIR)/fuzz_%: Tests/fuzz/fuzz_%.c Tests/fuzz/fuzz_oracle.h $(HEADER) $(ASAN_LIB)
	@mkdir -p $(dir $@)
	$(SAN_CC) $(C_STD_FLAGS) -Werror $(SAN_FLAGS) -fsanitize=fuzzer -o $@ $< $(SAN_LDFLAGS)

fuzz-build: asan-lib $(FUZZ_BINS)

fuzz-seeds: lib
	$(PYTHON) Tests/fuzz/make_seeds.py --lib $(LIB) --out $(FUZZ_DIR)/seeds

fuzz-smoke: fuzz-build fuzz-seeds
	bash Tests/fuzz/run_fuzz.sh --seconds $(FUZZ_SMOKE_SECONDS) $(FUZZ_DIR) $(FUZZERS)

fuzz: fuzz-build fuzz-seeds
	bash Tests/fuzz/run_fuzz.sh --seconds $(FUZZ_SECONDS) $(FUZZ_DIR) $(FUZZERS)

# The Python API-sequence fuzzer (bindings/python/tests/test_fuzz_api.py) for longer than the
# bounded run pytest makes, with a new random seed each time; -s shows its summary (sequences,
# calls, calls refused).
fuzz-api: lib
	BACKPROP_FUZZ_EXAMPLES=$(FUZZ_EXAMPLES) BACKPROP_FUZZ_RANDOM=1 $(PY_ENV) $(PYTHON) -m pytest -s \
	  $(PY_TESTS)/test_fuzz_api.py

reliability: asan-test valgrind-test fuzz-smoke

clean: reliability-clean

reliability-clean:
	rm -rf $(ASAN_SCRATCH)
