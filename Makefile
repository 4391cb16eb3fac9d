# ddpm-cpp: a tensor library with reverse-mode autodiff and a DDPM on MNIST, in C++17.
#
#   make            library + every program in apps/ (./apps/NAME, run from the repository root)
#   make test       build and run the doctest suites (one per folder) and the layer check
#   make help       every target
#
# Library sources are every .cpp under tensor/ (with tensor/io/), autograd/, nn/ and ddpm/;
# a program is apps/NAME.cpp (+ the shared apps/common/*.cpp); a test suite is tests/FOLDER/*.cpp.
# New files are picked up without editing this file.

CXX      ?= g++
# Parallel by default (one job per core); `make -j1` still works.
ifeq ($(filter -j%,$(MAKEFLAGS)),)
  MAKEFLAGS += -j$(shell nproc 2>/dev/null || echo 2)
endif
BUILD    ?= build
DEBUG    ?= 0
SANITIZE ?=

# The instruction set: AVX2 + FMA (x86-64-v3, what the kernels are written for) where the CPU has
# them, tuned for this CPU, rather than -march=native: some machines of this kind also have AVX-512,
# and GCC 12 with -march=native there miscompiled a brace-initialized std::vector<double> in
# tests/metrics ({0.5, 0.5, 0, 0} arrived as four 0.5s). One instruction set on every machine also
# keeps results and timings comparable between them. ARCH=native overrides it.
ifndef ARCH
  ARCH := $(shell grep -qw avx2 /proc/cpuinfo 2>/dev/null && grep -qw fma /proc/cpuinfo 2>/dev/null && echo x86-64-v3 || echo native)
endif
ARCHFLAGS := -march=$(ARCH) -mtune=native

ifeq ($(DEBUG),1)
  OPT := -O0 -g
else
  # -fno-trapping-math: we never trap on FP exceptions, and without it GCC will not if-convert
  # float compares, so loops such as tensor/fastmath.h's exp stay scalar (3.5x slower SiLU).
  # It changes no results (unlike -ffast-math: no reassociation, NaN and inf kept).
  OPT := -O3 $(ARCHFLAGS) -g1 -fno-trapping-math
endif
ifneq ($(SANITIZE),)
  # $(ARCHFLAGS) here too: the AVX2/FMA kernels (Winograd, tensor/microkernel.h, fastmath's
  # 8-lane SiLU) are what the sanitizers must see; without it their scalar fallbacks are tested.
  OPT := -O1 -g -fno-omit-frame-pointer $(ARCHFLAGS) -fno-trapping-math -fsanitize=$(SANITIZE)
  LDSAN := -fsanitize=$(SANITIZE)
endif

# ---- dependencies: a missing one stops the build with one line naming the package ----------
NODEPS_GOALS := deps help clean distclean
ifeq ($(filter-out $(NODEPS_GOALS),$(or $(MAKECMDGOALS),all)),)
  SKIP_DEPCHECK := 1
endif
ifndef SKIP_DEPCHECK
  ifeq ($(shell command -v pkg-config),)
    $(error missing pkg-config: run 'make deps' (or apt-get install pkg-config))
  endif
  ifneq ($(shell pkg-config --exists openblas && echo ok),ok)
    $(error missing OpenBLAS: run 'make deps' (or apt-get install libopenblas-openmp-dev))
  endif
  define need_header
    ifeq ($$(wildcard $(1)),)
      $$(error missing $(1): run 'make deps' (or apt-get install $(2)))
    endif
  endef
  $(eval $(call need_header,/usr/include/doctest/doctest.h,doctest-dev))
  $(eval $(call need_header,/usr/include/stb/stb_image_write.h,libstb-dev))
  $(eval $(call need_header,/usr/include/zlib.h,zlib1g-dev))
  $(eval $(call need_header,/usr/include/nlohmann/json.hpp,nlohmann-json3-dev))
  $(eval $(call need_header,/usr/include/CLI/CLI.hpp,libcli11-dev))
  BLAS_CFLAGS := $(shell pkg-config --cflags openblas)
  BLAS_LIBS   := $(shell pkg-config --libs openblas)
endif

CXXFLAGS := -std=c++17 $(OPT) -fopenmp -Wall -Wextra -Wno-unused-parameter -I. -I/usr/include/stb $(BLAS_CFLAGS) -MMD -MP
LDLIBS   := $(BLAS_LIBS) -lz -lm
LDFLAGS  := -fopenmp $(LDSAN)

# ---- sources ---------------------------------------------------------------------------------
LIB_DIRS   := tensor tensor/io autograd nn ddpm
LIB_SRCS   := $(foreach d,$(LIB_DIRS),$(wildcard $(d)/*.cpp))
LIB_OBJS   := $(LIB_SRCS:%.cpp=$(BUILD)/%.o)
LIB        := $(BUILD)/libddpm.a

APP_COMMON := $(wildcard apps/common/*.cpp)
APP_SRCS   := $(wildcard apps/*.cpp)
APPS       := $(APP_SRCS:.cpp=)
ifneq ($(BUILD),build)
  APPS     := $(APP_SRCS:apps/%.cpp=$(BUILD)/apps/%)
endif

TEST_DIRS  := $(sort $(patsubst tests/%/,%,$(dir $(wildcard tests/*/*.cpp))))
TEST_DIRS  := $(filter-out golden,$(TEST_DIRS))
TEST_BINS  := $(TEST_DIRS:%=$(BUILD)/tests/test_%)
TEST_MAIN  := $(BUILD)/tests/doctest_main.o

# Keep object files make would otherwise treat as intermediate (faster test rebuilds).
.SECONDARY:

.PHONY: all lib apps tests test test-asan check-layers bench deps help clean
.DEFAULT_GOAL := all

all: lib apps  ## build the library and every program in apps/

lib: $(LIB)  ## build only the library (build/libddpm.a)

apps: $(APPS)  ## build the programs in apps/

tests: $(TEST_BINS)  ## build the test suites without running them

$(BUILD)/%.o: %.cpp
	@mkdir -p $(dir $@)
	$(CXX) $(CXXFLAGS) -c $< -o $@

$(LIB): $(LIB_OBJS)
	@mkdir -p $(dir $@)
	rm -f $@ && ar rcs $@ $^

apps/% $(BUILD)/apps/%: $(BUILD)/apps/%.o $(APP_COMMON:%.cpp=$(BUILD)/%.o) $(LIB)
	@mkdir -p $(dir $@)
	$(CXX) $(LDFLAGS) $^ $(LDLIBS) -o $@

# One binary per test folder: tests/FOLDER/*.cpp + the doctest main + the library.
.SECONDEXPANSION:
$(BUILD)/tests/test_%: $$(addprefix $(BUILD)/,$$(subst .cpp,.o,$$(wildcard tests/$$*/*.cpp))) $(TEST_MAIN) $(LIB)
	@mkdir -p $(dir $@)
	$(CXX) $(LDFLAGS) $^ $(LDLIBS) -o $@

test: check-layers $(TEST_BINS) $(APPS)  ## run every test suite (and the layer check); fails on any failure
	@echo "== ./$(filter %/derivations,$(APPS)) (docs/derivations.md, every equation checked)"
	@./$(filter %/derivations,$(APPS)) > $(BUILD)/derivations.log 2>&1 && tail -1 $(BUILD)/derivations.log \
	  || { cat $(BUILD)/derivations.log; exit 1; }
	@bash scripts/run_tests.sh $(TEST_BINS)

test-asan:  ## the same suites built with -fsanitize=address,undefined (in build/asan)
	$(MAKE) BUILD=build/asan SANITIZE=address,undefined test

check-layers:  ## fail when a folder includes one above it (apps > ddpm, nn > autograd > tensor)
	@bash scripts/check_layers.sh

bench: apps  ## time a training step and a sampling step against PyTorch in the same run (./apps/bench)
	./$(filter %/bench,$(APPS)) --mode both --threads 1,2 --batch 64 --steps 5 --rounds 4

# ---- fuzzing: libFuzzer targets (tests/fuzz/fuzz_*.cpp) built with clang and the sanitizers ----
# `make fuzz` builds the library again with clang (build/fuzz) and runs every target FUZZ_SECONDS
# (per target) on its seed corpus; anything found lands in tests/fuzz/regressions/TARGET/, which
# `make test` replays through the same targets built with g++ (build/tests/test_fuzz).
FUZZ_SECONDS ?= 60
FUZZ_DIR     := build/fuzz
FUZZ_TARGETS := $(patsubst tests/fuzz/fuzz_%.cpp,%,$(wildcard tests/fuzz/fuzz_*.cpp))
ifeq ($(FUZZ_BUILD),1)
  # Skip the checkpoint checksum so mutated files reach the checks behind it; make UB fatal.
  CXXFLAGS += -DFUZZING_BUILD_MODE_UNSAFE_FOR_PRODUCTION -fno-sanitize-recover=undefined
endif
# The replay test and the fuzz targets use the stored-config parser of apps/common.
# (The library once more after them, for the symbols they need from it.)
$(BUILD)/tests/test_fuzz: $(APP_COMMON:%.cpp=$(BUILD)/%.o)
$(BUILD)/tests/test_fuzz: LDLIBS := $(LIB) $(LDLIBS)
$(FUZZ_DIR)/fuzz/%: tests/fuzz/fuzz_%.cpp $(FUZZ_DIR)/tests/fuzz/input_file.o $(APP_COMMON:%.cpp=$(FUZZ_DIR)/%.o) $(FUZZ_DIR)/libddpm.a
	@mkdir -p $(dir $@)
	$(CXX) $(CXXFLAGS) -DDD_LIBFUZZER -fsanitize=fuzzer $(filter %.cpp %.o %.a,$^) $(LDLIBS) -fopenmp -fsanitize=fuzzer,address,undefined -o $@

.PHONY: fuzz fuzz-build
fuzz-build:  ## build the libFuzzer targets (clang, address + undefined sanitizers) in build/fuzz
	$(MAKE) BUILD=$(FUZZ_DIR) CXX=clang++ SANITIZE=fuzzer-no-link,address,undefined FUZZ_BUILD=1 $(FUZZ_TARGETS:%=$(FUZZ_DIR)/fuzz/%)

fuzz: fuzz-build  ## run every fuzz target FUZZ_SECONDS (default 60) seconds; findings become regression inputs
	@bash scripts/run_fuzz.sh $(FUZZ_SECONDS) $(FUZZ_DIR) $(FUZZ_TARGETS)

deps:  ## install the build, test and data-fetch dependencies (Debian/Ubuntu; sudo when not root)
	@bash scripts/deps.sh

help:  ## list the targets
	@grep -E '^[a-zA-Z_-]+:.*## ' $(MAKEFILE_LIST) | sed -E 's/:.*## /\t/' | awk -F'\t' '{printf "  make %-14s %s\n", $$1, $$2}'
	@echo "  variables: DEBUG=1 (-O0 -g), BUILD=dir (objects, default build/), SANITIZE=address,undefined"

clean:  ## remove build/ and the programs in apps/
	rm -rf build $(APP_SRCS:.cpp=)

-include $(shell find $(BUILD) -name '*.d' 2>/dev/null)
