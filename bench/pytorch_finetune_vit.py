#!/usr/bin/python3
"""PyTorch reference of bench/finetune.ts for DINO's ViT-S/16: one fine-tuning step of the backbone
(scripts/backbones/vit_s16.py, DINO's architecture) and the official head (BatchNorm1d(384) ->
Linear(384, 384)) on N random images at 224 px: forward in training mode, backward of
L = sum(z * R), one AdamW step (lr 1e-5, weight decay 1e-4) over every parameter.

Usage: /usr/bin/python3 bench/pytorch_finetune_vit.py [--batch 16] [--runs 3] [--threads 2]
Prints one JSON line: {"case", "batch", "median_ms", "min_ms", "runs", "peak_rss_mb", "threads"}.
"""
import argparse
import json
import os
import resource
import statistics
import sys
import time

import torch
import torch.nn as nn

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), '..', 'scripts', 'backbones'))
from vit_s16 import VitS16, WIDTH  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument('--batch', type=int, default=16)
    ap.add_argument('--runs', type=int, default=3)
    ap.add_argument('--threads', type=int, default=os.cpu_count() or 1)
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    torch.manual_seed(0)
    model = nn.Sequential(VitS16(), nn.BatchNorm1d(WIDTH), nn.Linear(WIDTH, WIDTH)).train()
    for p in model[0].parameters():
        nn.init.normal_(p, std=0.02)
    opt = torch.optim.AdamW(model.parameters(), lr=1e-5, weight_decay=1e-4)
    x = torch.randn(a.batch, 3, 224, 224)
    r = torch.randn(a.batch, WIDTH)

    def step() -> None:
        opt.zero_grad(set_to_none=True)
        loss = (model(x) * r).sum()
        loss.backward()
        opt.step()
        loss.item()

    step()  # warm-up
    times = []
    for _ in range(a.runs):
        t0 = time.perf_counter()
        step()
        times.append((time.perf_counter() - t0) * 1000)
    print(json.dumps({
        'case': 'finetune-dino-vits16-pytorch', 'batch': a.batch,
        'median_ms': round(statistics.median(times), 1), 'min_ms': round(min(times), 1), 'runs': a.runs,
        # ru_maxrss: the process's high-water mark in KiB.
        'peak_rss_mb': round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024), 'threads': a.threads,
    }))


if __name__ == '__main__':
    main()
