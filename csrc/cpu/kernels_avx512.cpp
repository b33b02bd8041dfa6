// AVX-512 kernels; compiled with -mavx512f -mavx512bw -mavx512vl -mavx512dq -mfma (setup.py), selected at run
// time when the CPU has them.
#include "kernels.h"

#if defined(__AVX512F__) && defined(__AVX512BW__) && defined(__AVX512VL__) && defined(__AVX512DQ__)
#define CPU_CAPABILITY AVX512
#define CPU_CAPABILITY_AVX512
#define BM_CAPABILITY cap_avx512
#define BM_CAPABILITY_NAME "avx512"
#define BM_TABLE_FN table_avx512
#include "vec_kernels.h"
#else
const bregman_kernels::cpu::KernelTable* bregman_kernels::cpu::table_avx512() { return nullptr; }
#endif
