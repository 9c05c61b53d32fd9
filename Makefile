# fapiao — top-level commands.  `make run` and `make test` are all a fresh
# Debian 12 machine needs; they install missing packages themselves.
BUILD      ?= build
ASAN_BUILD ?= build-asan
DATA_DIR   ?= var/demo
LISTEN     ?= 127.0.0.1:8443
JOBS       ?= $(shell nproc)
FUZZERS    := $(basename $(notdir $(wildcard fuzz/fuzz_*.c)))

.PHONY: all deps test-deps build asan run test unit e2e test-asan bench fuzz format clean deb

all: build

deps:
	@scripts/install-deps.sh

test-deps:
	@scripts/install-deps.sh --test

build: deps
	@cmake -S . -B $(BUILD) -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
	@cmake --build $(BUILD) -j$(JOBS) -- --no-print-directory

asan: test-deps
	@cmake -S . -B $(ASAN_BUILD) -DCMAKE_BUILD_TYPE=Debug -DFP_SANITIZE=ON >/dev/null
	@cmake --build $(ASAN_BUILD) -j$(JOBS) -- --no-print-directory

run: build
	@scripts/run-demo.sh $(BUILD)/fapiao $(DATA_DIR) $(LISTEN)

# Every test: unit + fuzz corpus replay (ctest) and the black-box suite, on
# the optimised build and again on the ASan+UBSan build, then a short
# libFuzzer run of every parser (FUZZ_SECONDS each, default 20).
test: test-deps build asan fuzz
	@scripts/run-tests.sh $(BUILD) $(ASAN_BUILD) build-fuzz

unit: build
	@cd $(BUILD) && ctest --output-on-failure

e2e: build test-deps
	@FAPIAO_BIN=$(CURDIR)/$(BUILD)/fapiao /usr/bin/python3 -m pytest -q tests/e2e

bench: build test-deps
	@bench/issue.sh $(BUILD)

fuzz: test-deps
	@cmake -S . -B build-fuzz -DCMAKE_C_COMPILER=clang -DFP_FUZZ=ON -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
	@cmake --build build-fuzz -j$(JOBS) --target $(FUZZERS) -- --no-print-directory

# The Debian package, built out of tree by dpkg-buildpackage (debian/): the
# .deb lands in $(DEB_DIR)/fapiao_<version>_amd64.deb (docs/operations.md).
DEB_DIR ?= build-deb
deb: test-deps
	@scripts/build-deb.sh $(DEB_DIR)

# Applies .clang-format to every C file; `make test` fails on unformatted code.
C_SOURCES = $(shell git ls-files '*.c' '*.h' ':!tests/data')
format:
	@clang-format -i $(C_SOURCES)

clean:
	rm -rf $(BUILD) $(ASAN_BUILD) build-fuzz $(DEB_DIR)
