// Portable kernels (no instruction-set flags): at::vec's generic Vectorized with libm transcendentals.
#define CPU_CAPABILITY DEFAULT
#define CPU_CAPABILITY_DEFAULT
#define BM_CAPABILITY cap_default
#define BM_CAPABILITY_NAME "default"
#define BM_TABLE_FN table_default
#include "vec_kernels.h"
