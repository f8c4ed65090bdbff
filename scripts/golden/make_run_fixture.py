#!/usr/bin/env python3
"""Epoch-level golden fixture (`<name>.run.*`) from the official GCA-HNG training loop.

Usage (Debian's python3-torch, PyTorch 1.13, CPU only; never run by tests or CI):

  /usr/bin/python3 -W ignore scripts/golden/make_run_fixture.py OFFICIAL_REPO --out DIR preset [NAME ...]
  /usr/bin/python3 -W ignore scripts/golden/make_run_fixture.py OFFICIAL_REPO --out DIR verify PREFIX [PREFIX ...]

OFFICIAL_REPO is a working tree of github:PWenJay/GCA-HNG (commit 4333239). The model, losses and
GNN are the official modules, loaded exactly as make_fixtures.py loads them (its `Official`, which
this script imports: one copy of every helper). The loop is train.py's `trainer()` written out
below, statement for statement, minus what cannot run here (data files, tensorboard, tqdm,
checkpoint files, the retrieval metrics); its two helper classes, `AverageMeter` (train.py) and
`BalancedBatchSampler` (scripts/dataset.py), are taken from the official files themselves (their
class definitions only, via `ast`, since importing the files would pull in tensorboardX, PIL and
torchvision). The backbone is a stub with parameters and a BatchNorm2d (`StubBackbone`), built
where the official code builds its ResNet-50 so that warm-up freezing and BN_FREEZE both act on it.
"""
from __future__ import annotations

import argparse
import ast
import hashlib
import json
import os
import sys
import time
from collections import OrderedDict

import numpy as np
import torch
import torch.nn as nn

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from make_fixtures import (Official, load_safetensors, randomise_state, save_safetensors,  # noqa: E402
                           set_dropout_zero, softmax_standin_check, tensor_list, to_np)

GENERATOR = 'make_run_fixture.py'
LOSS_KEYS = ('J_m', 'J_gnnce', 'J_syn', 'J_metric', 'J_softce', 'J_div', 'J_gence', 'J_gen')


class StubBackbone(nn.Module):
    """x [n, F_in, 1, 1] -> Conv2d 1x1 (no bias) -> BatchNorm2d(n_mid) -> tanh -> flatten [n, n_mid].

    tanh, not ReLU: the embedding head's train-mode BatchNorm1d removes any shift common to the
    batch, so through a ReLU whose inputs are all positive the BatchNorm2d bias would get a
    mathematically zero gradient, and Adam would turn its rounding noise into full steps.

    Stands in for scripts/backbone.py's Resnet50 wrapper, and does what its constructor does under
    bn_freeze: BatchNorm2d in eval mode and its weight and bias requires_grad False (QUIRK 6). The
    warm-up loop of train.py turns them back on at its end, like every other backbone parameter."""

    def __init__(self, f_in, n_mid, bn_freeze):
        super().__init__()
        self.conv = nn.Conv2d(f_in, n_mid, 1, bias=False)
        self.bn = nn.BatchNorm2d(n_mid)
        if bn_freeze:
            self.bn.eval()
            self.bn.weight.requires_grad_(False)
            self.bn.bias.requires_grad_(False)

    def forward(self, x):
        return torch.flatten(torch.tanh(self.bn(self.conv(x))), 1)


def official_classes(repo, rel, names, namespace):
    """Executes only the named class definitions of an official file; returns them and the file's sha256."""
    path = os.path.join(repo, rel)
    with open(path, 'rb') as f:
        raw = f.read()
    tree = ast.parse(raw.decode('utf-8'), path)
    body = [n for n in tree.body if isinstance(n, ast.ClassDef) and n.name in names]
    assert sorted(n.name for n in body) == sorted(names), f'{rel}: expected classes {names}'
    exec(compile(ast.Module(body=body, type_ignores=[]), path, 'exec'), namespace)
    return [namespace[n] for n in names], hashlib.sha256(raw).hexdigest()


def make_cfg(spec):
    ns = __import__('types').SimpleNamespace
    return ns(TRAIN=ns(NUM_SAMPLED_CLASSES=spec['P'], NUM_PER_CLASS=spec['K'], EPOCHES=spec['EPOCHS']),
              MODEL=ns(ATT_HEAD=spec['H'], BACKBONE='Resnet50', EMBEDDING_SIZE=spec['D'], GNN_LAYER=spec['L']),
              SOLVER=ns(GRAD_CLIP=True, GRAD_L2_CLIP=spec['GRAD_L2_CLIP'], BASE_LR=spec['BASE_LR'],
                        METRIC_GAMMA=spec['METRIC_GAMMA'], CLASSIFIER_LR=spec['CLASSIFIER_LR'], GNN_LR=spec['GNN_LR'],
                        WEIGHT_DECAY=spec['WEIGHT_DECAY'], EMBEDDING_RATIO=spec['EMBEDDING_RATIO'], LR_POLICY='step',
                        METRIC_DECAY_STEPS=spec['METRIC_DECAY_STEPS'], BN_FREEZE=True, PATCH_FREEZE=False,
                        WARM_UP_EPOCH=spec['WARM_UP_EPOCH']),
              LOSS=ns(ALPHA=spec['alpha'], BETA=spec['beta'], SOFTMAX_FACTOR=spec['softmax_factor'],
                      DOT_WEIGHT=spec['DOT_WEIGHT'], DIV_WEIGHT=spec['DIV_WEIGHT']),
              TEST=ns(EVAL_EPOCH=spec['EVAL_EPOCH']))


def build_model(off, cfg, spec):
    """GCA_HNG as train.py builds it, with the stub where the ResNet-50 would be and an embedding
    head over the stub's n_mid features (the official n_mid is fixed per backbone name)."""
    off.models.Resnet50 = lambda pretrained=True, bn_freeze=True, Pool=True: StubBackbone(spec['F_in'], spec['n_mid'], bn_freeze)
    model = off.models.GCA_HNG(cfg, embedding_size=cfg.MODEL.EMBEDDING_SIZE, n_class=spec['C'], pretrained=False,
                               num_per_class=cfg.TRAIN.NUM_PER_CLASS, is_norm=False, is_pooling=True,
                               bn_freeze=cfg.SOLVER.BN_FREEZE, beta=cfg.LOSS.BETA, gnn_layers=cfg.MODEL.GNN_LAYER,
                               softmax_factor=cfg.LOSS.SOFTMAX_FACTOR)
    model.feature_extractor.fc = nn.Sequential(nn.BatchNorm1d(spec['n_mid']), nn.Linear(spec['n_mid'], spec['D']))
    # Edge dropout 0 (the attention dropout of the edge model): the only random draw left is the mixing.
    set_dropout_zero(model)
    return model


def make_inputs(off, spec):
    """Seeded state0 (every BatchNorm, LayerNorm and attention bias randomised) and synthetic data."""
    seed = spec['seed']
    torch.manual_seed(seed)
    model = build_model(off, make_cfg(spec), spec)
    g = torch.Generator().manual_seed(seed * 7919 + 43)
    randomise_state(model, g, nontrivial=True)
    with torch.no_grad():  # the stub's BatchNorm2d too: its running statistics are what BN_FREEZE uses
        bn = model.feature_extractor.backbone.bn
        n = bn.num_features
        bn.weight.copy_(1 + 0.1 * torch.randn(n, generator=g))
        bn.bias.copy_(0.2 + 0.05 * torch.randn(n, generator=g))
        bn.running_mean.copy_(0.15 * torch.randn(n, generator=g))
        bn.running_var.copy_(torch.exp(0.2 * torch.randn(n, generator=g)))
        bn.num_batches_tracked.fill_(5)
    state0 = OrderedDict((k, v.detach().clone()) for k, v in model.state_dict().items())
    rng = np.random.RandomState(seed)
    C, M, F_in = spec['C'], spec['per_class'], spec['F_in']
    protos = rng.randn(C + spec['C_eval'], F_in)

    def images(classes, per_class):
        y = np.repeat(np.asarray(classes, dtype=np.int64), per_class)
        x = np.logaddexp(0.0, protos[y] + 0.6 * rng.randn(len(y), F_in))  # softplus, as the trajectories
        return x.astype(np.float32), y
    x_train, y_train = images(range(C), M)
    x_eval, y_eval = images(range(C, C + spec['C_eval']), spec['eval_per_class'])
    y_eval = y_eval - C  # the evaluation split's own class indices
    n_draws = spec['EPOCHS'] * spec['ITERS'] * 2 * spec['K'] * (spec['K'] - 1)
    mixing = rng.random_sample(n_draws)
    return state0, x_train, y_train, x_eval, y_eval, mixing


def run_official_loop(off, spec, state0, x_train, y_train, x_eval, mixing):
    """train.py's trainer() on the stub (statement order kept; see the module docstring)."""
    ns = {'np': np, 'BatchSampler': torch.utils.data.sampler.BatchSampler}
    (AverageMeter,), sha_train = official_classes(off.repo, 'train.py', ['AverageMeter'], ns)
    (BalancedBatchSampler,), sha_dataset = official_classes(off.repo, 'scripts/dataset.py', ['BalancedBatchSampler'], ns)
    cfg = make_cfg(spec)
    P, K = spec['P'], spec['K']
    num_per_class = cfg.TRAIN.NUM_PER_CLASS
    # The sampler draws from the global numpy stream (its constructor shuffles the class lists).
    np.random.seed(spec['seed'])
    sampler = BalancedBatchSampler(y_train, n_classes=P, n_samples=K)
    X = torch.tensor(x_train).view(len(x_train), spec['F_in'], 1, 1)
    Y = torch.tensor(y_train)
    X_eval = torch.tensor(x_eval).view(len(x_eval), spec['F_in'], 1, 1)

    model = build_model(off, cfg, spec)
    model.load_state_dict(state0, strict=True)
    epoches = cfg.TRAIN.EPOCHES
    lr_metric = cfg.SOLVER.BASE_LR
    optimizer_s = torch.optim.AdamW(model.softmax_classifier.parameters(), lr=cfg.SOLVER.CLASSIFIER_LR)
    optimizer_gnn = torch.optim.AdamW(model.gnn.parameters(), lr=cfg.SOLVER.GNN_LR, weight_decay=cfg.SOLVER.WEIGHT_DECAY)
    metric_model_param = [{'params': model.feature_extractor.backbone.parameters(), 'lr': lr_metric},
                          {'params': model.feature_extractor.fc.parameters(), 'lr': lr_metric * cfg.SOLVER.EMBEDDING_RATIO}]
    optimizer_c = torch.optim.AdamW(metric_model_param, lr=lr_metric, weight_decay=cfg.SOLVER.WEIGHT_DECAY)
    scheduler_c = torch.optim.lr_scheduler.StepLR(optimizer_c, step_size=cfg.SOLVER.METRIC_DECAY_STEPS, gamma=cfg.SOLVER.METRIC_GAMMA)
    scheduler_gnn = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer_gnn, float(epoches))
    opts = OrderedDict([('opt_c', optimizer_c), ('opt_gnn', optimizer_gnn), ('opt_s', optimizer_s)])
    pname = {id(p): n for n, p in model.named_parameters()}

    J_avg = AverageMeter(1e6)
    J_gen = AverageMeter(1e6)
    expected = OrderedDict()
    per_iter, per_epoch, batches = [], [], []
    it = 0
    draws_per_iter = 2 * K * (K - 1)
    for epoch in range(epoches):
        model.train()
        if cfg.SOLVER.BN_FREEZE:
            for m in model.feature_extractor.modules():
                if isinstance(m, torch.nn.BatchNorm2d):
                    m.eval()
        if cfg.SOLVER.WARM_UP_EPOCH > 0:
            freeze_model_param = set(model.feature_extractor.parameters()).difference(set(model.feature_extractor.fc.parameters()))
            for param in list(freeze_model_param):
                param.requires_grad = epoch >= cfg.SOLVER.WARM_UP_EPOCH
        frozen = sorted(n for n, p in model.named_parameters() if not p.requires_grad)
        epoch_batches = []
        for i, indices in enumerate(sampler):
            epoch_batches.append([int(v) for v in indices])
            x_batch, label = X[indices], Y[indices]
            x_list, label_list = [], []
            for k in range(num_per_class):
                x_list.append(x_batch[k::num_per_class])
                label_list.append(label[k::num_per_class])
            x_batch = torch.cat(x_list, dim=0)
            label = torch.cat(label_list, dim=0)
            # np.random.random() of both GeneralPulling calls: one stream, metric side first.
            off.mixing.set(mixing[it * draws_per_iter:(it + 1) * draws_per_iter], restart=False)
            j_avg_in, j_gen_in = J_avg.avg, J_gen.avg
            lrs = {k: [float(gr['lr']) for gr in o.param_groups] for k, o in opts.items()}
            jgen, jmetric, jm, ce, e_bj, metrics = model(x_batch, label, J_avg.avg, J_gen.avg, optimizer_c, optimizer_s, optimizer_gnn)
            assert off.mixing.pos == draws_per_iter, off.mixing.calls
            jgen = max(jgen.item(), 1.0e-6)
            J_gen.update(jgen)
            jm = max(jm.item(), 1.0e-6)
            J_avg.update(jm)
            phi = float(np.exp(-cfg.LOSS.ALPHA / j_avg_in))
            for k in LOSS_KEYS:
                expected[f'iter{it}/loss/{k}'] = np.float32(metrics[k])
            expected[f'iter{it}/J_avg'] = np.float64(j_avg_in)
            expected[f'iter{it}/J_gen'] = np.float64(j_gen_in)
            expected[f'iter{it}/phi'] = np.float64(phi)
            expected[f'iter{it}/jsyn_weight'] = np.float64(1.0 - e_bj)
            for k, v in lrs.items():
                expected[f'iter{it}/lr/{k}'] = np.asarray(v, dtype=np.float64)
            per_iter.append(OrderedDict([('iteration', it), ('epoch', epoch), ('i', i), ('J_avg', float(j_avg_in)),
                                         ('J_gen', float(j_gen_in)), ('phi=exp(-alpha/J_avg)', phi),
                                         ('jsyn_weight=1-exp(-beta/J_gen)', float(1.0 - e_bj)), ('lr', lrs),
                                         ('losses', {k: float(metrics[k]) for k in LOSS_KEYS})]))
            it += 1
        assert len(epoch_batches) == spec['ITERS'], len(epoch_batches)
        batches.append(epoch_batches)
        if (epoch + 1) % cfg.TEST.EVAL_EPOCH == 0:
            # scripts/evaluate.py: model.eval(), feature_extractor under no_grad (the embeddings the
            # metrics are computed from, before their L2 normalisation); nothing else changes.
            model.eval()
            with torch.no_grad():
                expected[f'epoch{epoch}/eval/embeddings'] = model.feature_extractor(X_eval).detach().clone()
        J_avg.reset()
        J_gen.reset()
        scheduler_c.step()
        scheduler_gnn.step()
        expected[f'epoch{epoch}/J_avg'] = np.float64(J_avg.avg)
        expected[f'epoch{epoch}/J_gen'] = np.float64(J_gen.avg)
        for k, v in model.state_dict().items():
            expected[f'epoch{epoch}/state/{k}'] = v.detach().clone()
        for oname, o in opts.items():
            for grp in o.param_groups:
                for p in grp['params']:
                    st = o.state.get(p)
                    if not st:
                        continue
                    # The step counters show which parameters each epoch trained (warm-up freezing); the
                    # moments are checked by the trajectory fixtures and left out here to keep the files small.
                    n = pname[id(p)]
                    step = st['step'].item() if isinstance(st['step'], torch.Tensor) else st['step']
                    expected[f'epoch{epoch}/{oname}/{n}/step'] = np.int64(int(step))
        per_epoch.append(OrderedDict([('epoch', epoch), ('frozen_parameters', frozen),
                                      ('J_avg_after_reset', float(J_avg.avg)), ('J_gen_after_reset', float(J_gen.avg))]))
    provenance = {'train.py': sha_train, 'scripts/dataset.py': sha_dataset}
    return expected, per_iter, per_epoch, np.asarray(batches, dtype=np.int64), provenance


def compact_json(doc):
    """Indented JSON with every innermost object or list on one line (the tensor lists stay small)."""
    def enc(v, depth):
        pad = ' ' * depth
        flat = json.dumps(v)
        if not isinstance(v, (dict, list)) or len(flat) <= 100 or all(not isinstance(x, (dict, list)) for x in (v.values() if isinstance(v, dict) else v)):
            return flat
        if isinstance(v, dict):
            items = [f'{pad} {json.dumps(k)}: {enc(x, depth + 1)}' for k, x in v.items()]
            return '{\n' + ',\n'.join(items) + '\n' + pad + '}'
        return '[\n' + ',\n'.join(f'{pad} {enc(x, depth + 1)}' for x in v) + '\n' + pad + ']'
    return enc(doc, 0) + '\n'


def make_run(off, name, spec, outdir):
    t0 = time.time()
    state0, x_train, y_train, x_eval, y_eval, mixing = make_inputs(off, spec)
    expected, per_iter, per_epoch, batches, prov = run_official_loop(off, spec, state0, x_train, y_train, x_eval, mixing)
    inputs = OrderedDict()
    inputs['x_train'] = x_train
    inputs['y_train'] = y_train
    inputs['x_eval'] = x_eval
    inputs['y_eval'] = y_eval
    inputs['batches'] = batches
    inputs['mixing'] = np.asarray(mixing, dtype=np.float64)
    for k in INT_KEYS:
        inputs[k] = np.int64(spec[k])
    for k in FLOAT_KEYS:
        inputs[k] = np.float64(spec[k])
    meta = {'case': name, 'generator': GENERATOR, 'official_commit': off.provenance['commit'] or 'unknown'}
    os.makedirs(outdir, exist_ok=True)
    base = os.path.join(outdir, name)
    save_safetensors(base + '.run.inputs.safetensors', inputs, meta)
    save_safetensors(base + '.run.state0.safetensors', state0, meta)
    save_safetensors(base + '.run.expected.safetensors', expected, meta)
    doc = OrderedDict()
    doc['name'] = name
    doc['format'] = 'gcahng-run-fixture-v1'
    doc['case'] = OrderedDict((k, spec[k]) for k in list(INT_KEYS) + list(FLOAT_KEYS))
    doc['files'] = {'inputs': name + '.run.inputs.safetensors', 'state0': name + '.run.state0.safetensors',
                    'expected': name + '.run.expected.safetensors'}
    doc['per_iteration'] = per_iter
    doc['per_epoch'] = per_epoch
    doc['inputs'] = tensor_list(inputs, 'tag')
    doc['state0'] = tensor_list(state0, 'tag')
    doc['expected'] = tensor_list(expected, 'tag')
    official = dict(off.provenance)
    official['loop_files_sha256'] = prov
    official['entry_point'] = "train.py trainer() loop (written out in make_run_fixture.py) around the real GCA_HNG.forward"
    doc['official'] = official
    doc['environment'] = {'torch': torch.__version__, 'numpy': np.__version__, 'threads': torch.get_num_threads(), 'device': 'cpu'}
    doc['notes'] = NOTES
    with open(base + '.run.json', 'w') as f:
        f.write(compact_json(doc))
    print(f'{name}: {spec["EPOCHS"]} epochs x {spec["ITERS"]} iterations, {len(expected)} expected tensors; '
          f'J_avg per epoch {[round(e["J_avg_after_reset"], 4) for e in per_epoch]}; {time.time() - t0:.1f} s')


NOTES = [
    'Model: the official GCA_HNG built as train.py builds it with MODEL.BACKBONE Resnet50, whose backbone is the stub feature_extractor.backbone = Conv2d(F_in, n_mid, 1x1, no bias) -> BatchNorm2d(n_mid) -> tanh -> flatten; the stub constructor does what the official Resnet50 wrapper does under bn_freeze (BatchNorm2d eval, its weight and bias requires_grad False). Embedding head feature_extractor.fc = BatchNorm1d(n_mid) -> Linear(n_mid, D). Images x_train/x_eval are [N, F_in] = NCHW [N, F_in, 1, 1].',
    'Loop: train.py trainer(): per epoch model.train(); BN_FREEZE puts every BatchNorm2d of the feature extractor in eval mode; WARM_UP_EPOCH sets requires_grad False on the feature-extractor parameters outside fc for epoch < WARM_UP_EPOCH and True from then on (which also re-enables the stub BatchNorm2d affine parameters frozen by its constructor). Per batch the class-major batch is reordered x[id::K] into chunk layout, then GCA_HNG.forward(x, y, J_avg.avg, J_gen.avg, opt_c, opt_s, opt_gnn); J_gen and J_avg are updated with max(value, 1e-6). After the epoch: evaluation when (epoch+1) % EVAL_EPOCH == 0, J_avg.reset(), J_gen.reset() (the mean of the epoch values), scheduler_c.step() (StepLR(METRIC_DECAY_STEPS, METRIC_GAMMA)), scheduler_gnn.step() (CosineAnnealingLR(EPOCHS)).',
    'batches [EPOCHS, ITERS, P*K]: the indices into x_train each batch holds, class-major (the K samples of the first drawn class, then the next), as the official BalancedBatchSampler (its own class definition, seeded by np.random.seed(seed)) yielded them, before the x[id::K] reordering.',
    'mixing: every np.random.random() of GeneralPulling in order, one stream for the whole run: per iteration K(K-1) for the metric-side call, then K(K-1) for the generator-side call (2K(K-1) per iteration). Edge (attention) dropout is 0.',
    'iter<g>/*: g counts iterations over the whole run. J_avg, J_gen: the values passed to the forward (1e6 in epoch 0). phi = exp(-alpha/J_avg) (GeneralPulling para_scale), jsyn_weight = 1 - exp(-beta/J_gen). lr/<opt>: every param group\'s learning rate during that iteration (opt_c: [backbone, fc]).',
    'epoch<e>/*: after epoch e ends (evaluation, J reset, scheduler steps). eval/embeddings: feature_extractor(x_eval) in eval mode under no_grad (before the evaluation\'s L2 normalisation). J_avg, J_gen: the means after reset. state/*: the full state dict (BatchNorm buffers included). <opt>/<param>/step: the AdamW step counter of every parameter it has stepped; the backbone parameters have none after epoch 0 (frozen by the warm-up: grad None, skipped).',
    'gnn.gnn.<l>.edge_model.att.k_linear.bias has a mathematically zero gradient: its moments are rounding noise and its value drifts by noise-driven Adam steps; compare it with an absolute tolerance (as the trajectories).',
]
INT_KEYS = ('P', 'K', 'D', 'F_in', 'n_mid', 'L', 'H', 'C', 'C_eval', 'per_class', 'eval_per_class', 'EPOCHS', 'ITERS',
            'seed', 'METRIC_DECAY_STEPS', 'WARM_UP_EPOCH', 'EVAL_EPOCH')
FLOAT_KEYS = ('alpha', 'beta', 'softmax_factor', 'DOT_WEIGHT', 'DIV_WEIGHT', 'BASE_LR', 'EMBEDDING_RATIO', 'CLASSIFIER_LR',
              'GNN_LR', 'WEIGHT_DECAY', 'GRAD_L2_CLIP', 'METRIC_GAMMA')

PRESETS = OrderedDict()
# 5 classes x 4 images, P3 K2: the official sampler yields 3 batches per epoch (while count + B < N).
PRESETS['run_p3k2_d8'] = dict(P=3, K=2, D=8, F_in=6, n_mid=10, L=1, H=2, C=5, C_eval=3, per_class=4, eval_per_class=3,
                              EPOCHS=3, ITERS=3, seed=21, METRIC_DECAY_STEPS=1, WARM_UP_EPOCH=1, EVAL_EPOCH=1,
                              alpha=0.5, beta=20.0, softmax_factor=10.0, DOT_WEIGHT=10.0, DIV_WEIGHT=20.0, BASE_LR=0.004,
                              EMBEDDING_RATIO=1.5, CLASSIFIER_LR=0.003, GNN_LR=0.002, WEIGHT_DECAY=1e-3,
                              GRAD_L2_CLIP=0.05, METRIC_GAMMA=0.5)


def verify_run(off, prefix):
    """Reruns a fixture from its own inputs and state0 and compares every expected tensor."""
    inp = load_safetensors(prefix + '.run.inputs.safetensors')
    st = load_safetensors(prefix + '.run.state0.safetensors')
    ref = load_safetensors(prefix + '.run.expected.safetensors')
    spec = {k: int(inp[k]) for k in INT_KEYS}
    spec.update({k: float(inp[k]) for k in FLOAT_KEYS})
    state0 = OrderedDict((k, torch.tensor(np.array(v))) for k, v in st.items())
    exp, _, _, batches, _ = run_official_loop(off, spec, state0, np.array(inp['x_train']), np.array(inp['y_train']),
                                              np.array(inp['x_eval']), [float(v) for v in inp['mixing']])
    bad = [] if np.array_equal(batches, inp['batches']) else ['batches']
    worst = 0.0
    for n, r in ref.items():
        if n not in exp:
            bad.append(f'{n}: not recomputed')
            continue
        m = to_np(exp[n])[1].astype(np.float64)
        d = float(np.max(np.abs(m - r.astype(np.float64)))) if r.size else 0.0
        scale = float(np.max(np.abs(r))) if r.size else 0.0
        rel = d / scale if scale else d
        worst = max(worst, rel if 'k_linear.bias' not in n else 0.0)
        if rel > 1e-4 and 'k_linear.bias' not in n:
            bad.append(f'{n}: {rel:.3g}')
    print(f'{prefix}: {len(ref)} tensors, worst max-relative diff {worst:.3g}, mismatches {len(bad)}')
    for b in bad[:30]:
        print('  ' + b)
    return 0 if not bad else 1


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument('official_repo', help='working tree of github:PWenJay/GCA-HNG (commit 4333239)')
    ap.add_argument('--out', required=True, help='output folder')
    ap.add_argument('--threads', type=int, default=1, help='torch CPU threads (1 for bit-reproducible files)')
    sub = ap.add_subparsers(dest='mode', required=True)
    pp = sub.add_parser('preset', help='the named presets (default: all)')
    pp.add_argument('names', nargs='*')
    pv = sub.add_parser('verify', help='rerun existing run fixtures (PREFIX, without .run) and compare')
    pv.add_argument('prefixes', nargs='+')
    a = ap.parse_args(argv)
    torch.set_num_threads(a.threads)
    softmax_standin_check()
    off = Official(a.official_repo)
    if a.mode == 'verify':
        return max(verify_run(off, p) for p in a.prefixes)
    for n in a.names or list(PRESETS):
        make_run(off, n, dict(PRESETS[n]), a.out)
    return 0


if __name__ == '__main__':
    sys.exit(main())
