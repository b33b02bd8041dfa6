// AVX2 + FMA whole-network MLP kernels; compiled with -mavx2 -mfma (setup.py), chosen at run time.
#include "mlp_kernels.h"

#if defined(__AVX2__) && defined(__FMA__)
#define CPU_CAPABILITY AVX2
#define CPU_CAPABILITY_AVX2
#define BM_CAPABILITY cap_avx2
#define BM_CAPABILITY_NAME "avx2"
#define BM_MLP_TABLE_FN table_avx2
#include "mlp_vec.h"
#else
const bregman_kernels::mlp::Table* bregman_kernels::mlp::table_avx2() { return nullptr; }
#endif
