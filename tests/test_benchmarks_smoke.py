"""Smoke test of the benchmark suite: its modules import, one tiny case of each kind runs, the report renders."""

import json
import sys
from pathlib import Path

import pytest
import torch

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from benchmarks import common as C  # noqa: E402
from benchmarks import report  # noqa: E402

CPU = torch.device("cpu")


def test_modules_import():
    import benchmarks.conftest as conf
    import benchmarks.test_bench_memory  # noqa: F401
    import benchmarks.test_bench_models as models
    import benchmarks.test_bench_op  # noqa: F401

    assert {"composite", "compiled", "bk-eager"} <= set(C.providers())
    assert models.providers()[:2] == ["bregmanet", "compiled"]
    assert conf.machine_description()["torch"] == torch.__version__


@pytest.mark.parametrize("act", C.ALL_ACTS)
def test_composites_agree_with_the_op(act):
    """Both baselines compute the op (bregmanet-style formulas agree away from their weak spots)."""
    x, z = C.make_inputs(act, 4 * C.ROW, torch.float64, CPU)
    ref = C.op_fn("bk-eager", act)(x, z)
    torch.testing.assert_close(C.composite_fn(act)(x, z), ref, rtol=1e-6, atol=1e-9)
    torch.testing.assert_close(C.careful_fn(act)(x, z), ref, rtol=1e-12, atol=1e-12)


def test_tiny_case_and_accounting():
    x, z = C.make_inputs("tanh", 2 * C.ROW, torch.float32, CPU)
    run = C.step_fn(C.op_fn("bk-eager", "tanh"), x, z, "fwdbwd")
    gx, gz = run()
    assert gx.shape == x.shape and gz.shape == z.shape and torch.isfinite(gx).all()
    assert C.bytes_moved(x.numel(), x.dtype, "fwdbwd") == 8 * x.numel() * 4
    rounds, iterations = C.plan(run, CPU, budget_s=0.01)
    assert rounds >= 3 and iterations >= 1
    assert C.copy_bandwidth(x.numel(), x.dtype, CPU) > 0
    xr, zr = x.clone().requires_grad_(), z.clone().requires_grad_()
    saved, extra = C.saved_bytes(lambda: C.op_fn("bk-eager", "tanh")(xr, zr), (xr, zr))
    assert (saved, extra) == (2 * x.numel() * 4, 0)  # the fused op keeps x and z only
    _, extra = C.saved_bytes(lambda: C.composite_fn("tanh")(xr, zr), (xr, zr))
    assert extra > 0


def test_report_renders(tmp_path):
    def bench(test, provider, median, **params):
        params["provider"] = provider
        return {"name": f"{test}[x]", "params": params, "extra_info": {"gbps": 1.0, "pct_of_copy": 50.0},
                "stats": {"median": median, "min": median, "rounds": 3}}

    data = {"machine_info": {"bregman_kernels": {"cpu_count": 2, "load_avg_start": [9.0, 0, 0]}},
            "datetime": "2026-01-01", "benchmarks": [
                bench("test_op", "composite", 4.0, mode="fwd", act="tanh", dtype="float32", size="small"),
                bench("test_op", "compiled", 2.0, mode="fwd", act="tanh", dtype="float32", size="small"),
                bench("test_op", "bk-cpp", 1.0, mode="fwd", act="tanh", dtype="float32", size="small"),
                bench("test_train_step", "bregmanet", 3.0, model="mlp"),
                bench("test_train_step", "bk-cpp", 1.0, model="mlp")]}
    path = tmp_path / "r.json"
    path.write_text(json.dumps(data))
    assert report.main([str(path), "--out", str(tmp_path / "out")]) == 0
    md = (tmp_path / "out" / "report.md").read_text()
    assert "| fwd-tanh-float32-small | 2.00× | 4.00× |" in md  # compiled, bk-cpp over the composite
    assert "loaded machine" in md
    assert "| op fwd float32 small | bk-cpp | 4.00× | 2.00× |" in md


def test_report_load_verdict_discounts_own_threads():
    """A run's own torch threads raise the load average at its end; only other processes' load flags the report."""
    from benchmarks import report

    def section(start, end, threads=2):
        bkm = {"cpu_count": 2, "torch_threads": threads, "load_avg_start": [start, 0, 0], "load_avg_end": [end, 0, 0]}
        return "\n".join(report.machine_section({"bregman_kernels": bkm}, "now"))

    assert "loaded machine" not in section(0.3, 2.2)
    assert "loaded machine" in section(0.3, 4.5)
    assert "loaded machine" in section(2.0, 2.0)
