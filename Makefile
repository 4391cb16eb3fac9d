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
# them, with generic tuning, rather than -march=native or -mtune=native: GCC 12 miscompiles a
# brace-initialized std::vector<double> in tests/metrics ({0.5, 0.5, 0, 0} arrives as four 0.5s)
# both with -march=native on an AVX-512 AMD EPYC and with -march=x86-64-v3 -mtune=native on an
# AVX-512 Intel Xeon (sapphirerapids tuning). One instruction set and tuning on every machine also
# keeps results and timings comparable between them. ARCH=native overrides it.
ifndef ARCH
  ARCH := $(shell grep -qw avx2 /proc/cpuinfo 2>/dev/null && grep -qw fma /proc/cpuinfo 2>/dev/null && echo x86-64-v3 || echo native)
endif
ARCHFLAGS := -march=$(ARCH) -mtune=generic

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
LIB_DIRS   := tensor tensor/io autograd nn ddpm train
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

.PHONY: FORCE all lib apps tests test test-asan check-layers bench deps help clean
.DEFAULT_GOAL := all

all: lib apps  ## build the library and every program in apps/

lib: $(LIB)  ## build only the library (build/libddpm.a)

apps: $(APPS)  ## build the programs in apps/

tests: $(TEST_BINS)  ## build the test suites without running them

# Every object depends on a stamp holding the compiler and its flags, so changing either (ARCH=,
# DEBUG=, a Makefile edit) rebuilds everything instead of linking stale objects.
FLAGS_STAMP := $(BUILD)/.flags
$(FLAGS_STAMP): FORCE
	@mkdir -p $(dir $@)
	@echo '$(CXX) $(CXXFLAGS)' | cmp -s - $@ || echo '$(CXX) $(CXXFLAGS)' > $@

$(BUILD)/%.o: %.cpp $(FLAGS_STAMP)
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

# The default recipe end to end (scripts/quality.sh; QUALITY_* variables in its header): about an
# hour and a half on 2 cores, so not part of `make test` (which runs it on tiny settings).
.PHONY: quality
quality: $(APPS)  ## train + sample 1,000 + eval + nll with the defaults into a new runs/quality-DATE folder, with report.md (long)
	bash scripts/quality.sh

deps:  ## install the build, test and data-fetch dependencies (Debian/Ubuntu; sudo when not root)
	@bash scripts/deps.sh

help:  ## list the targets
	@grep -E '^[a-zA-Z_-]+:.*## ' $(MAKEFILE_LIST) | sed -E 's/:.*## /\t/' | awk -F'\t' '{printf "  make %-14s %s\n", $$1, $$2}'
	@echo "  variables: DEBUG=1 (-O0 -g), BUILD=dir (objects, default build/), SANITIZE=address,undefined"

clean:  ## remove build/ and the programs in apps/
	rm -rf build $(APP_SRCS:.cpp=)

-include $(shell find $(BUILD) -name '*.d' 2>/dev/null)
