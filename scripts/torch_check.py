#!/usr/bin/env python3
"""Check that a sincere export loads into PyTorch and computes what sincere does.

    python3 scripts/torch_check.py --run runs/quick/sincere-seed1 [--sincere bin/sincere] [--n 256]

With --run it calls `sincere export` and `sincere embed` (the first --n test
images, embeddings and encoder features, and the inputs the encoder took) into
a temporary folder; --export/--embeddings/--features/--inputs take files made
beforehand instead. It then rebuilds the network in PyTorch from the export's
metadata, loads the export with load_state_dict(strict=True), runs it in
evaluation mode on the same inputs and compares, to --tol (1e-4):

  features    the encoder's output
  embeddings  normalize(head(features)), or normalize(features) for a ce run

The ResNet-18 and -50 are the SINCERE authors' SupConResNet / SupCEResNet layout
(networks/resnet_big.py in tufts-ml/SupContrast and HobbitLong/SupContrast):
the same module names, a 3x3 stride-1 stem without max-pooling, basic blocks
(ResNet-18) or bottlenecks (ResNet-50) with a 1x1 convolution + batch norm
shortcut where the shape changes, global average pooling, and the head
Linear-ReLU-Linear. The cnn and mlp are this
project's own small networks, defined here with the names internal/export
documents. Written for this project; it needs only torch and numpy
(Debian: apt-get install python3-torch). The safetensors package is used when
it is installed; otherwise the file is read directly (the format is a
little-endian 8-byte header length, a JSON header, then raw little-endian
arrays).

Exit status 0 when everything matches, 1 when something does not, 2 on a
usage or environment error.
"""
import argparse
import json
import math
import os
import struct
import subprocess
import sys
import tempfile

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F


def read_safetensors(path):
    """Returns ({name: tensor}, metadata) of a safetensors file."""
    try:
        from safetensors.torch import load_file
        from safetensors import safe_open
        with safe_open(path, framework="pt") as f:
            meta = f.metadata() or {}
        return load_file(path), meta
    except ImportError:
        pass
    with open(path, "rb") as f:
        blob = f.read()
    (n,) = struct.unpack("<Q", blob[:8])
    header = json.loads(blob[8:8 + n])
    data = blob[8 + n:]
    meta = header.pop("__metadata__", {})
    kinds = {"F32": np.float32, "I64": np.int64}
    out = {}
    for name, rec in header.items():
        lo, hi = rec["data_offsets"]
        arr = np.frombuffer(data[lo:hi], dtype=np.dtype(kinds[rec["dtype"]]).newbyteorder("<"))
        out[name] = torch.from_numpy(arr.astype(kinds[rec["dtype"]]).reshape(rec["shape"]).copy())
    return out, meta


def scaled(base, width):
    """The channel count sincere uses: round(base * width), at least 1."""
    return max(1, int(math.floor(base * width + 0.5)))


def shortcut(cin, cout, stride):
    """A block's shortcut: the identity, or a strided 1x1 convolution with batch norm where the shape changes."""
    if stride != 1 or cin != cout:
        return nn.Sequential(nn.Conv2d(cin, cout, 1, stride=stride, bias=False), nn.BatchNorm2d(cout))
    return nn.Sequential()


class Block(nn.Module):
    """The ResNet basic block: two 3x3 convolutions with batch norm, plus a shortcut."""

    def __init__(self, cin, cout, stride):
        super().__init__()
        self.conv1 = nn.Conv2d(cin, cout, 3, stride=stride, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(cout)
        self.conv2 = nn.Conv2d(cout, cout, 3, stride=1, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(cout)
        self.shortcut = shortcut(cin, cout, stride)

    def forward(self, x):
        y = F.relu(self.bn1(self.conv1(x)))
        y = self.bn2(self.conv2(y))
        return F.relu(y + self.shortcut(x))


class Bottleneck(nn.Module):
    """ResNet-50's block: 1x1 down to planes, 3x3 (with the stride), 1x1 up to 4 x planes, plus a shortcut."""

    def __init__(self, cin, planes, stride):
        super().__init__()
        cout = 4 * planes
        self.conv1 = nn.Conv2d(cin, planes, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.conv2 = nn.Conv2d(planes, planes, 3, stride=stride, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.conv3 = nn.Conv2d(planes, cout, 1, bias=False)
        self.bn3 = nn.BatchNorm2d(cout)
        self.shortcut = shortcut(cin, cout, stride)

    def forward(self, x):
        y = F.relu(self.bn1(self.conv1(x)))
        y = F.relu(self.bn2(self.conv2(y)))
        y = self.bn3(self.conv3(y))
        return F.relu(y + self.shortcut(x))


class ResNet(nn.Module):
    """The CIFAR ResNet: 3x3 stride-1 stem without max-pooling, four stages, global average pooling."""

    def __init__(self, channels, width, bottleneck):
        super().__init__()
        c = scaled(64, width)
        self.conv1 = nn.Conv2d(channels, c, 3, stride=1, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(c)
        cin = c
        counts = [3, 4, 6, 3] if bottleneck else [2, 2, 2, 2]
        for stage, mult in enumerate([1, 2, 4, 8]):
            planes = scaled(64 * mult, width)
            blocks = []
            for i in range(counts[stage]):
                stride = 2 if (i == 0 and stage > 0) else 1
                if bottleneck:
                    blocks.append(Bottleneck(cin, planes, stride))
                    cin = 4 * planes
                else:
                    blocks.append(Block(cin, planes, stride))
                    cin = planes
            setattr(self, "layer%d" % (stage + 1), nn.Sequential(*blocks))
        self.dim = cin

    def forward(self, x):
        y = F.relu(self.bn1(self.conv1(x)))
        for i in range(1, 5):
            y = getattr(self, "layer%d" % i)(y)
        return torch.flatten(F.adaptive_avg_pool2d(y, 1), 1)


class SmallCNN(nn.Module):
    def __init__(self, channels, width):
        super().__init__()
        c1, c2, c3 = scaled(32, width), scaled(64, width), scaled(128, width)
        self.conv1 = nn.Conv2d(channels, c1, 3, stride=1, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(c1)
        self.conv2 = nn.Conv2d(c1, c2, 3, stride=2, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(c2)
        self.conv3 = nn.Conv2d(c2, c3, 3, stride=2, padding=1, bias=False)
        self.bn3 = nn.BatchNorm2d(c3)
        self.dim = c3

    def forward(self, x):
        y = F.relu(self.bn1(self.conv1(x)))
        y = F.relu(self.bn2(self.conv2(y)))
        y = F.relu(self.bn3(self.conv3(y)))
        return torch.flatten(F.adaptive_avg_pool2d(y, 1), 1)


class MLP(nn.Module):
    def __init__(self, inputs, width):
        super().__init__()
        h = scaled(512, width)
        self.fc1 = nn.Linear(inputs, h, bias=False)
        self.bn1 = nn.BatchNorm1d(h)
        self.fc2 = nn.Linear(h, h, bias=False)
        self.bn2 = nn.BatchNorm1d(h)
        self.dim = h

    def forward(self, x):
        y = F.relu(self.bn1(self.fc1(torch.flatten(x, 1))))
        return F.relu(self.bn2(self.fc2(y)))


class Network(nn.Module):
    """encoder + projection head (SupConResNet's layout) or + fc (SupCEResNet's)."""

    def __init__(self, meta):
        super().__init__()
        c, h, w = (int(v) for v in meta["input"].split("x"))
        width = float(meta["width"])
        arch = meta["arch"]
        if arch in ("resnet18", "resnet50"):
            self.encoder = ResNet(c, width, arch == "resnet50")
        elif arch == "cnn":
            self.encoder = SmallCNN(c, width)
        elif arch == "mlp":
            self.encoder = MLP(c * h * w, width)
        else:
            raise SystemExit("torch_check: no PyTorch definition of architecture %r here" % arch)
        self.classifier = meta["head"] == "classifier"
        dim, out = self.encoder.dim, int(meta["out"])
        if self.classifier:
            self.fc = nn.Linear(dim, out)
        else:
            hidden = int(meta["head_hidden"])
            self.head = nn.Sequential(nn.Linear(dim, hidden), nn.ReLU(inplace=True), nn.Linear(hidden, out))

    def forward(self, x):
        feats = self.encoder(x)
        if self.classifier:
            return feats, F.normalize(feats, dim=1)
        return feats, F.normalize(self.head(feats), dim=1)


def sincere_outputs(args, tmp):
    """Runs sincere export and embed for --run; returns the file paths."""
    paths = {k: os.path.join(tmp, k + ext) for k, ext in
             [("export", ".safetensors"), ("embeddings", ".npy"), ("features", ".npy"), ("inputs", ".npy")]}
    run = lambda *a: subprocess.run([args.sincere, "--quiet", *a], check=True)
    run("export", "--run", args.run, "--format", "safetensors", "--out", paths["export"])
    common = ["embed", "--run", args.run, "--split", "test", "--limit", str(args.n)]
    run(*common, "--out", paths["embeddings"], "--inputs-out", paths["inputs"])
    run(*common, "--features", "--out", paths["features"])
    return paths


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--run", help="a finished run directory (calls sincere export and embed)")
    p.add_argument("--sincere", default=os.path.join(os.path.dirname(__file__), "..", "bin", "sincere"))
    p.add_argument("--n", type=int, default=256, help="test images to compare (with --run)")
    p.add_argument("--export", help="a safetensors file from sincere export")
    p.add_argument("--embeddings", help="sincere embed's output for --inputs")
    p.add_argument("--features", help="sincere embed --features's output for --inputs")
    p.add_argument("--inputs", help="sincere embed --inputs-out's output")
    p.add_argument("--tol", type=float, default=1e-4)
    args = p.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        if args.run:
            try:
                paths = sincere_outputs(args, tmp)
            except (OSError, subprocess.CalledProcessError) as e:
                print("torch_check: %s" % e, file=sys.stderr)
                return 2
        else:
            paths = {k: getattr(args, k) for k in ("export", "embeddings", "features", "inputs")}
            if not all(paths.values()):
                print("torch_check: give --run, or all of --export --embeddings --features --inputs", file=sys.stderr)
                return 2
        state, meta = read_safetensors(paths["export"])
        emb = torch.from_numpy(np.load(paths["embeddings"]))
        feats = torch.from_numpy(np.load(paths["features"]))
        inputs = torch.from_numpy(np.load(paths["inputs"]))
    c, h, w = (int(v) for v in meta["input"].split("x"))
    net = Network(meta)
    result = net.load_state_dict(state, strict=True)
    print("torch %s: %s, %s %s (width %s), %d arrays loaded with strict=True %s" % (
        torch.__version__, meta.get("module"), meta["arch"], meta["head"], meta["width"], len(state), result))
    net.eval()
    with torch.no_grad():
        got_feats, got_emb = net(inputs.reshape(-1, c, h, w))
    ok = True
    for name, got, want in [("features", got_feats, feats), ("embeddings", got_emb, emb)]:
        if got.shape != want.shape:
            print("%s: PyTorch shape %s, sincere's %s" % (name, tuple(got.shape), tuple(want.shape)))
            ok = False
            continue
        err = (got - want).abs().max().item()
        scale = want.abs().max().item()
        good = err <= args.tol * max(1.0, scale)
        ok = ok and good
        print("%s: %d x %d, max |PyTorch - sincere| = %.3g (largest value %.3g) %s" % (
            name, want.shape[0], want.shape[1], err, scale, "ok" if good else "MISMATCH > %g" % args.tol))
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
