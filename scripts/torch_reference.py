#!/usr/bin/env python3
"""PyTorch side of scripts/gpu-check.sh (runs on the GPU machine).

  torch_reference.py bench OUT.json [--n N ...] [--d D]
      Times forward+backward of SupCon and SINCERE written the way the public
      reference code is (full N x N similarity matrix, N x N masks, log-sum-exp,
      autograd), eager and under torch.compile, at each N; notes out-of-memory.
      Also measures the GPU's matrix ceilings (FP32 and TF32 products).
  torch_reference.py crosscheck SINCERE_BINARY OUT.json [--n N]
      Runs `sincere loss --device cuda` on random unit embeddings and compares
      its loss and gradient with the same formulas in float64 on the GPU.
  torch_reference.py report OUT.txt BENCH.jsonl... --torch TORCH.json [--crosscheck CC.json]
      Prints the final table (and writes it to OUT.txt). Needs no torch.

The losses follow DESIGN section 2: anchors without positives are left out,
SupCon with base temperature b = tau, SINCERE's denominator holds one
positive and the anchor's negatives.
"""

import argparse
import json
import math
import os
import statistics
import subprocess
import sys
import tempfile
import time


# --------------------------------------------------------------------------
# The reference formulas, as the public code writes them: every step an
# N x N tensor.

def supcon_reference(z, y, tau):
    import torch
    n = z.shape[0]
    sim = torch.matmul(z, z.T) / tau                                  # N x N
    logits_max, _ = torch.max(sim, dim=1, keepdim=True)
    logits = sim - logits_max.detach()                                # N x N
    same = torch.eq(y.view(-1, 1), y.view(1, -1)).float()             # N x N
    not_self = torch.ones_like(same) - torch.eye(n, device=z.device)  # N x N
    pos_mask = same * not_self                                        # N x N
    exp_logits = torch.exp(logits) * not_self                         # N x N
    log_prob = logits - torch.log(exp_logits.sum(1, keepdim=True))    # N x N
    pos_count = pos_mask.sum(1)
    anchors = pos_count > 0
    mean_log_prob_pos = (pos_mask * log_prob).sum(1)[anchors] / pos_count[anchors]
    return -mean_log_prob_pos.mean()


def sincere_reference(z, y, tau, eps=0.0):
    import torch
    n = z.shape[0]
    sim = torch.matmul(z, z.T) / tau                                  # N x N
    same = torch.eq(y.view(-1, 1), y.view(1, -1))                     # N x N
    self_mask = torch.eye(n, dtype=torch.bool, device=z.device)       # N x N
    pos_mask = same & ~self_mask                                      # N x N
    neg_mask = ~same                                                  # N x N
    # M_i: log-sum-exp over the anchor's negatives
    neg_logits = sim.masked_fill(~neg_mask, float("-inf"))            # N x N
    m = torch.logsumexp(neg_logits, dim=1, keepdim=True)
    # l_ip = -s_ip + log(exp(s_ip - eps) + exp(M_i))
    denom = torch.logaddexp(sim - eps, m)                             # N x N
    terms = (denom - sim) * pos_mask                                  # N x N
    pos_count = pos_mask.sum(1)
    anchors = pos_count > 0
    return (terms.sum(1)[anchors] / pos_count[anchors]).mean()


OOM = MemoryError  # torch's out-of-memory error once torch is imported

LOSSES = {"supcon": supcon_reference, "sincere": sincere_reference,
          "eps-supinfonce": lambda z, y, tau: sincere_reference(z, y, tau, 0.25)}


def batch(n, d, classes, seed, device, dtype):
    import torch
    g = torch.Generator(device="cpu").manual_seed(seed)
    z = torch.randn(n, d, generator=g, dtype=torch.float64)
    z = z / z.norm(dim=1, keepdim=True)
    y = torch.arange(n) % classes
    y = y[torch.randperm(n, generator=g)]
    return z.to(device=device, dtype=dtype), y.to(device)


def time_cuda(fn, warmup=1, runs=5):
    """Median milliseconds of fn() over runs, timed with CUDA events."""
    import torch
    for _ in range(warmup):
        fn()
    torch.cuda.synchronize()
    times = []
    for _ in range(runs):
        start = torch.cuda.Event(enable_timing=True)
        stop = torch.cuda.Event(enable_timing=True)
        start.record()
        fn()
        stop.record()
        stop.synchronize()
        times.append(start.elapsed_time(stop))
    return statistics.median(times), min(times), max(times)


def matmul_ceiling(dtype_name):
    """TFLOP/s of an 8192^3 product through PyTorch (cuBLAS), median of 10."""
    import torch
    old = torch.backends.cuda.matmul.allow_tf32
    torch.backends.cuda.matmul.allow_tf32 = dtype_name == "tf32"
    try:
        a = torch.randn(8192, 8192, device="cuda")
        b = torch.randn(8192, 8192, device="cuda")
        med, _, _ = time_cuda(lambda: torch.matmul(a, b), warmup=3, runs=10)
        return 2 * 8192 ** 3 / (med / 1e3) / 1e12
    finally:
        torch.backends.cuda.matmul.allow_tf32 = old


def cmd_bench(args):
    import torch
    global OOM
    OOM = getattr(torch, "OutOfMemoryError", torch.cuda.OutOfMemoryError)
    dev = torch.device("cuda")
    out = {"gpu": torch.cuda.get_device_name(0), "torch": torch.__version__,
           "allow_tf32": torch.backends.cuda.matmul.allow_tf32, "d": args.d, "rows": []}
    for name in ("fp32", "tf32"):
        try:
            out[f"matmul_{name}_tflops"] = matmul_ceiling(name)
        except Exception as e:  # noqa: BLE001 - report and go on
            out[f"matmul_{name}_tflops"] = None
            out[f"matmul_{name}_error"] = repr(e)[:300]
    torch.cuda.empty_cache()
    compiled = {}
    for loss in args.loss:
        fn = LOSSES[loss]
        for mode in ("eager", "compile"):
            if mode == "compile":
                if loss not in compiled:
                    compiled[loss] = torch.compile(fn, dynamic=True)
                fn_mode = compiled[loss]
            else:
                fn_mode = fn
            for n in args.n:
                row = {"loss": loss, "mode": mode, "n": n, "d": args.d}
                t0 = time.time()
                z = y = None
                try:
                    z, y = batch(n, args.d, 10, 1, dev, torch.float32)
                    z.requires_grad_(True)
                    torch.cuda.reset_peak_memory_stats()
                    base = torch.cuda.memory_allocated()

                    def step():
                        z.grad = None
                        fn_mode(z, y, 0.1).backward()

                    med, lo, hi = time_cuda(step, warmup=2 if mode == "compile" else 1, runs=5)
                    row.update(ms=med, min_ms=lo, max_ms=hi,
                               peak_mib=(torch.cuda.max_memory_allocated() - base) / 2 ** 20)
                except OOM as e:
                    row.update(oom=True, error=str(e).splitlines()[0][:200])
                except Exception as e:  # noqa: BLE001 - report and go on
                    row.update(error=repr(e)[:300])
                finally:
                    z = y = None
                    torch.cuda.empty_cache()
                row["wall_s"] = time.time() - t0
                print(json.dumps(row), flush=True)
                out["rows"].append(row)
    with open(args.out, "w") as f:
        json.dump(out, f, indent=1)


def write_npy(path, array):
    import numpy as np
    np.save(path, array)


def cmd_crosscheck(args):
    import numpy as np
    import torch
    dev = torch.device("cuda")
    results = []
    with tempfile.TemporaryDirectory() as tmp:
        for n in args.n:
            z64, y = batch(n, 128, 10, 7, dev, torch.float64)
            z32 = z64.float()
            zpath, ypath = os.path.join(tmp, "z.npy"), os.path.join(tmp, "y.npy")
            write_npy(zpath, z32.cpu().numpy())
            write_npy(ypath, y.cpu().numpy().astype(np.int64))
            for loss in ("supcon", "sincere", "eps-supinfonce"):
                for tau in (0.1, 0.02):
                    for precision in args.precision:
                        row = {"n": n, "loss": loss, "tau": tau, "precision": precision}
                        try:
                            zr = z32.double().clone().requires_grad_(True)
                            ref = LOSSES[loss](zr, y, tau)
                            ref.backward()
                            gpath = os.path.join(tmp, "g.npy")
                            cmd = [args.binary, "loss", "--loss", loss, "--temperature", str(tau), "--epsilon", "0.25",
                                   "--embeddings", zpath, "--labels", ypath, "--grad-out", gpath,
                                   "--device", "cuda", "--precision", precision]
                            p = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
                            if p.returncode != 0:
                                raise RuntimeError(p.stderr.strip()[:300])
                            got = json.loads(p.stdout)
                            g = torch.from_numpy(np.load(gpath)).to(dev, torch.float64)
                            gref = zr.grad
                            row.update(loss_value=got["loss"], ref=ref.item(),
                                       loss_rel=abs(got["loss"] - ref.item()) / max(abs(ref.item()), 1e-6),
                                       grad_rel=((g - gref).norm() / gref.norm()).item(),
                                       finite=bool(torch.isfinite(g).all().item()))
                        except Exception as e:  # noqa: BLE001 - report and go on
                            row["error"] = repr(e)[:300]
                        print(json.dumps(row), flush=True)
                        results.append(row)
    with open(args.out, "w") as f:
        json.dump(results, f, indent=1)


def load_jsonl(path):
    rows = []
    with open(path) as f:
        for line in f:
            line = line.strip()
            if line.startswith("{"):
                rows.append(json.loads(line))
    return rows


def cmd_report(args):
    ours = []
    for path in args.bench:
        if os.path.exists(path):
            ours += load_jsonl(path)
    torch_res = {}
    if args.torch and os.path.exists(args.torch):
        with open(args.torch) as f:
            torch_res = json.load(f)
    lines = []
    gpu = next((r.get("gpu") for r in ours if r.get("gpu")), torch_res.get("gpu", "?"))
    lines.append(f"GPU: {gpu}")
    if torch_res:
        tf = torch_res.get("matmul_tf32_tflops")
        fp = torch_res.get("matmul_fp32_tflops")
        lines.append("cuBLAS 8192^3 through PyTorch %s: FP32 %s TFLOP/s, TF32 %s TFLOP/s; reference code runs with allow_tf32=%s"
                     % (torch_res.get("torch"), f"{fp:.0f}" if fp else "?", f"{tf:.0f}" if tf else "?",
                        torch_res.get("allow_tf32")))
    tref = {}
    for r in torch_res.get("rows", []):
        tref[(r["loss"], r["mode"], r["n"])] = r

    def torch_cell(loss, mode, n):
        r = tref.get((loss, mode, n))
        if r is None:
            return "-", None
        if r.get("oom"):
            return "OOM", None
        if "ms" in r:
            return f"{r['ms']:.1f}", r["ms"]
        return "error", None

    lines.append("")
    lines.append("Forward+backward, D = %d, 10 classes, tau 0.1; ms are medians of 5 runs after a warm-up."
                 % (ours[0]["d"] if ours else 128))
    lines.append("'kernel' is our kernels alone (CUDA events), 'call' the whole engine call with transfers;")
    lines.append("'floor' = max(6N^2D flops at peak matrix rate, 2N^2 exp at peak SFU rate); speedups use 'call'.")
    head = ["loss", "N", "precision", "kernel ms", "call ms", "of floor", "dev MiB", "eager ms", "compile ms", "x eager", "x compile", "torch MiB"]
    table = [head]
    loss_order = {"sincere": 0, "supcon": 1, "eps-supinfonce": 2}
    prec_order = {"tf32x3": 0, "tf32": 1, "fp32": 2}
    for r in sorted(ours, key=lambda r: (loss_order.get(r["loss"], 9), r["n"], prec_order.get(r.get("precision"), 9))):
        n, loss = r["n"], r["loss"]
        e_cell, e_ms = torch_cell(loss, "eager", n)
        c_cell, c_ms = torch_cell(loss, "compile", n)
        peak = tref.get((loss, "eager", n), {}).get("peak_mib")
        floor = r.get("floor_ms") or 0
        kern = r.get("kernel_ms") or 0
        table.append([
            loss, str(n), r.get("precision", "-"), f"{kern:.2f}", f"{r['median_ms']:.2f}",
            f"{100 * floor / kern:.0f}%" if floor and kern else "-",
            f"{r.get('device_scratch_mib', 0):.1f}",
            e_cell, c_cell,
            f"{e_ms / r['median_ms']:.1f}" if e_ms else "-",
            f"{c_ms / r['median_ms']:.1f}" if c_ms else "-",
            f"{peak:.0f}" if peak else "-",
        ])
    widths = [max(len(row[i]) for row in table) for i in range(len(head))]
    for row in table:
        lines.append("  ".join(c.rjust(w) for c, w in zip(row, widths)))
    lines.append("")
    lines.append("Targets (issue 6):")
    for r in sorted(ours, key=lambda r: prec_order.get(r.get("precision"), 9)):
        if r["loss"] != "sincere":
            continue
        if r["n"] == 32768:
            _, e_ms = torch_cell("sincere", "eager", 32768)
            x = e_ms / r["median_ms"] if e_ms else None
            lines.append("  SINCERE N=32768 %-6s: %s x the eager PyTorch time (want >= 10)"
                         % (r.get("precision"), f"{x:.1f}" if x else "?"))
        if r["n"] == 262144:
            mib = r.get("device_scratch_mib", 0)
            lines.append("  SINCERE N=262144 %-6s: runs, %.0f MiB of device memory beyond inputs and outputs (want < 1024)"
                         % (r.get("precision"), mib))
    if args.crosscheck and os.path.exists(args.crosscheck):
        with open(args.crosscheck) as f:
            cc = json.load(f)
        worst = {}
        bad = []
        for r in cc:
            if "error" in r or not r.get("finite", False):
                bad.append(r)
                continue
            w = worst.setdefault(r["precision"], [0.0, 0.0])
            w[0] = max(w[0], r["loss_rel"])
            w[1] = max(w[1], r["grad_rel"])
        lines.append("")
        lines.append("sincere loss --device cuda vs the formulas in float64 on the GPU (N %s, tau 0.1 and 0.02, 3 losses):"
                     % sorted({r["n"] for r in cc}))
        for prec, (l, g) in sorted(worst.items()):
            lines.append(f"  {prec:7s} worst loss rel err {l:.2e}, worst grad rel L2 {g:.2e}")
        for r in bad:
            lines.append(f"  FAILED {r}")
    text = "\n".join(lines) + "\n"
    with open(args.out, "w") as f:
        f.write(text)
    sys.stdout.write(text)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="cmd", required=True)
    b = sub.add_parser("bench")
    b.add_argument("out")
    b.add_argument("--n", type=int, action="append")
    b.add_argument("--d", type=int, default=128)
    b.add_argument("--loss", action="append")
    c = sub.add_parser("crosscheck")
    c.add_argument("binary")
    c.add_argument("out")
    c.add_argument("--n", type=int, action="append")
    c.add_argument("--precision", action="append")
    r = sub.add_parser("report")
    r.add_argument("out")
    r.add_argument("bench", nargs="*")
    r.add_argument("--torch")
    r.add_argument("--crosscheck")
    args = ap.parse_args()
    if args.cmd == "bench":
        args.n = args.n or [1024, 8192, 32768, 65536, 262144]
        args.loss = args.loss or ["sincere", "supcon"]
        cmd_bench(args)
    elif args.cmd == "crosscheck":
        args.n = args.n or [4096]
        args.precision = args.precision or ["tf32x3", "tf32", "fp32"]
        cmd_crosscheck(args)
    else:
        cmd_report(args)


if __name__ == "__main__":
    main()
