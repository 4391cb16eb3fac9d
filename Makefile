# ddpm-cpp: a tensor library with reverse-mode autodiff and a DDPM on MNIST, in C++17.
#
#   make            library + every program in apps/ (./apps/NAME, run from the repository root)
#   make test       build and run the doctest suites (one per folder), the layer and self-containment checks
#   make help       every target
#
# Library sources are every .cpp under tensor/ (with tensor/io/), autograd/, nn/, ddpm/, train/ and derivations/;
# a program is apps/NAME.cpp (+ the shared apps/common/*.cpp); a test suite is tests/FOLDER/*.cpp.
# New files are picked up without editing this file.

CXX      ?= g++
# ---- MPI build (make MPI=1): mpicxx, objects in build/mpi/, programs at build/mpi/apps/NAME ----
# dist/mpi.cpp is the one file that includes mpi.h; the default build never compiles it.
MPI      ?= 0
ifeq ($(MPI),1)
  CXX    := mpicxx
  BUILD  := build/mpi
  MPI_CXXFLAGS := -DDD_WITH_MPI
endif
# Parallel by default (one job per core); `make -j1` still works.
ifeq ($(filter -j%,$(MAKEFLAGS)),)
  MAKEFLAGS += -j$(shell nproc 2>/dev/null || echo 2)
endif
DEBUG    ?= 0
SANITIZE ?=

# The instruction set of ordinary code: AVX2 + FMA (x86-64-v3) where the CPU has them, plain
# x86-64 otherwise; the vector kernel files get their own (below) and tensor/kernels.h picks one at
# run time. Tuning is generic, not for the CPU at hand: GCC 12 tuning for this kind of host
# (-mtune=native: sapphirerapids and rocketlake here) miscompiled a brace-initialized std::vector<double> in
# tests/metrics ({0.5, 0.5, 0, 0} stored as four 0.5s through one vpbroadcastq); the same code
# under -march=native failed the same way on an AVX-512 AMD EPYC. ARCH=native overrides the instruction set.
ifndef ARCH
  ARCH := $(shell grep -qw avx2 /proc/cpuinfo 2>/dev/null && grep -qw fma /proc/cpuinfo 2>/dev/null && echo x86-64-v3 || echo x86-64)
endif
TUNE ?= generic
ARCHFLAGS := -march=$(ARCH) -mtune=$(TUNE)
# An instruction set named on the command line builds in its own folder (make ARCH=x86-64 test:
# ordinary code without AVX2, the kernel files still built for theirs and chosen at run time).
ifeq ($(origin ARCH),command line)
  BUILD ?= build/$(ARCH)
endif
BUILD    ?= build

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

CXXFLAGS := -std=c++17 $(OPT) $(MPI_CXXFLAGS) -fopenmp -Wall -Wextra -Wno-unused-parameter -I. -I/usr/include/stb $(BLAS_CFLAGS) -MMD -MP
LDLIBS   := $(BLAS_LIBS) -lz -lm
LDFLAGS  := -fopenmp $(LDSAN)

# ---- sources ---------------------------------------------------------------------------------
LIB_DIRS   := tensor tensor/io autograd nn ddpm train derivations dist
LIB_SRCS   := $(foreach d,$(LIB_DIRS),$(wildcard $(d)/*.cpp))
ifneq ($(MPI),1)
  LIB_SRCS := $(filter-out dist/mpi.cpp,$(LIB_SRCS))
endif
LIB_OBJS   := $(LIB_SRCS:%.cpp=$(BUILD)/%.o)
LIB        := $(BUILD)/libddpm.a

APP_COMMON := $(wildcard apps/common/*.cpp)
APP_SRCS   := $(wildcard apps/*.cpp)
APPS       := $(APP_SRCS:.cpp=)
ifneq ($(BUILD),build)
  APPS     := $(APP_SRCS:apps/%.cpp=$(BUILD)/apps/%)
endif

TEST_DIRS  := $(sort $(patsubst tests/%/,%,$(dir $(wildcard tests/*/*.cpp))))
TEST_DIRS  := $(filter-out golden mpi,$(TEST_DIRS))
TEST_BINS  := $(TEST_DIRS:%=$(BUILD)/tests/test_%)
TEST_MAIN  := $(BUILD)/tests/doctest_main.o

# Keep object files make would otherwise treat as intermediate (faster test rebuilds).
.SECONDARY:

.PHONY: all lib apps tests test test-asan check-layers check-kernels bench deps help clean
.DEFAULT_GOAL := all

all: lib apps  ## build the library and every program in apps/

lib: $(LIB)  ## build only the library (build/libddpm.a)

apps: $(APPS)  ## build the programs in apps/

tests: $(TEST_BINS)  ## build the test suites without running them

# Objects depend on the compile flags: the stamp file is rewritten only when they change
# (another ARCH, TUNE, DEBUG or SANITIZE in the same folder), so that every object is rebuilt then.
FLAGS_STAMP := $(BUILD)/compile-flags
ifndef SKIP_DEPCHECK
  $(shell mkdir -p $(BUILD) && (echo '$(CXX) $(CXXFLAGS)' | cmp -s - $(FLAGS_STAMP) || echo '$(CXX) $(CXXFLAGS)' > $(FLAGS_STAMP)))
endif

$(BUILD)/%.o: %.cpp $(FLAGS_STAMP)
	@mkdir -p $(dir $@)
	$(CXX) $(CXXFLAGS) $(KERNEL_ARCH) -c $< -o $@

# The vector kernel files are the only ones built for a wider instruction set than ARCH: each for
# its own (the last -march wins), chosen at run time by tensor/kernels.h from cpuid. Ordinary code
# stays at ARCH.
$(BUILD)/tensor/winograd_avx2.o: KERNEL_ARCH := -march=x86-64-v3 -mtune=$(TUNE)
$(BUILD)/tensor/winograd_avx512.o: KERNEL_ARCH := -march=x86-64-v4 -mtune=$(TUNE) -mprefer-vector-width=512

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

test: check-layers check-self-contained check-kernels $(TEST_BINS) $(APPS)  ## run every test suite (and the layer, self-containment and kernel-symbol checks); fails on any failure
	@echo "== ./$(filter %/derivations,$(APPS)) (docs/derivations.md, every equation checked)"
	@./$(filter %/derivations,$(APPS)) > $(BUILD)/derivations.log 2>&1 && tail -1 $(BUILD)/derivations.log \
	  || { cat $(BUILD)/derivations.log; exit 1; }
	@bash scripts/run_tests.sh $(TEST_BINS)
	@$(MAKE) --no-print-directory test-mpi-if-present

# ---- MPI equivalence tests: run by `make test` where mpicxx is installed (skipped, with a line, where not)
MPI_TEST_APPS := train_mnist nll sample
.PHONY: test-mpi test-mpi-if-present
test-mpi-if-present:
	@if [ "$(MPI)" != 1 ] && command -v mpicxx >/dev/null 2>&1 && command -v mpirun >/dev/null 2>&1; then \
	  $(MAKE) --no-print-directory test-mpi; \
	else echo "== MPI tests: skipped (no mpicxx/mpirun; make deps installs Open MPI)"; fi

test-mpi: $(APPS) $(BUILD)/tests/test_mpi  ## build the MPI programs (build/mpi/) and check 2 ranks against 1 (tests/mpi)
	$(MAKE) --no-print-directory MPI=1 BUILD=build/mpi SANITIZE= $(MPI_TEST_APPS:%=build/mpi/apps/%)
	@DD_MPI_APPS=build/mpi/apps bash scripts/run_tests.sh $(BUILD)/tests/test_mpi

test-asan:  ## the same suites built with -fsanitize=address,undefined (in build/asan)
	$(MAKE) BUILD=build/asan SANITIZE=address,undefined test

check-layers:  ## fail when a folder includes one above it (apps > train, derivations > ddpm, nn > autograd > tensor)
	@bash scripts/check_layers.sh

.PHONY: check-self-contained
check-self-contained:  ## fail when a tracked file names a path outside the repository (docs/conventions.md)
	@bash scripts/check_self_contained.sh

KERNEL_OBJS := $(BUILD)/tensor/winograd_avx2.o $(BUILD)/tensor/winograd_avx512.o
check-kernels: $(KERNEL_OBJS)  ## fail when a kernel object built for AVX2 / AVX-512 defines a symbol ordinary code could link to
	@bash scripts/check_kernels.sh $(KERNEL_OBJS)

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

# The default recipe end to end (scripts/quality.sh; QUALITY_* variables in its header): about an
# hour and a half on 2 cores, so not part of `make test` (which runs it on tiny settings).
.PHONY: quality
quality: $(APPS)  ## train + sample 1,000 + eval + nll with the defaults into a new runs/quality-DATE folder, with report.md (long)
	bash scripts/quality.sh

deps:  ## install the build, test and data-fetch dependencies (Debian/Ubuntu; sudo when not root)
	@bash scripts/deps.sh

help:  ## list the targets
	@grep -hE '^[a-zA-Z_-]+:.*## ' $(firstword $(MAKEFILE_LIST)) | sed -E 's/:.*## /\t/' | awk -F'\t' '{printf "  make %-21s %s\n", $$1, $$2}'
	@echo "  variables: DEBUG=1 (-O0 -g), BUILD=dir (objects, default build/), SANITIZE=address,undefined,"
	@echo "             ARCH=x86-64|x86-64-v3|native (ordinary code's -march; own folder build/ARCH), TUNE=generic,"
	@echo "             MPI=1 (MPI-enabled programs in build/mpi/apps/, with mpicxx)"
	@echo "  run time:  DD_KERNELS=avx512|avx2|generic forces a kernel path (tensor/kernels.h)"

clean:  ## remove build/ and the programs in apps/
	rm -rf build $(APP_SRCS:.cpp=)

-include $(shell find $(BUILD) -name '*.d' 2>/dev/null)
