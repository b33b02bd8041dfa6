"""Build of bregman_kernels and its C++ extensions (docs/building.md).

bregman_kernels._C       CPU kernels (csrc/cpu): always built; AVX2 and AVX-512 variants compiled per file with
                         their own -m flags and chosen at run time.
bregman_kernels._C_cuda  CUDA kernels (csrc/cuda): built when torch is a CUDA build and nvcc is found (no GPU
                         needed). Optional: a failed or skipped CUDA build is reported, recorded in
                         bregman_kernels/_cuda_build.txt (read by the "cuda" backend's error) and the install goes on.

Environment: BREGMAN_KERNELS_SKIP_CUDA=1 (CPU only), BREGMAN_KERNELS_DEBUG=1 (-O0 -g), TORCH_CUDA_ARCH_LIST
(default "8.0;9.0+PTX"), MAX_JOBS (parallel compile jobs), CUDA_HOME (toolkit).
"""

import glob
import os
import platform
import re
import shutil
import subprocess
import sys

from setuptools import setup

STATUS_FILE = "_cuda_build.txt"
DEFAULT_ARCHS = "8.0;9.0+PTX"
ISA_FLAGS = {
    "csrc/cpu/kernels_avx2.cpp": ["-mavx2", "-mfma"],
    "csrc/cpu/kernels_avx512.cpp": ["-mavx512f", "-mavx512bw", "-mavx512vl", "-mavx512dq", "-mfma"],
}
ISA_FLAGS["csrc/fused_mlp/mlp_avx2.cpp"] = ISA_FLAGS["csrc/cpu/kernels_avx2.cpp"]
ISA_FLAGS["csrc/fused_mlp/mlp_avx512.cpp"] = ISA_FLAGS["csrc/cpu/kernels_avx512.cpp"]


def _env_on(name: str) -> bool:
    return os.environ.get(name, "").strip().lower() not in ("", "0", "false", "no", "off")


def _say(msg: str) -> None:
    print(f"bregman_kernels setup: {msg}", file=sys.stderr, flush=True)


def _nvidia_include_dirs() -> list[str]:
    """Headers of torch's pip CUDA wheels (cuBLAS, cuSPARSE, ...), for toolkits that lack them."""
    try:
        import nvidia  # the namespace package of the nvidia-* wheels torch depends on
    except ImportError:
        return []
    dirs = []
    for root in getattr(nvidia, "__path__", []):
        dirs += sorted(d for d in glob.glob(os.path.join(root, "cu*", "include")) if re.search(r"cu\d+", d))
        dirs += sorted(glob.glob(os.path.join(root, "cublas", "include")))
        dirs += sorted(glob.glob(os.path.join(root, "cusparse", "include")))
    return [d for d in dirs if os.path.isdir(d)]


def _nvcc_version(cuda_home: str) -> str | None:
    nvcc = os.path.join(cuda_home, "bin", "nvcc")
    try:
        out = subprocess.run([nvcc, "--version"], capture_output=True, text=True, check=True).stdout
    except (OSError, subprocess.CalledProcessError):
        return None
    m = re.search(r"release (\d+\.\d+)", out)
    return m.group(1) if m else None


def _locate_cuda_home() -> None:
    """Point CUDA_HOME at the real toolkit when nvcc on PATH is a wrapper script outside it (torch would take the
    wrapper's parent directory); nvcc itself reports its root in a dry run."""
    if os.environ.get("CUDA_HOME") or os.environ.get("CUDA_PATH"):
        return
    nvcc = shutil.which("nvcc")
    if nvcc is None or os.path.exists(os.path.join(os.path.dirname(os.path.dirname(nvcc)), "include", "cuda.h")):
        return
    try:
        out = subprocess.run([nvcc, "-dryrun", "-c", "-x", "cu", os.devnull, "-o", os.devnull], capture_output=True,
                             text=True, timeout=60)
    except (OSError, subprocess.SubprocessError):
        return
    m = re.search(r"TOP=(\S+)", out.stdout + out.stderr)
    if m and os.path.exists(os.path.join(m.group(1), "include", "cuda.h")):
        os.environ["CUDA_HOME"] = os.path.realpath(m.group(1))


def _cuda_skip_reason(torch, cpp_extension) -> str | None:
    """None when the CUDA extension should be built, else why not."""
    if _env_on("BREGMAN_KERNELS_SKIP_CUDA"):
        return "skipped at build time (BREGMAN_KERNELS_SKIP_CUDA=1)"
    if torch.version.cuda is None:
        return f"torch {torch.__version__} is not a CUDA build"
    if cpp_extension.CUDA_HOME is None:
        return "the CUDA toolkit (nvcc) was not found at build time; set CUDA_HOME or put nvcc on PATH, then rebuild"
    nvcc = _nvcc_version(cpp_extension.CUDA_HOME)
    if nvcc is None:
        return f"nvcc under {cpp_extension.CUDA_HOME} did not run"
    if nvcc.split(".")[0] != torch.version.cuda.split(".")[0]:
        return (f"CUDA version mismatch: nvcc {nvcc} but torch {torch.__version__} was built with CUDA "
                f"{torch.version.cuda}; install a toolkit of the same major version (or the matching torch wheel)")
    return None


def _extensions():
    _locate_cuda_home()
    try:
        import torch
        from torch.utils import cpp_extension
    except ImportError:
        _say("torch is not importable: building the pure-Python package only (backend 'eager'); install torch "
             "first and use `pip install --no-build-isolation -e .`")
        return [], {}, None

    debug = _env_on("BREGMAN_KERNELS_DEBUG")
    opt = ["-O0", "-g", "-UNDEBUG"] if debug else ["-O3"]
    cxx = list(opt)  # the C++ standard comes from torch (C++17 or C++20 by version)
    x86 = platform.machine().lower() in ("x86_64", "amd64", "i686", "x86") and sys.platform != "win32"
    cpu_sources = ["csrc/cpu/ops_cpu.cpp", "csrc/cpu/kernels_default.cpp"]
    cpu_sources += ["csrc/fused_mlp/mlp_cpu.cpp", "csrc/fused_mlp/mlp_train.cpp", "csrc/fused_mlp/mlp_default.cpp"]
    isa = {src: flags for src, flags in ISA_FLAGS.items() if x86}
    if not x86:  # the per-ISA files then define empty tables
        cpu_sources += list(ISA_FLAGS)
    cpu = cpp_extension.CppExtension("bregman_kernels._C", cpu_sources, extra_compile_args={"cxx": cxx})
    cpu.isa_sources = isa
    exts = [cpu]

    cuda_reason = _cuda_skip_reason(torch, cpp_extension)
    if cuda_reason is None:
        os.environ.setdefault("TORCH_CUDA_ARCH_LIST", DEFAULT_ARCHS)
        nvcc = ["-O0", "-lineinfo"] if debug else ["-O3"]
        inc = [f for d in _nvidia_include_dirs() for f in ("-idirafter", d)]
        exts.append(cpp_extension.CUDAExtension(
            "bregman_kernels._C_cuda", ["csrc/cuda/ops_cuda.cpp", "csrc/cuda/kernels.cu"],
            extra_compile_args={"cxx": cxx + inc, "nvcc": nvcc}))
        _say(f"building the CUDA extension for TORCH_CUDA_ARCH_LIST={os.environ['TORCH_CUDA_ARCH_LIST']}")
    else:
        _say(f"not building the CUDA extension: {cuda_reason}")

    class Build(cpp_extension.BuildExtension):
        """BuildExtension with per-file ISA flags for the CPU kernels and an optional CUDA extension."""

        def _status_paths(self) -> list[str]:
            """Where the package will look: next to the built extensions, and in the source tree when in place."""
            paths = [os.path.join(self.build_lib, "bregman_kernels", STATUS_FILE)]
            if self._in_place:
                pkg = self.get_finalized_command("build_py").get_package_dir("bregman_kernels")
                paths.append(os.path.join(pkg, STATUS_FILE))
            return paths

        def _record(self, reason: str | None) -> None:
            for path in self._status_paths():
                if reason is None:
                    if os.path.exists(path):
                        os.remove(path)
                    continue
                os.makedirs(os.path.dirname(path), exist_ok=True)
                with open(path, "w") as f:
                    f.write(reason.strip() + "\n")

        def run(self):
            self._in_place = bool(self.inplace or getattr(self, "editable_mode", False))
            if cuda_reason is not None:
                self._record(cuda_reason)
            super().run()

        def build_extension(self, ext):
            if ext.name.endswith("_C_cuda"):
                try:
                    super().build_extension(ext)
                except Exception as e:  # the CUDA extension is optional: report, record, go on
                    reason = f"the CUDA extension failed to build ({type(e).__name__}: {e}); see the build log"
                    _say(f"WARNING: {reason}")
                    self._record(reason)
                    self.extensions = [e for e in self.extensions if e is not ext]
                    return
                self._record(None)
                return
            isa_sources = getattr(ext, "isa_sources", {})
            if isa_sources:
                base = ext.extra_compile_args["cxx"] if isinstance(ext.extra_compile_args, dict) else []
                objects = []
                for src, flags in isa_sources.items():
                    objects += self.compiler.compile(
                        [src], output_dir=self.build_temp, macros=ext.define_macros, include_dirs=ext.include_dirs,
                        debug=self.debug, extra_postargs={"cxx": [*base, *flags]}, depends=ext.depends)
                ext.extra_objects = [o for o in ext.extra_objects if o not in objects] + objects
            super().build_extension(ext)

    return exts, {"build_ext": Build}, cuda_reason


ext_modules, cmdclass, _ = _extensions()
setup(ext_modules=ext_modules, cmdclass=cmdclass)
