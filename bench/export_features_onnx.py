#!/usr/bin/python3
"""Makes the onnxruntime side of the features-{resnet50,googlenet} bench cases (bench/features.ts).

hardneg's own exporter (src/export) writes small-cnn only, so the torchvision twin of each backbone
is exported here with torch.onnx.export. Not needed at run time: without its output the bench
reports the onnxruntime arm as skipped and says to run this script.

The weights are deterministic random ones (torch.manual_seed(0), torchvision's own initialisation;
no download). They are written twice: as a torch.save state dict, which hardneg's side loads by
the same official names as `hardneg features --weights`, and inside the ONNX model, so both sides
compute the same function and the bench can compare their features as well as their speed.

The feature extractor is what `hardneg features` computes in evaluation mode: ResNet-50 up to its
global average pooling (2048 features; pooling 'avg'), GoogLeNet with transform_input up to its
average pooling (1024 features), both with fc (and GoogLeNet's dropout) replaced by identities.
Input float32 [n, 3, 224, 224] NCHW, named 'images', with a dynamic batch axis; output 'features'.

Usage: /usr/bin/python3 bench/export_features_onnx.py [--backbone resnet50|googlenet|all] [--out-dir bench/out]
Writes OUT_DIR/features-<backbone>.onnx and OUT_DIR/features-<backbone>.pth (bench/out is git-ignored).
Needs Debian's python3-torch and python3-torchvision (torch 1.13's exporter; no onnx package needed).
"""
import argparse
import os

import torch
import torch.nn as nn
import torchvision


def build(name):
    if name == "resnet50":
        return torchvision.models.resnet50(weights=None)
    # transform_input as the official code (and hardneg's googlenet default); aux heads off, as
    # hardneg deletes them; init_weights so that the random weights are torchvision's own.
    return torchvision.models.googlenet(weights=None, aux_logits=False, transform_input=True, init_weights=True)


def main():
    here = os.path.dirname(os.path.abspath(__file__))
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--backbone", choices=["resnet50", "googlenet", "all"], default="all")
    p.add_argument("--out-dir", default=os.path.join(here, "out"))
    p.add_argument("--opset", type=int, default=13)
    a = p.parse_args()
    os.makedirs(a.out_dir, exist_ok=True)
    for name in ["resnet50", "googlenet"] if a.backbone == "all" else [a.backbone]:
        torch.manual_seed(0)
        model = build(name)
        # BatchNorm running statistics other than torchvision's fresh (0, 1), so that evaluation
        # mode's normalisation does real work on both sides.
        g = torch.Generator().manual_seed(1)
        for m in model.modules():
            if isinstance(m, nn.BatchNorm2d):
                m.running_mean.copy_(torch.randn(m.num_features, generator=g) * 0.1)
                m.running_var.copy_(torch.rand(m.num_features, generator=g) * 0.5 + 0.75)
        model.eval()
        pth = os.path.join(a.out_dir, f"features-{name}.pth")
        torch.save(model.state_dict(), pth)
        model.fc = nn.Identity()
        if hasattr(model, "dropout"):
            model.dropout = nn.Identity()
        onnx_path = os.path.join(a.out_dir, f"features-{name}.onnx")
        with torch.no_grad():
            torch.onnx.export(
                model,
                torch.zeros(1, 3, 224, 224),
                onnx_path,
                input_names=["images"],
                output_names=["features"],
                dynamic_axes={"images": {0: "n"}, "features": {0: "n"}},
                opset_version=a.opset,
                do_constant_folding=True,
            )
        print(f"{name}: {onnx_path} ({os.path.getsize(onnx_path) >> 20} MiB), {pth}")


if __name__ == "__main__":
    main()
