// CPU implementations of bregman_kernels::fused_fwd / fused_bwd (schemas defined in Python, bregman_kernels/ops.py)
// and the Python module bregman_kernels._C. Any layout goes through TensorIterator: dense segments of the compute
// type run in place; strided, broadcast (stride 0) or 16-bit segments are gathered into small buffers of the
// compute type, run, and scattered back (no whole-tensor copy). Threads: at::parallel_for (torch.get_num_threads()).
#include <Python.h>

#include <ATen/Dispatch.h>
#include <ATen/Parallel.h>
#include <ATen/TensorIterator.h>
#include <ATen/Version.h>
#include <ATen/core/Tensor.h>
#include <ATen/ops/empty_like.h>
#include <c10/util/irange.h>
#include <torch/library.h>

#include <algorithm>
#include <cctype>
#include <cstdlib>
#include <string>
#include <tuple>
#include <type_traits>
#include <vector>

#include "../bregman_math.h"
#include "kernels.h"

namespace bregman_kernels::cpu {
namespace {

constexpr int64_t kChunk = 256;        // elements per gathered buffer
constexpr int64_t kGrain = 1 << 14;    // elements per parallel task

// ---- instruction-set selection ------------------------------------------------------------------------------------

bool cpu_has(const char* isa) {
#if defined(__GNUC__) && (defined(__x86_64__) || defined(__i386__))
  std::string s(isa);
  if (s == "avx2") return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
  if (s == "avx512")
    return __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
           __builtin_cpu_supports("avx512vl") && __builtin_cpu_supports("avx512dq") && __builtin_cpu_supports("fma");
#endif
  return std::string(isa) == "default";
}

// Usable tables, best first: compiled in and supported by this CPU.
std::vector<const KernelTable*> usable_tables() {
  std::vector<const KernelTable*> out;
  for (const KernelTable* t : {table_avx512(), table_avx2(), table_default()})
    if (t != nullptr && cpu_has(t->name)) out.push_back(t);
  return out;
}

const KernelTable* find_table(const std::string& name) {
  for (const KernelTable* t : usable_tables())
    if (name == t->name) return t;
  return nullptr;
}

// Default: the best usable table, capped by ATen's own choice (ATEN_CPU_CAPABILITY) and by
// BREGMAN_KERNELS_CPU_CAPABILITY (default, avx2 or avx512).
const KernelTable* initial_table() {
  std::vector<std::string> caps;
  std::string aten = at::get_cpu_capability();
  for (auto& ch : aten) ch = static_cast<char>(std::tolower(ch));
  caps.push_back(aten);
  if (const char* env = std::getenv("BREGMAN_KERNELS_CPU_CAPABILITY")) {
    std::string cap(env);
    for (auto& ch : cap) ch = static_cast<char>(std::tolower(ch));
    if (cap != "default" && cap != "avx2" && cap.rfind("avx512", 0) != 0)
      TORCH_WARN("BREGMAN_KERNELS_CPU_CAPABILITY=", env, " is not one of default, avx2, avx512: using default");
    caps.push_back(cap);
  }
  for (const KernelTable* t : usable_tables()) {
    bool allowed = true;
    for (const std::string& cap : caps) {
      std::string name = t->name;
      // avx512 ⊃ avx2 ⊃ default
      int rank_t = name == "avx512" ? 2 : name == "avx2" ? 1 : 0;
      int rank_c = cap.rfind("avx512", 0) == 0 ? 2 : cap == "avx2" ? 1 : 0;
      if (rank_t > rank_c) allowed = false;
    }
    if (allowed) return t;
  }
  return table_default();
}

const KernelTable*& active_table() {
  static const KernelTable* table = initial_table();
  return table;
}

// ---- segments -----------------------------------------------------------------------------------------------------

template <class S, class CT>
const CT* gather(const char* p, int64_t stride, int64_t n, CT* buf) {
  if (std::is_same_v<S, CT> && stride == static_cast<int64_t>(sizeof(S))) return reinterpret_cast<const CT*>(p);
  for (int64_t k = 0; k < n; ++k) buf[k] = static_cast<CT>(*reinterpret_cast<const S*>(p + k * stride));
  return buf;
}

template <class S, class CT>
CT* out_ptr(char* p, int64_t stride, CT* buf) {
  if (std::is_same_v<S, CT> && stride == static_cast<int64_t>(sizeof(S))) return reinterpret_cast<CT*>(p);
  return buf;
}

template <class S, class CT>
void scatter(const CT* src, char* p, int64_t stride, int64_t n) {
  if (src == reinterpret_cast<const CT*>(p)) return;
  for (int64_t k = 0; k < n; ++k) *reinterpret_cast<S*>(p + k * stride) = static_cast<S>(src[k]);
}

// Operands: data[0] = y, data[1] = x, data[2] = z.
template <class S, class CT>
void fwd_1d(FwdFn<CT> fn, const Params& prm, char** data, const int64_t* st, int64_t n) {
  CT bx[kChunk], bz[kChunk], by[kChunk];
  for (int64_t i = 0; i < n; i += kChunk) {
    const int64_t m = std::min(kChunk, n - i);
    char* y = data[0] + i * st[0];
    CT* py = out_ptr<S, CT>(y, st[0], by);
    fn(gather<S, CT>(data[1] + i * st[1], st[1], m, bx), gather<S, CT>(data[2] + i * st[2], st[2], m, bz), py, m, prm);
    scatter<S, CT>(py, y, st[0], m);
  }
}

// Operands: data[0] = gx, data[1] = gz, data[2] = g, data[3] = x, data[4] = z.
template <class S, class CT>
void bwd_1d(BwdFn<CT> fn, const Params& prm, char** data, const int64_t* st, int64_t n) {
  CT bg[kChunk], bx[kChunk], bz[kChunk], bgx[kChunk], bgz[kChunk];
  for (int64_t i = 0; i < n; i += kChunk) {
    const int64_t m = std::min(kChunk, n - i);
    char* gx = data[0] + i * st[0];
    char* gz = data[1] + i * st[1];
    CT* pgx = out_ptr<S, CT>(gx, st[0], bgx);
    CT* pgz = out_ptr<S, CT>(gz, st[1], bgz);
    fn(gather<S, CT>(data[2] + i * st[2], st[2], m, bg), gather<S, CT>(data[3] + i * st[3], st[3], m, bx),
       gather<S, CT>(data[4] + i * st[4], st[4], m, bz), pgx, pgz, m, prm);
    scatter<S, CT>(pgx, gx, st[0], m);
    scatter<S, CT>(pgz, gz, st[1], m);
  }
}

// Run a 1-D segment function over TensorIterator's 2-D loops.
template <int NT, class Seg>
void run(at::TensorIterator& iter, Seg seg) {
  iter.for_each(
      [&](char** data, const int64_t* strides, int64_t size0, int64_t size1) {
        char* ptrs[NT];
        for (int64_t j = 0; j < size1; ++j) {
          for (int k = 0; k < NT; ++k) ptrs[k] = data[k] + j * strides[NT + k];
          seg(ptrs, strides, size0);
        }
      },
      kGrain);
}

void check_inputs(const char* op, const at::Tensor& x, const at::Tensor& z, int64_t act) {
  TORCH_CHECK(x.sizes() == z.sizes(), op, ": x and z must have one shape, got ", x.sizes(), " and ", z.sizes());
  TORCH_CHECK(x.scalar_type() == z.scalar_type(), op, ": x and z must have one dtype, got ", x.scalar_type(),
              " and ", z.scalar_type());
  TORCH_CHECK(x.device().is_cpu() && z.device().is_cpu(), op, ": expected CPU tensors");
  TORCH_CHECK(act >= 0 && act < kNumActs, op, ": unknown activation code ", act);
}

// The float or the double entries of a kernel table, by compute type.
template <class F, class D>
const F* pick(const F* f, const D*, float) { return f; }
template <class F, class D>
const D* pick(const F*, const D* d, double) { return d; }

#define BM_DISPATCH_FLOATS(TYPE, NAME, ...) \
  AT_DISPATCH_FLOATING_TYPES_AND2(at::ScalarType::Half, at::ScalarType::BFloat16, TYPE, NAME, __VA_ARGS__)

at::Tensor fused_fwd_cpu(const at::Tensor& x, const at::Tensor& z, int64_t act, double param, double lo, double hi) {
  check_inputs("fused_fwd", x, z, act);
  at::Tensor y = at::empty_like(x);
  if (y.numel() == 0) return y;
  auto iter = at::TensorIteratorConfig().resize_outputs(false).add_output(y).add_const_input(x).add_const_input(z)
                  .build();
  const Params prm{lo, hi, param};
  const KernelTable* t = active_table();
  BM_DISPATCH_FLOATS(x.scalar_type(), "fused_fwd_cpu", [&] {
    using CT = std::conditional_t<std::is_same_v<scalar_t, double>, double, float>;
    const FwdFn<CT> fn = pick(t->fwd_f, t->fwd_d, CT{})[act];
    run<3>(iter, [&](char** d, const int64_t* s, int64_t n) { fwd_1d<scalar_t, CT>(fn, prm, d, s, n); });
  });
  return y;
}

std::tuple<at::Tensor, at::Tensor> fused_bwd_cpu(const at::Tensor& grad, const at::Tensor& x, const at::Tensor& z,
                                                 int64_t act, double param, double lo, double hi) {
  check_inputs("fused_bwd", x, z, act);
  TORCH_CHECK(grad.sizes() == x.sizes() && grad.scalar_type() == x.scalar_type() && grad.device().is_cpu(),
              "fused_bwd: grad must match x in shape, dtype and device");
  at::Tensor gx = at::empty_like(x), gz = at::empty_like(z);
  if (x.numel() == 0) return {gx, gz};
  auto iter = at::TensorIteratorConfig().resize_outputs(false).add_output(gx).add_output(gz).add_const_input(grad)
                  .add_const_input(x).add_const_input(z).build();
  const Params prm{lo, hi, param};
  const KernelTable* t = active_table();
  BM_DISPATCH_FLOATS(x.scalar_type(), "fused_bwd_cpu", [&] {
    using CT = std::conditional_t<std::is_same_v<scalar_t, double>, double, float>;
    const BwdFn<CT> fn = pick(t->bwd_f, t->bwd_d, CT{})[act];
    run<5>(iter, [&](char** d, const int64_t* s, int64_t n) { bwd_1d<scalar_t, CT>(fn, prm, d, s, n); });
  });
  return {gx, gz};
}

}  // namespace
}  // namespace bregman_kernels::cpu

TORCH_LIBRARY_IMPL(bregman_kernels, CPU, m) {
  m.impl("fused_fwd", &bregman_kernels::cpu::fused_fwd_cpu);
  m.impl("fused_bwd", &bregman_kernels::cpu::fused_bwd_cpu);
}

// ---- Python module bregman_kernels._C -------------------------------------------------------------------------------

namespace {

PyObject* act_names(PyObject*, PyObject*) {
  PyObject* out = PyTuple_New(bregman_math::NUM_ACTS);
  for (int i = 0; i < bregman_math::NUM_ACTS; ++i)
    PyTuple_SET_ITEM(out, i, PyUnicode_FromString(bregman_math::kActNames[i]));
  return out;
}

PyObject* capability(PyObject*, PyObject*) {
  return PyUnicode_FromString(bregman_kernels::cpu::active_table()->name);
}

PyObject* capabilities(PyObject*, PyObject*) {
  auto tables = bregman_kernels::cpu::usable_tables();
  PyObject* out = PyTuple_New(static_cast<Py_ssize_t>(tables.size()));
  for (size_t i = 0; i < tables.size(); ++i) PyTuple_SET_ITEM(out, i, PyUnicode_FromString(tables[i]->name));
  return out;
}

PyObject* set_capability(PyObject*, PyObject* arg) {
  const char* name = PyUnicode_AsUTF8(arg);
  if (name == nullptr) return nullptr;
  const auto* t = bregman_kernels::cpu::find_table(name);
  if (t == nullptr) {
    PyErr_Format(PyExc_ValueError, "CPU capability %s is not built or not supported by this CPU", name);
    return nullptr;
  }
  const char* previous = bregman_kernels::cpu::active_table()->name;
  bregman_kernels::cpu::active_table() = t;
  return PyUnicode_FromString(previous);
}

PyMethodDef methods[] = {
    {"act_names", act_names, METH_NOARGS, "Activation names in code order (the codes of csrc/bregman_math.h)."},
    {"capability", capability, METH_NOARGS, "Instruction set of the CPU kernels in use: default, avx2 or avx512."},
    {"capabilities", capabilities, METH_NOARGS, "Instruction sets built in and supported by this CPU, best first."},
    {"set_capability", set_capability, METH_O, "Use the kernels of one instruction set; returns the previous one."},
    {nullptr, nullptr, 0, nullptr}};

PyModuleDef module = {PyModuleDef_HEAD_INIT, "_C", "CPU kernels of bregman_kernels (registered with torch).", -1,
                      methods};

}  // namespace

PyMODINIT_FUNC PyInit__C() { return PyModule_Create(&module); }
