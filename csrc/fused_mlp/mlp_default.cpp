// Portable whole-network MLP kernels (at::vec's generic Vectorized, libm transcendentals).
#define CPU_CAPABILITY DEFAULT
#define CPU_CAPABILITY_DEFAULT
#define BM_CAPABILITY cap_default
#define BM_CAPABILITY_NAME "default"
#define BM_MLP_TABLE_FN table_default
#include "mlp_vec.h"
