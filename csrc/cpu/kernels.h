// Table of the CPU kernels of one instruction set: contiguous arrays of the compute type (float or double).
// Kept free of torch headers: each instruction set is compiled in its own translation unit with its own flags.
#pragma once

#include <cstdint>

namespace bregman_kernels::cpu {

constexpr int kNumActs = 9;

// Clamp bounds (already in the compute type) and the activation's parameter (softplus β).
struct Params {
  double lo, hi, param;
};

template <class T>
using FwdFn = void (*)(const T* x, const T* z, T* y, int64_t n, const Params& prm);
template <class T>
using BwdFn = void (*)(const T* g, const T* x, const T* z, T* gx, T* gz, int64_t n, const Params& prm);

// One entry per activation code.
struct KernelTable {
  const char* name;
  FwdFn<float> fwd_f[kNumActs];
  FwdFn<double> fwd_d[kNumActs];
  BwdFn<float> bwd_f[kNumActs];
  BwdFn<double> bwd_d[kNumActs];
};

// nullptr where the instruction set was not compiled in (other compiler or architecture).
const KernelTable* table_default();
const KernelTable* table_avx2();
const KernelTable* table_avx512();

}  // namespace bregman_kernels::cpu
