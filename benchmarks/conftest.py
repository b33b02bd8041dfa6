"""pytest-benchmark set-up: the machine description stored with every result file.

Run: ``pytest benchmarks/ --benchmark-only`` (see docs/benchmarks.md for selections and the environment knobs).
"""

from __future__ import annotations

import os
import platform

import torch

from benchmarks import common


def _cpu_model() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def machine_description() -> dict:
    """CPU model, cores, threads, load, torch/triton versions, device and the backends found."""
    import bregman_kernels as bk

    dev = common.device()
    info = {
        "cpu_model": _cpu_model(),
        "cpu_count": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "torch": torch.__version__,
        "bench_device": str(dev),
        "backends": bk.available_backends(dev),
        "quick": common.quick(),
    }
    if _LOAD_START:
        info["load_avg_start"] = list(_LOAD_START)
    try:
        import triton

        info["triton"] = triton.__version__
    except ImportError:
        info["triton"] = None
    if dev.type == "cuda":
        props = torch.cuda.get_device_properties(dev)
        info["gpu"] = props.name
        info["gpu_memory_gib"] = round(props.total_memory / 2**30, 1)
        info["cuda"] = torch.version.cuda
    return info


_LOAD_START: list = []


def pytest_configure(config):
    try:
        _LOAD_START[:] = os.getloadavg()
    except OSError:
        pass
    threads = os.environ.get("BENCH_THREADS", "").strip()
    if threads:
        torch.set_num_threads(int(threads))


def pytest_benchmark_update_machine_info(config, machine_info):
    machine_info["bregman_kernels"] = machine_description()


def pytest_benchmark_update_json(config, benchmarks, output_json):
    output_json.get("commit_info", {})["project"] = "bregman_kernels"  # not the checkout's folder name
    try:
        output_json["machine_info"].setdefault("bregman_kernels", {})["load_avg_end"] = list(os.getloadavg())
    except OSError:
        pass
