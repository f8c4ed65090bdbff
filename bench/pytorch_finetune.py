#!/usr/bin/python3
"""PyTorch reference of bench/finetune.ts: one fine-tuning step of a torchvision backbone.

The same work as ours: the backbone with every BatchNorm2d in evaluation mode and its affine
parameters frozen (BN_FREEZE), ResNet-50's features as global average + max pooling summed
(POOLING True) or GoogLeNet's average pooling, the embedding head BatchNorm1d (batch statistics)
-> Linear(n_mid, 512), a squared-error loss against a fixed random target, backward, and an AdamW
step over the convolutions and the head. Random weights; images N x 3 x 224 x 224.

Usage: /usr/bin/python3 bench/pytorch_finetune.py --backbone resnet50 [--batch 16] [--runs 3] [--threads 2]
Prints one JSON line: {"case", "batch", "median_ms", "min_ms", "runs", "peak_rss_mb", "ms_per_image"}.
"""
import argparse
import json
import resource
import statistics
import time

import torch
import torch.nn as nn
import torchvision


class ResNet50Features(nn.Module):
    def __init__(self):
        super().__init__()
        self.model = torchvision.models.resnet50()
        self.model.fc = nn.Identity()

    def forward(self, x):
        m = self.model
        x = m.maxpool(m.relu(m.bn1(m.conv1(x))))
        x = m.layer4(m.layer3(m.layer2(m.layer1(x))))
        return torch.amax(x, dim=(2, 3)) + torch.mean(x, dim=(2, 3))


def googlenet_features():
    m = torchvision.models.googlenet(weights=None, aux_logits=False, init_weights=False)
    m.dropout = nn.Identity()
    m.fc = nn.Identity()
    return m


BACKBONES = {'resnet50': (ResNet50Features, 2048), 'googlenet': (googlenet_features, 1024)}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument('--backbone', choices=sorted(BACKBONES), required=True)
    ap.add_argument('--batch', type=int, default=16)
    ap.add_argument('--runs', type=int, default=3)
    ap.add_argument('--threads', type=int, default=2)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    make, features = BACKBONES[args.backbone]
    backbone = make()
    head = nn.Sequential(nn.BatchNorm1d(features), nn.Linear(features, 512))
    backbone.train()
    for mod in backbone.modules():
        if isinstance(mod, nn.BatchNorm2d):
            mod.eval()
            for p in mod.parameters():
                p.requires_grad_(False)
    params = [p for p in list(backbone.parameters()) + list(head.parameters()) if p.requires_grad]
    opt = torch.optim.AdamW(params, lr=1e-5, weight_decay=1e-4)
    images = torch.randn(args.batch, 3, 224, 224)
    target = torch.randn(args.batch, 512)

    def step():
        opt.zero_grad()
        loss = torch.mean((head(backbone(images)) - target) ** 2)
        loss.backward()
        opt.step()

    step()  # warm-up
    times = []
    for _ in range(args.runs):
        t0 = time.perf_counter()
        step()
        times.append((time.perf_counter() - t0) * 1000)
    med = statistics.median(times)
    print(json.dumps({
        'case': f'finetune-{args.backbone}-pytorch',
        'batch': args.batch,
        'median_ms': round(med, 1),
        'min_ms': round(min(times), 1),
        'runs': args.runs,
        'peak_rss_mb': round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024),
        'ms_per_image': round(med / args.batch, 1),
        'threads': torch.get_num_threads(),
        'torch': torch.__version__,
    }))


if __name__ == '__main__':
    main()
