#!/usr/bin/python3
"""Times torchvision's SSD300 (ssd300_vgg16) on the CPU, for comparison with `ssd bench`.

The same network as our SSD300 export (VGG16 atrous base, L2Norm on conv4_3, the same extras and
heads, 8732 default boxes, 21 VOC classes), random weights (no download), input 300x300, the same
number of threads. Two timings:

  raw heads   model.backbone + model.head on a ready [1, 3, 300, 300] tensor: the counterpart of
              our bare session.run of a --postprocess none model;
  full model  model([image]) in eval mode: torchvision's resize/normalise transform, the network,
              box decoding and per-class NMS (score_thresh set to --threshold, as our pipeline
              thresholds before NMS), i.e. what a torchvision user runs per image.

Run with Debian's python3-torchvision (not a pyenv Python):
    /usr/bin/python3 scripts/bench-torchvision.py --threads 2 --frames 20 [--json]
"""
import argparse
import json
import platform
import statistics
import sys
import time

import torch
import torchvision
from torchvision.models.detection import ssd300_vgg16


def percentile(values, p):
    s = sorted(values)
    # Nearest rank, as runtime/bench.ts computes it.
    k = max(0, min(len(s) - 1, -(-p * len(s) // 100) - 1))
    return s[int(k)]


def timed(fn, frames, warmup):
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(frames):
        t0 = time.perf_counter()
        fn()
        times.append((time.perf_counter() - t0) * 1000.0)
    return times


def summary(times):
    return {
        "p50_ms": percentile(times, 50),
        "p95_ms": percentile(times, 95),
        "mean_ms": statistics.fmean(times),
        "fps": 1000.0 * len(times) / sum(times),
    }


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--threads", type=int, default=2, help="torch intra-op threads (default 2)")
    ap.add_argument("--frames", type=int, default=20, help="timed runs of each variant (default 20)")
    ap.add_argument("--warmup", type=int, default=2, help="untimed runs first (default 2)")
    ap.add_argument("--threshold", type=float, default=0.5, help="score_thresh of the full model (default 0.5)")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--json", action="store_true", help="print one JSON object")
    args = ap.parse_args()

    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    model = ssd300_vgg16(weights=None, weights_backbone=None, num_classes=21)
    model.eval()
    model.score_thresh = args.threshold
    params = sum(p.numel() for p in model.parameters())

    image = torch.rand(3, 300, 300)
    batch = model.transform([image])[0].tensors  # [1, 3, 300, 300], normalised as the model expects

    def raw_heads():
        with torch.inference_mode():
            feats = list(model.backbone(batch).values())
            model.head(feats)

    def full():
        with torch.inference_mode():
            model([image])

    raw = summary(timed(raw_heads, args.frames, args.warmup))
    end_to_end = summary(timed(full, args.frames, args.warmup))
    result = {
        "runtime": f"torch {torch.__version__} / torchvision {torchvision.__version__} (CPU)",
        "model": "ssd300_vgg16, random weights, 21 classes",
        "parameters": params,
        "input": "300x300",
        "threads": args.threads,
        "frames": args.frames,
        "raw_heads": raw,
        "full_model": end_to_end,
        "python": platform.python_version(),
    }
    if args.json:
        print(json.dumps(result))
        return 0
    print(f"{result['runtime']}, {result['model']} ({params:,} parameters), input 300x300, {args.threads} threads, {args.frames} frames")
    for name, r in (("raw heads (backbone + head)", raw), ("full model (transform + net + decode/NMS)", end_to_end)):
        print(f"  {name:<44} p50 {r['p50_ms']:8.1f} ms  p95 {r['p95_ms']:8.1f} ms  {r['fps']:6.2f} fps")
    return 0


if __name__ == "__main__":
    sys.exit(main())
