// AVX-512 whole-network MLP kernels; compiled with the AVX-512 flags of setup.py, chosen at run time.
#include "mlp_kernels.h"

#if defined(__AVX512F__) && defined(__AVX512BW__) && defined(__AVX512VL__) && defined(__AVX512DQ__)
#define CPU_CAPABILITY AVX512
#define CPU_CAPABILITY_AVX512
#define BM_CAPABILITY cap_avx512
#define BM_CAPABILITY_NAME "avx512"
#define BM_MLP_TABLE_FN table_avx512
#include "mlp_vec.h"
#else
const bregman_kernels::mlp::Table* bregman_kernels::mlp::table_avx512() { return nullptr; }
#endif
