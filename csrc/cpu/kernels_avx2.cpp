// AVX2 + FMA kernels; compiled with -mavx2 -mfma (setup.py), selected at run time when the CPU has both.
#include "kernels.h"

#if defined(__AVX2__) && defined(__FMA__)
#define CPU_CAPABILITY AVX2
#define CPU_CAPABILITY_AVX2
#define BM_CAPABILITY cap_avx2
#define BM_CAPABILITY_NAME "avx2"
#define BM_TABLE_FN table_avx2
#include "vec_kernels.h"
#else
const bregman_kernels::cpu::KernelTable* bregman_kernels::cpu::table_avx2() { return nullptr; }
#endif
