// The Winograd kernels and the small GEMM built for AVX-512 (-march=x86-64-v4, the Makefile's
// kernel rule): 16-float vectors and the 12 x 32 register block of tensor/microkernel.h; the path
// tensor/kernels.h picks where cpuid reports AVX-512F/BW/DQ/VL, or with DD_KERNELS=avx512.
#include "tensor/winograd_kernels.h"

#if !defined(__AVX512F__)
#error "tensor/winograd_avx512.cpp must be built with AVX-512 (-march=x86-64-v4)"
#endif

DD_DEFINE_KERNEL_TABLE(kKernelsAvx512, KernelPath::avx512)
