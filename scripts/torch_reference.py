#!/usr/bin/env python3
"""PyTorch side of scripts/gpu-check.sh (runs on the GPU machine).

  torch_reference.py bench OUT.json [--n N ...] [--d D] [--loss L ...] [--deadline SECONDS]
      Times forward+backward of SupCon and SINCERE written the way the public
      reference code is (full N x N similarity matrix, N x N masks, log-sum-exp,
      autograd), eager and under torch.compile, at each N; notes out-of-memory.
      Also measures the GPU's matrix ceilings (FP32 and TF32 products). Every
      eager case runs first; OUT.json is rewritten after every case.
  torch_reference.py crosscheck SINCERE_BINARY OUT.json [--n N]
      Runs `sincere loss --device cuda` on random unit embeddings and compares
      its loss and gradient with the same formulas in float64 on the GPU.
  torch_reference.py selftest [--golden internal/kernels/testdata/golden/losses.json]
      On the CPU, in float64: the reference formulas against the project's
      golden losses and gradients, and the multi-view training losses of
      `train` against the reference formulas on two-view batches. Exit
      status 1 on a mismatch.
  torch_reference.py train OUT.json [--case ARCH:CxHxW:BATCH ...] [--mode eager|compile ...]
                                    [--loss L] [--steps S] [--warmup W] [--deadline SECONDS]
                                    [--device cuda|cpu] [--width W]
      Times whole pretraining steps (both views forward, the loss, backward,
      SGD with momentum 0.9 and weight decay 1e-4) the way the SINCERE
      authors' main_supcon.py takes them: their SupConResNet (resnet18,
      resnet50: scripts/torch_check.py's ResNet, the layout of their
      networks/resnet_big.py) or this project's small cnn, embeddings of shape
      (B, 2, D) into their multi-view loss classes, rebuilt here. TF32 on
      (torch.backends.cuda.matmul.allow_tf32, cudnn.allow_tf32), cudnn
      autotuning on, images in channels_last, eager and under torch.compile:
      ms/step (CUDA events, median after a warm-up), images/s, peak memory
      (torch.cuda.max_memory_allocated), the step's flops as PyTorch counts
      them, and cuBLAS's TF32 rate on 8192^3 as the ceiling. The default
      cases are scripts/gpu-check.sh's: cnn:1x28x28:128, cnn:1x28x28:512,
      resnet18:3x32x32:512, resnet50:3x32x32:512. Every eager case runs
      before any compiled one; a case the --deadline leaves no time for is
      skipped and says so. OUT.json is rewritten after every case.

The losses follow DESIGN section 2: anchors without positives are left out,
SupCon with base temperature b = tau, SINCERE's denominator holds one
positive and the anchor's negatives. scripts/gpu_check_report.py turns the
JSON into the GPU check's table.
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
    times = step_timer(True)(lambda _: fn(), runs)
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
    started = time.time()
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
    # Every eager case first, then the compiled ones while the deadline
    # allows; the file is rewritten after every case.
    for mode in ("eager", "compile"):
        for loss in args.loss:
            fn = LOSSES[loss]
            if mode == "compile":
                if loss not in compiled:
                    compiled[loss] = torch.compile(fn, dynamic=True)
                fn_mode = compiled[loss]
            else:
                fn_mode = fn
            for n in args.n:
                row = {"loss": loss, "mode": mode, "n": n, "d": args.d}
                t0 = time.time()
                left = args.deadline - (t0 - started)
                if left < (30 if mode == "compile" else 5):
                    row["skipped"] = "%.0f s of the deadline left" % max(left, 0)
                    print(json.dumps(row), flush=True)
                    out["rows"].append(row)
                    continue
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
                write_json(args.out, out)
    write_json(args.out, out)


# --------------------------------------------------------------------------
# Whole training steps, as the SINCERE authors' main_supcon.py takes them.

class MultiviewSupCon:
    """SupCon as the authors train with it (their SupConLoss, base temperature
    = tau): embeddings (B, V, D), the views stacked view after view, each row
    against every other row of the batch. Written with masks rather than
    boolean indexing, so that a step has no host sync and compiles whole."""

    def __init__(self, tau):
        self.tau = tau

    def __call__(self, emb, labels):
        import torch
        views = emb.shape[1]
        z = torch.cat(torch.unbind(emb, dim=1), dim=0)                  # (V*B, D)
        y = labels.repeat(views)
        n = z.shape[0]
        s = z @ z.T / self.tau
        s = s - s.max(dim=1, keepdim=True).values.detach()
        others = 1 - torch.eye(n, device=z.device, dtype=z.dtype)
        pos = (y[:, None] == y[None, :]).to(z.dtype) * others
        log_den = torch.log((torch.exp(s) * others).sum(1, keepdim=True))
        per_anchor = (pos * (s - log_den)).sum(1) / pos.sum(1)
        return -per_anchor.mean()


class MultiviewSINCERE:
    """SINCERE (eps = 0) or eps-SupInfoNCE as the authors train with them
    (their Multiview*Loss classes): embeddings (B, V, D), the views of an image
    side by side; each positive pair against the anchor's negatives alone."""

    def __init__(self, tau, eps=0.0):
        self.tau, self.eps = tau, eps

    def __call__(self, emb, labels):
        import torch
        b, views, d = emb.shape
        z = emb.reshape(b * views, d)
        y = labels.repeat_interleave(views)
        n = z.shape[0]
        s = z @ z.T / self.tau
        same = y[:, None] == y[None, :]
        neg_lse = torch.logsumexp(s.masked_fill(same, float("-inf")), dim=1, keepdim=True)
        pos = same & ~torch.eye(n, dtype=torch.bool, device=z.device)
        terms = torch.where(pos, torch.logaddexp(s - self.eps, neg_lse) - s, torch.zeros_like(s))
        return (terms.sum(1) / pos.sum(1)).mean()


TRAIN_LOSSES = {"sincere": lambda tau: MultiviewSINCERE(tau),
                "supcon": lambda tau: MultiviewSupCon(tau),
                "eps-supinfonce": lambda tau: MultiviewSINCERE(tau, 0.25)}

# The cases scripts/gpu-check.sh times, ARCH:CxHxW:BATCH (images before the
# two views).
TRAIN_CASES = ["cnn:1x28x28:128", "cnn:1x28x28:512", "resnet18:3x32x32:512", "resnet50:3x32x32:512"]

# About how long torch.compile takes for a network's training step on a
# fresh machine (seconds): a compiled case starts only with this much left.
COMPILE_SECONDS = {"cnn": 45, "resnet18": 75, "resnet50": 120}


def parse_case(text):
    """ARCH:CxHxW:BATCH -> (arch, (C, H, W), batch)."""
    try:
        arch, shape, batch = text.split(":")
        c, h, w = (int(v) for v in shape.split("x"))
        batch = int(batch)
    except ValueError:
        raise SystemExit("torch_reference: --case %r: want ARCH:CxHxW:BATCH, e.g. resnet18:3x32x32:512" % text)
    if arch not in ("cnn", "resnet18", "resnet50") or min(c, h, w, batch) < 1:
        raise SystemExit("torch_reference: --case %r: arch cnn, resnet18 or resnet50, positive sizes" % text)
    return arch, (c, h, w), batch


def build_network(arch, shape, width, embedding=128):
    """The authors' SupConResNet for resnet18/resnet50 (or this project's small
    cnn) with the head features -> features -> ReLU -> embedding, from
    scripts/torch_check.py's definitions, initialised as the authors do."""
    import torch.nn as nn
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    from torch_check import Network, scaled
    feat = {"cnn": scaled(128, width), "resnet18": scaled(512, width), "resnet50": 4 * scaled(512, width)}[arch]
    meta = {"input": "%dx%dx%d" % shape, "width": str(width), "arch": arch, "head": "projection",
            "out": str(embedding), "head_hidden": str(feat)}
    net = Network(meta)
    for m in net.modules():
        if isinstance(m, nn.Conv2d):
            nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
        elif isinstance(m, nn.BatchNorm2d):
            nn.init.constant_(m.weight, 1)
            nn.init.constant_(m.bias, 0)
    return net


def step_timer(cuda):
    """Returns time_steps(step, n): the milliseconds of each of n calls of
    step(i), by CUDA events on a GPU, else by the host clock."""
    import torch

    def time_steps(step, n, first=0):
        times = []
        for i in range(first, first + n):
            if cuda:
                start = torch.cuda.Event(enable_timing=True)
                stop = torch.cuda.Event(enable_timing=True)
                start.record()
                step(i)
                stop.record()
                stop.synchronize()
                times.append(start.elapsed_time(stop))
            else:
                t0 = time.perf_counter()
                step(i)
                times.append((time.perf_counter() - t0) * 1e3)
        return times
    return time_steps


def count_flops(fn):
    """Flops of fn() (forward and backward) as PyTorch's FlopCounterMode
    counts them (matrix products and convolutions), None where torch has no
    counter."""
    try:
        from torch.utils.flop_counter import FlopCounterMode
    except ImportError:
        return None
    with FlopCounterMode(display=False) as counter:
        fn()
    return counter.get_total_flops()


def train_case(args, arch, shape, batch, mode, dev, started):
    """One row of `train`: a network's whole training step, timed."""
    import torch
    cuda = dev.type == "cuda"
    row = {"arch": arch, "input": list(shape), "batch": batch, "views": 2, "loss": args.loss, "mode": mode,
           "width": args.width, "steps": args.steps, "warmup": args.warmup}
    left = args.deadline - (time.time() - started)
    need = COMPILE_SECONDS[arch] if mode == "compile" else 10
    if mode == "compile" and not hasattr(torch, "compile"):
        row["skipped"] = "torch %s has no torch.compile" % torch.__version__
        return row
    if left < need:
        row["skipped"] = "%.0f s of the deadline left, %s needs about %d" % (max(left, 0), mode, need)
        return row
    net = opt = batches = None
    try:
        torch.manual_seed(1)
        net = build_network(arch, shape, args.width).to(dev)
        if cuda:
            net = net.to(memory_format=torch.channels_last)
        row["params"] = sum(p.numel() for p in net.parameters())
        opt = torch.optim.SGD(net.parameters(), lr=0.05, momentum=0.9, weight_decay=1e-4)
        criterion = TRAIN_LOSSES[args.loss](0.1)
        # Several input sets in turn, so that the timed steps do not re-read
        # one batch from the cache; labels as the balanced sampler deals them.
        g = torch.Generator().manual_seed(2)
        batches = []
        for _ in range(3):
            x = torch.randn(2 * batch, *shape, generator=g).to(dev)
            if cuda:
                x = x.contiguous(memory_format=torch.channels_last)
            y = (torch.arange(batch) % 10)[torch.randperm(batch, generator=g)].to(dev)
            batches.append((x, y))

        def forward_loss(x, y):
            _, emb = net(x)                                                 # (2B, D)
            emb = torch.stack(torch.split(emb, [batch, batch], dim=0), dim=1)  # (B, 2, D)
            return criterion(emb, y)

        fwd = torch.compile(forward_loss) if mode == "compile" else forward_loss
        net.train()
        last = {}

        def step(i):
            x, y = batches[i % len(batches)]
            opt.zero_grad(set_to_none=True)
            loss = fwd(x, y)
            loss.backward()
            opt.step()
            last["loss"] = loss

        if mode == "eager":
            x, y = batches[0]
            row["flops_per_step"] = count_flops(lambda: forward_loss(x, y).backward())
            opt.zero_grad(set_to_none=True)
        time_steps = step_timer(cuda)
        t0 = time.time()
        first = time_steps(step, 1)[0]
        if mode == "compile":
            row["compile_s"] = time.time() - t0
        else:
            row["first_ms"] = first
        if cuda:
            torch.cuda.synchronize()
            row["mem_first_mib"] = torch.cuda.memory_allocated() / 2 ** 20
        time_steps(step, max(args.warmup - 1, 0), 1)
        if cuda:
            torch.cuda.synchronize()
            torch.cuda.reset_peak_memory_stats()
        times = time_steps(step, args.steps, args.warmup)
        value = float(last["loss"].item())
        if not math.isfinite(value):
            raise RuntimeError("the loss is %r" % value)
        ms = statistics.median(times)
        row.update(ms=ms, min_ms=min(times), max_ms=max(times), loss_value=value,
                   images_per_s=batch / (ms / 1e3), views_per_s=2 * batch / (ms / 1e3))
        if row.get("flops_per_step"):
            row["tflops"] = row["flops_per_step"] / (ms / 1e3) / 1e12
        if cuda:
            row.update(peak_mib=torch.cuda.max_memory_allocated() / 2 ** 20,
                       reserved_mib=torch.cuda.max_memory_reserved() / 2 ** 20,
                       mem_last_mib=torch.cuda.memory_allocated() / 2 ** 20)
    except OOM as e:
        row.update(oom=True, error=str(e).splitlines()[0][:200])
    except Exception as e:  # noqa: BLE001 - report and go on
        row["error"] = repr(e)[:400]
    finally:
        net = opt = batches = None
        if cuda:
            torch.cuda.empty_cache()
        if mode == "compile":
            torch._dynamo.reset()
    return row


def rel_l2(got, want):
    """||got - want|| / ||want|| (the absolute norm where want is 0)."""
    den = want.norm().item()
    return (got - want).norm().item() / (den if den > 0 else 1.0)


def cmd_selftest(args):
    import torch
    worst = 0.0
    bad = []
    with open(args.golden) as f:
        cases = json.load(f)["cases"]
    for c in cases:
        z = torch.tensor(c["embeddings"], dtype=torch.float64).reshape(int(c["n"]), int(c["d"])).requires_grad_(True)
        y = torch.tensor(c["labels"])
        tau = float(c["temperature"])
        fn = LOSSES[c["loss"]]
        if c["loss"] == "eps-supinfonce":
            fn = lambda z, y, tau, eps=float(c["epsilon"]): sincere_reference(z, y, tau, eps)
        loss = fn(z, y, tau)
        loss.backward()
        want = float(c["expected_loss"])
        lerr = abs(loss.item() - want) / max(abs(want), 1e-12)
        gerr = rel_l2(z.grad, torch.tensor(c["expected_grad"], dtype=torch.float64).reshape(z.shape))
        worst = max(worst, lerr, gerr)
        if not (lerr <= 1e-9 and gerr <= 1e-9):
            bad.append("golden %s, %s: loss %r (want %r), gradient rel L2 %.3g" % (c["note"], c["loss"], loss.item(), want, gerr))
    print("reference formulas vs %d golden cases: worst relative error %.3g" % (len(cases), worst))
    g = torch.Generator().manual_seed(3)
    worst = 0.0
    for name, mv in TRAIN_LOSSES.items():
        for b, classes in ((16, 4), (12, 12), (10, 1)):
            emb = torch.randn(b, 2, 8, generator=g, dtype=torch.float64)
            emb = (emb / emb.norm(dim=2, keepdim=True)).requires_grad_(True)
            y = torch.randint(0, classes, (b,), generator=g)
            # The same rows flat, each image's two views side by side.
            flat = emb.detach().reshape(2 * b, 8).clone().requires_grad_(True)
            got = mv(0.1)(emb, y)
            got.backward()
            want = LOSSES[name](flat, y.repeat_interleave(2), 0.1)
            want.backward()
            lerr = abs(got.item() - want.item()) / max(abs(want.item()), 1e-12)
            gerr = rel_l2(emb.grad.reshape(2 * b, 8), flat.grad)
            worst = max(worst, lerr, gerr)
            if not (lerr <= 1e-12 and gerr <= 1e-12):
                bad.append("multi-view %s, B %d, %d classes: loss %r vs %r, gradient rel L2 %.3g" % (
                    name, b, classes, got.item(), want.item(), gerr))
    print("multi-view training losses vs the reference formulas: worst relative error %.3g" % worst)
    for line in bad:
        print("MISMATCH " + line)
    return 1 if bad else 0


def write_json(path, obj):
    """Writes obj to path whole: a temporary file, then a rename."""
    tmp = path + ".tmp"
    with open(tmp, "w") as f:
        json.dump(obj, f, indent=1)
    os.replace(tmp, path)


def cmd_train(args):
    import torch
    global OOM
    OOM = getattr(torch, "OutOfMemoryError", getattr(torch.cuda, "OutOfMemoryError", MemoryError))
    started = time.time()
    if args.device == "cuda" and not torch.cuda.is_available():
        raise SystemExit("torch_reference: torch %s sees no CUDA device (use --device cpu for a dry run)" % torch.__version__)
    dev = torch.device(args.device)
    out = {"torch": torch.__version__, "device": args.device, "loss": args.loss, "rows": []}
    if dev.type == "cuda":
        # TF32 for matrix products and cuDNN convolutions (cuDNN's default),
        # and cuDNN's autotuning, as the authors' set_model turns it on.
        torch.backends.cuda.matmul.allow_tf32 = True
        torch.backends.cudnn.allow_tf32 = True
        torch.backends.cudnn.benchmark = True
        out.update(gpu=torch.cuda.get_device_name(0), cudnn=torch.backends.cudnn.version(),
                   allow_tf32=True, channels_last=True)
        try:
            out["matmul_tf32_tflops"] = matmul_ceiling("tf32")
            torch.backends.cuda.matmul.allow_tf32 = True
        except Exception as e:  # noqa: BLE001 - report and go on
            out["matmul_tf32_error"] = repr(e)[:300]
    else:
        torch.set_num_threads(max(1, min(4, os.cpu_count() or 1)))
    cases = [parse_case(c) for c in args.case]
    for mode in args.mode:
        for arch, shape, batch in cases:
            t0 = time.time()
            row = train_case(args, arch, shape, batch, mode, dev, started)
            row["wall_s"] = time.time() - t0
            print(json.dumps(row), flush=True)
            out["rows"].append(row)
            write_json(args.out, out)
    write_json(args.out, out)


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
    write_json(args.out, results)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="cmd", required=True)
    b = sub.add_parser("bench")
    b.add_argument("out")
    b.add_argument("--n", type=int, action="append")
    b.add_argument("--d", type=int, default=128)
    b.add_argument("--loss", action="append")
    b.add_argument("--deadline", type=float, default=1e9, help="seconds this command may take: cases that would not fit are skipped")
    c = sub.add_parser("crosscheck")
    c.add_argument("binary")
    c.add_argument("out")
    c.add_argument("--n", type=int, action="append")
    c.add_argument("--precision", action="append")
    st = sub.add_parser("selftest")
    st.add_argument("--golden", default=os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "internal",
                                                     "kernels", "testdata", "golden", "losses.json"))
    t = sub.add_parser("train")
    t.add_argument("out")
    t.add_argument("--case", action="append", help="ARCH:CxHxW:BATCH (repeatable; default: %s)" % " ".join(TRAIN_CASES))
    t.add_argument("--mode", action="append", choices=["eager", "compile"], help="default: eager, then compile")
    t.add_argument("--loss", default="sincere", choices=sorted(TRAIN_LOSSES))
    t.add_argument("--steps", type=int, default=10, help="timed steps (the median is reported)")
    t.add_argument("--warmup", type=int, default=3, help="untimed steps first (compilation and autotuning)")
    t.add_argument("--deadline", type=float, default=1e9, help="seconds this command may take: cases that would not fit are skipped")
    t.add_argument("--device", default="cuda", choices=["cuda", "cpu"])
    t.add_argument("--width", type=float, default=1.0, help="width multiplier of the networks (dry runs)")
    args = ap.parse_args()
    if args.cmd == "bench":
        args.n = args.n or [1024, 8192, 32768, 65536, 262144]
        args.loss = args.loss or ["sincere", "supcon"]
        cmd_bench(args)
    elif args.cmd == "selftest":
        sys.exit(cmd_selftest(args))
    elif args.cmd == "train":
        args.case = args.case or TRAIN_CASES
        args.mode = args.mode or ["eager", "compile"]
        if args.steps < 1 or args.warmup < 1:
            raise SystemExit("torch_reference: --steps and --warmup must be at least 1")
        cmd_train(args)
    elif args.cmd == "crosscheck":
        args.n = args.n or [4096]
        args.precision = args.precision or ["tf32x3", "tf32", "fp32"]
        cmd_crosscheck(args)


if __name__ == "__main__":
    main()
