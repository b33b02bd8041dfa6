"""pytest-benchmark JSON → markdown report of speedups (medians) and a PNG plot.

    python benchmarks/report.py RESULTS.json [MORE.json ...] --out DIR [--title TITLE] [--short]

Writes DIR/report.md (machine, op-level speedups over the eager composite and over torch.compile, bandwidth as
a % of a copy, memory saved for backward, model train steps) and DIR/speedups.png when matplotlib is importable
(the markdown says so when it is not). --short prints a few-line summary (geometric means) to stdout last.
Speedup of a provider = median time of the baseline / median time of the provider, per case.
"""

from __future__ import annotations

import argparse
import json
import math
import os
from collections import defaultdict

EAGER = ("composite", "bregmanet")  # eager baseline: op level, model level
COMPILED = "compiled"


def load(paths: list[str]) -> tuple[list[dict], dict, str]:
    """(benchmarks, machine_info, datetime) of one or more pytest-benchmark JSON files."""
    rows, machine, when = [], {}, ""
    for p in paths:
        with open(p) as f:
            d = json.load(f)
        machine = machine or d.get("machine_info", {})
        when = when or d.get("datetime", "")
        for b in d.get("benchmarks", []):
            params = dict(b.get("params") or {})
            rows.append({
                "test": b["name"].split("[")[0],
                "provider": params.pop("provider", "copy"),
                "case": "-".join(str(v) for _, v in sorted(params.items(), key=lambda kv: _ORDER.get(kv[0], 9))),
                "params": params,
                "median": b["stats"]["median"],
                "min": b["stats"]["min"],
                "rounds": b["stats"]["rounds"],
                "extra": b.get("extra_info", {}),
            })
    return rows, machine, when


_ORDER = {"model": 0, "mode": 1, "act": 2, "dtype": 3, "size": 4}


def by_case(rows: list[dict], test: str) -> dict:
    out: dict = defaultdict(dict)
    for r in rows:
        if r["test"] == test:
            out[r["case"]][r["provider"]] = r
    return dict(out)


def speedup(case: dict, provider: str, baselines) -> float | None:
    for b in (baselines,) if isinstance(baselines, str) else baselines:
        if b in case and provider in case:
            return case[b]["median"] / case[provider]["median"]
    return None


def geomean(vals) -> float | None:
    vals = [v for v in vals if v and v > 0]
    return math.exp(sum(math.log(v) for v in vals) / len(vals)) if vals else None


def _x(v: float | None) -> str:
    return "–" if v is None else f"{v:.2f}×"


def _t(sec: float) -> str:
    return f"{sec * 1e6:.0f} µs" if sec < 1e-3 else f"{sec * 1e3:.2f} ms" if sec < 1 else f"{sec:.2f} s"


def _mib(nbytes: float) -> str:
    v = nbytes / 2**20
    return "<0.01" if 0 < v < 0.01 else f"{v:.3g}"


def _providers(cases: dict) -> list[str]:
    seen: list[str] = []
    for c in cases.values():
        seen += [p for p in c if p not in seen]
    first = [p for p in (*EAGER, COMPILED) if p in seen]
    return first + sorted(p for p in seen if p not in first)


def machine_section(machine: dict, when: str) -> list[str]:
    bkm = machine.get("bregman_kernels", {})
    lines = ["## Machine", ""]
    lines.append(f"- date: {when or 'unknown'}")
    lines.append(f"- device: {bkm.get('bench_device', '?')}" + (f" ({bkm['gpu']}, {bkm.get('gpu_memory_gib')} GiB, "
                                                               f"CUDA {bkm.get('cuda')})" if bkm.get("gpu") else ""))
    lines.append(f"- CPU: {bkm.get('cpu_model', machine.get('cpu', {}).get('brand_raw', '?'))}, "
                 f"{bkm.get('cpu_count', '?')} logical cores, torch threads {bkm.get('torch_threads', '?')}")
    lines.append(f"- torch {bkm.get('torch', '?')}, triton {bkm.get('triton')}, Python "
                 f"{machine.get('python_version', '?')}; backends found: {', '.join(bkm.get('backends', []))}")
    loads = [(w, bkm[f"load_avg_{w}"][0]) for w in ("start", "end") if bkm.get(f"load_avg_{w}")]
    if loads:
        lines.append("- 1-minute load average: " + ", ".join(f"{v:.1f} at {w}" for w, v in loads))
        cores = bkm.get("cpu_count") or 1
        # others' load: all of it before the run, beyond the benchmark's own threads at its end
        own = {"start": 0, "end": bkm.get("torch_threads") or 1}
        if max(v - own[w] for w, v in loads) > 0.5 * cores + 0.5:
            lines += ["", f"**Taken on a loaded machine** (load average of other processes above half of the {cores} "
                          "cores): they competed for the CPU, so times are noisy and medians are reported."]
    return lines + [""]


def op_sections(rows: list[dict]) -> list[str]:
    cases = by_case(rows, "test_op")
    if not cases:
        return []
    provs = _providers(cases)
    others = [p for p in provs if p not in EAGER]
    fused = [p for p in others if p != COMPILED]
    out = ["## Op level", "", "Speedup = median time of the baseline / median time of the provider. Case: "
           "mode-activation-dtype-size (small = 256 Ki elements, 4Mi, 64Mi).", ""]
    out += ["### Speedup over the eager composite", "", "| case | " + " | ".join(others) + " |",
            "|---|" + "---:|" * len(others)]
    out += [f"| {k} | " + " | ".join(_x(speedup(c, p, EAGER)) for p in others) + " |" for k, c in cases.items()]
    out += ["", "### Speedup over torch.compile of the composite", "", "| case | " + " | ".join(fused) + " |",
            "|---|" + "---:|" * len(fused)]
    out += [f"| {k} | " + " | ".join(_x(speedup(c, p, COMPILED)) for p in fused) + " |" for k, c in cases.items()]
    out += ["", "### Times and bandwidth", "", "GB/s counts the minimum traffic of a fused op (forward: x, z, y; "
            "backward: grad, x, z, gx, gz) for every provider; % copy relates it to torch.empty_like(x).copy_(x) "
            "measured in the same run.", "", "| case | provider | median | min | GB/s | % copy | rounds |",
            "|---|---|---:|---:|---:|---:|---:|"]
    for k, c in cases.items():
        for p in provs:
            if p in c:
                r, e = c[p], c[p]["extra"]
                out.append(f"| {k} | {p} | {_t(r['median'])} | {_t(r['min'])} | {e.get('gbps', '–')} | "
                           f"{e.get('pct_of_copy', '–')} | {r['rounds']}×{e.get('iterations', 1)} |")
    copies = by_case(rows, "test_copy")
    if copies:
        out += ["", "Copy yardstick (`x.clone()`): " + ", ".join(
            f"{k}: {c['copy']['extra'].get('gbps')} GB/s" for k, c in copies.items() if "copy" in c)]
    return out + [""]


def memory_section(rows: list[dict]) -> list[str]:
    cases = by_case(rows, "test_saved_memory")
    if not cases:
        return []
    provs = _providers(cases)
    out = ["## Memory saved for backward (4 Mi elements)", "",
           "Distinct storages autograd holds after one forward; 'beyond inputs' leaves out x and z themselves.", "",
           "| case | provider | saved MiB | beyond inputs MiB | in tensors of x's size | GPU peak MiB |",
           "|---|---|---:|---:|---:|---:|"]
    for k, c in cases.items():
        for p in provs:
            if p in c:
                e = c[p]["extra"]
                peak = _mib(e["peak_bytes"]) if "peak_bytes" in e else "–"
                out.append(f"| {k} | {p} | {_mib(e.get('saved_bytes', 0))} | {_mib(e.get('saved_extra_bytes', 0))} | "
                           f"{e.get('saved_in_tensors', '–')} | {peak} |")
    return out + [""]


def model_section(rows: list[dict]) -> list[str]:
    cases = by_case(rows, "test_train_step")
    if not cases:
        return []
    provs = _providers(cases)
    out = ["## Model level: one training step", "", "bregmanet = the seed library's model (eager composite); "
           "compiled = torch.compile of it; bk-* = bregman_kernels.nn on each backend. Saved MiB: what autograd holds "
           "after the forward, weights saved by the linear layers included.", "",
           "| model | provider | median | min | × vs bregmanet | × vs compiled | saved MiB (with weights) |",
           "|---|---|---:|---:|---:|---:|---:|"]
    for k, c in cases.items():
        for p in provs:
            if p in c:
                r = c[p]
                out.append(f"| {k} | {p} | {_t(r['median'])} | {_t(r['min'])} | {_x(speedup(c, p, EAGER))} | "
                           f"{_x(speedup(c, p, COMPILED))} | {_mib(r['extra'].get('saved_bytes', 0))} |")
    return out + [""]


def summary(rows: list[dict]) -> list[tuple[str, str, float | None, float | None]]:
    """(group, provider, geomean speedup over eager, over compiled) for op modes and models."""
    out = []
    # op level: one group per mode, dtype and size (the geometric mean is over activations)
    for test, keys in (("test_op", ("mode", "dtype", "size")), ("test_train_step", ("model",))):
        cases = by_case(rows, test)

        def group(params, keys=keys):
            return " ".join(str(params.get(k)) for k in keys)

        groups = sorted({group(r["params"]) for r in rows if r["test"] == test})
        for g in groups:
            sub = {k: c for k, c in cases.items() if group(next(iter(c.values()))["params"]) == g}
            for p in _providers(sub):
                if p in EAGER:
                    continue
                out.append((f"{'op' if test == 'test_op' else 'model'} {g}", p,
                            geomean(speedup(c, p, EAGER) for c in sub.values()),
                            geomean(speedup(c, p, COMPILED) for c in sub.values()) if p != COMPILED else None))
    return out


def plot(rows: list[dict], path: str, title: str) -> str | None:
    """Bar charts of speedups over the eager baseline; returns why it was not drawn, or None."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError as e:
        return f"matplotlib is not installed ({e})"
    panels = [(t, m) for t, m in (("test_op", "fwd"), ("test_op", "fwdbwd"), ("test_train_step", None))
              if any(r["test"] == t and (m is None or r["params"].get("mode") == m) for r in rows)]
    if not panels:
        return "no op or model results"
    from matplotlib.ticker import FuncFormatter, LogLocator, NullFormatter

    every = _providers({**by_case(rows, "test_op"), **by_case(rows, "test_train_step")})
    colors = {p: f"C{i}" for i, p in enumerate(p for p in every if p not in EAGER)}
    fig, axes = plt.subplots(len(panels), 1, figsize=(12, 3.6 * len(panels)), squeeze=False)
    for ax, (test, mode) in zip(axes[:, 0], panels):
        cases = {k: c for k, c in by_case(rows, test).items()
                 if mode is None or next(iter(c.values()))["params"].get("mode") == mode}
        provs = [p for p in _providers(cases) if p not in EAGER]
        width = 0.8 / max(1, len(provs))
        for i, p in enumerate(provs):
            vals = [speedup(c, p, EAGER) or 0.0 for c in cases.values()]
            ax.bar([j + i * width for j in range(len(cases))], vals, width, label=p, color=colors[p])
        ax.axhline(1.0, color="black", lw=0.8)
        ax.set_yscale("log")
        ax.yaxis.set_major_locator(LogLocator(base=10, subs=(1.0, 2.0, 5.0)))
        ax.yaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))
        ax.yaxis.set_minor_formatter(NullFormatter())
        ax.set_xticks([j + 0.4 - width / 2 for j in range(len(cases))])
        labels = [k.removeprefix(f"{mode}-") if mode else k for k in cases]
        ax.set_xticklabels(labels, rotation=40, ha="right", fontsize=7)
        ax.set_ylabel("speedup over eager (×)")
        ax.set_title(f"{title}: " + (f"op, {mode}" if mode else "model train step"), fontsize=9)
        ax.legend(fontsize=7, ncol=len(provs))
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return None


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("json", nargs="+")
    ap.add_argument("--out", required=True)
    ap.add_argument("--title", default="bregman_kernels benchmarks")
    ap.add_argument("--short", action="store_true", help="print a summary table to stdout")
    args = ap.parse_args(argv)
    paths = [p for p in args.json if os.path.exists(p)]
    rows, machine, when = load(paths)
    os.makedirs(args.out, exist_ok=True)
    why = plot(rows, os.path.join(args.out, "speedups.png"), args.title)
    md = [f"# {args.title}", "", f"Source: {', '.join(os.path.basename(p) for p in paths)}; all times are medians "
          "unless marked min.", ""]
    md += machine_section(machine, when)
    md += ["## Summary (geometric mean of per-case speedups)", "", "| group | provider | × vs eager | × vs compiled |",
           "|---|---|---:|---:|"]
    md += [f"| {g} | {p} | {_x(a)} | {_x(b)} |" for g, p, a, b in summary(rows)]
    md += ["", "![speedups](speedups.png)" if why is None else f"(No plot: {why}.)", ""]
    md += op_sections(rows) + memory_section(rows) + model_section(rows)
    with open(os.path.join(args.out, "report.md"), "w") as f:
        f.write("\n".join(md))
    if args.short:
        print(f"{'group':<28} {'provider':<22} {'x eager':>9} {'x compiled':>11}")
        for g, p, a, b in summary(rows):
            print(f"{g:<28} {p:<22} {_x(a):>9} {_x(b):>11}")
    print(f"report: {os.path.join(args.out, 'report.md')} ({len(rows)} results)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
