// The Winograd kernels and the small GEMM built for AVX2 + FMA (-march=x86-64-v3, the Makefile's
// kernel rule): the path tensor/kernels.h picks on CPUs without AVX-512, or with DD_KERNELS=avx2.
#include "tensor/winograd_kernels.h"

#if defined(__AVX512F__)
#error "tensor/winograd_avx2.cpp must be built without AVX-512 (-march=x86-64-v3)"
#endif

DD_DEFINE_KERNEL_TABLE(kKernelsAvx2, KernelPath::avx2)
