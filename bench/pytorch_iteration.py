#!/usr/bin/python3
"""PyTorch reference of bench/iteration.ts: one GCA-HNG training iteration of the generator part.

Written from docs/algorithm.md (sections 3-6), not from the official code. Same shapes,
same work as ours: identity backbone + embedding head (BN1d -> Linear D->D) over fixed features,
pass 1 (graph, GNN, generation with detached edge weights, J_m + J_syn + J_gce, backward), element-wise
clipping, opt_c and opt_gnn steps, the softmax classifier's J_ce step, pass 2 (graph and GNN on sg(z)
with the updated GNN, generation, J_div + J_gence + J_sim, backward), the second opt_gnn step.

It uses the same result-preserving rewrites as ours (docs/algorithm.md section 12.4): keys and values of the edge
attention projected on nodes, then broadcast; the scalar correlation rho is not computed; the
classifier weight gradient of pass 2 is not computed (it is discarded by the next zero_grad).
`--per-edge-kv` projects keys and values on every edge instead, as the official code does.

Usage: /usr/bin/python3 bench/pytorch_iteration.py --shape cub [--runs 3] [--threads 2]
Prints one JSON line per shape: {"case", "median_ms", "min_ms", "runs", "peak_rss_mb", ...}.
"""
import argparse
import json
import math
import resource
import statistics
import time

import torch
import torch.nn.functional as F

SHAPES = {
    'cub': dict(P=27, K=3, D=512, L=2, H=4, C=100),
    'sop': dict(P=40, K=2, D=512, L=1, H=2, C=11318),
    'small': dict(P=10, K=4, D=128, L=1, H=2, C=10),
}

# The G_CUB200 loss weights, as bench/iteration.ts (defaultLossConfig) uses them.
ALPHA, BETA, SOFTMAX_FACTOR, DOT_WEIGHT, DIV_WEIGHT = 4.0, 30.0, 20.0, 10.0, 10.0
J_AVG, J_GEN = 2.0, 20.0
DROPOUT, CLIP = 0.1, 10.0


class Params:
    """Every trainable tensor of one group, created with PyTorch's default-style initialisation."""

    def __init__(self, gen):
        self.gen = gen
        self.tensors = {}

    def linear(self, name, out_dim, in_dim):
        bound = 1 / math.sqrt(in_dim)
        self.tensors[name + '.weight'] = (torch.rand(out_dim, in_dim, generator=self.gen) * 2 - 1) * bound
        self.tensors[name + '.bias'] = (torch.rand(out_dim, generator=self.gen) * 2 - 1) * bound

    def norm(self, name, width):
        self.tensors[name + '.weight'] = torch.ones(width)
        self.tensors[name + '.bias'] = torch.zeros(width)

    def finish(self, frozen=()):
        for name, t in self.tensors.items():
            t.requires_grad_(name not in frozen)
        return self

    def __getitem__(self, name):
        return self.tensors[name]

    def trainable(self):
        return [t for t in self.tensors.values() if t.requires_grad]


def build(shape, seed=0):
    D, L, C = shape['D'], shape['L'], shape['C']
    g = torch.Generator().manual_seed(seed)
    head = Params(g)
    head.norm('bn', D)
    head.linear('fc', D, D)
    gnn = Params(g)
    gnn.linear('dim_red', D, D)
    for l in range(L):
        for n in ('q', 'k', 'v', 'out'):
            gnn.linear(f'node{l}.{n}', D, D)
        gnn.linear(f'node{l}.linear1', 4 * D, D)
        gnn.linear(f'node{l}.linear2', D, 4 * D)
        gnn.linear(f'node{l}.edge_to_node', D, D)
        gnn.norm(f'node{l}.norm', D)
        for n in ('q', 'k', 'v', 'node_to_edge'):
            gnn.linear(f'edge{l}.{n}', D, D)
        gnn.norm(f'edge{l}.norm', D)
        gnn.linear(f'edge{l}.linear0', 4 * D, D)
        gnn.norm(f'edge{l}.linear2', 4 * D)
        gnn.linear(f'edge{l}.linear3', D, 4 * D)
    gnn.norm('bn1', D)
    gnn.norm('bn2', D)
    gnn.linear('fc', D, D)
    gnn.linear('cls', C, D)
    cls = Params(g)
    cls.linear('softmax', C, D)
    buffers = {n: (torch.zeros(D), torch.ones(D)) for n in ('head', 'bn1', 'bn2')}
    return head.finish(), gnn.finish(frozen=('bn1.bias', 'bn2.bias')), cls.finish(), buffers


def batch_norm(x, weight, bias, stats):
    return F.batch_norm(x, stats[0], stats[1], weight, bias, training=True, momentum=0.1, eps=1e-5)


def lin(p, name, x):
    return F.linear(x, p[name + '.weight'], p[name + '.bias'])


def gelu_norm(p, name, x):
    """The layers' shared `norm` block: LayerNorm(GELU(x))."""
    return F.layer_norm(F.gelu(x), (x.shape[-1],), p[name + '.weight'], p[name + '.bias'], 1e-5)


def correlation_graph(z):
    x = z - z.mean(1, keepdim=True)
    x = x / x.norm(dim=1, keepdim=True)
    B, D = z.shape
    return (x[:, None, :] * x[None, :, :]).reshape(B * B, D)


def node_update(p, l, h, A, allowed, H):
    B, D = h.shape
    dh = D / H
    pre = f'node{l}'

    def heads(x):
        return x.view(B, H, D // H).transpose(0, 1)  # [H, B, dh]

    q, k, v = (heads(lin(p, f'{pre}.{n}', h)) for n in ('q', 'k', 'v'))
    scores = q @ k.transpose(1, 2) / math.sqrt(dh)  # [H, target, source]
    scores = scores.masked_fill(~allowed, float('-inf'))
    m = scores.max(-1, keepdim=True)[0].clamp(min=0).detach()
    e = torch.exp(scores - m)
    alpha = e / (e.sum(-1, keepdim=True) + torch.exp(-m))  # implicit null logit 0
    att = lin(p, f'{pre}.out', (alpha @ v).transpose(0, 1).reshape(B, D))
    h1 = gelu_norm(p, f'{pre}.norm', h + att)
    msg = F.gelu(lin(p, f'{pre}.edge_to_node', A)).view(B, B, D).sum(1)
    h2 = gelu_norm(p, f'{pre}.norm', h1 + msg)
    ffn = lin(p, f'{pre}.linear2', F.gelu(lin(p, f'{pre}.linear1', h2)))
    return gelu_norm(p, f'{pre}.norm', h2 + ffn)


def edge_update(p, l, h, A, per_edge_kv):
    B, D = h.shape
    pre = f'edge{l}'
    f = F.gelu(lin(p, f'{pre}.node_to_edge', h))
    q = lin(p, f'{pre}.q', A).view(B, B, D)
    if per_edge_kv:
        pair = torch.stack([f[:, None, :].expand(B, B, D), f[None, :, :].expand(B, B, D)], 2)  # [B,B,2,D]
        k, v = lin(p, f'{pre}.k', pair), lin(p, f'{pre}.v', pair)
        s = (q[:, :, None, :] * k).sum(-1) / math.sqrt(D)
        a = F.dropout(torch.softmax(s, -1), DROPOUT, training=True)
        u = (a[..., None] * v).sum(2)
    else:
        k, v = lin(p, f'{pre}.k', f), lin(p, f'{pre}.v', f)
        s = torch.stack([(q * k[:, None, :]).sum(-1), (q * k[None, :, :]).sum(-1)], -1) / math.sqrt(D)
        a = F.dropout(torch.softmax(s, -1), DROPOUT, training=True)
        u = a[..., 0:1] * v[:, None, :] + a[..., 1:2] * v[None, :, :]
    t = gelu_norm(p, f'{pre}.norm', u.reshape(B * B, D) + A)
    hidden = F.layer_norm(F.gelu(lin(p, f'{pre}.linear0', t)), (4 * D,), p[f'{pre}.linear2.weight'], p[f'{pre}.linear2.bias'], 1e-5)
    return gelu_norm(p, f'{pre}.norm', lin(p, f'{pre}.linear3', hidden) + t)


def gnn_forward(p, buffers, shape, z, A, allowed, per_edge_kv):
    h = lin(p, 'dim_red', z)
    for l in range(shape['L']):
        h = node_update(p, l, h, A, allowed, shape['H'])
        A = edge_update(p, l, h, A, per_edge_kv)
    edge_para = torch.sigmoid(lin(p, 'fc', batch_norm(A, p['bn1.weight'], p['bn1.bias'], buffers['bn1'])))
    node_pred = lin(p, 'cls', batch_norm(h, p['bn2.weight'], p['bn2.bias'], buffers['bn2']))
    return node_pred, edge_para


def dist(u, v):
    return ((u - v + 1e-6) ** 2).sum(-1, keepdim=True).sqrt()


def pull(z, edge_para, P, K, phi, mixing):
    """Channel-adaptive hard negatives, rows k*P^2 + a*P + n (docs/algorithm.md section 5)."""
    B, D = z.shape
    Z = z.view(K, P, D)
    lam_all = edge_para.view(K, P, B, D) * phi
    anchors = Z[:, :, None, :]
    positives = torch.roll(Z, -1, 0)[:, :, None, :]
    dpos = dist(anchors, positives)
    S = None
    for m in range(K):
        y = Z[m][None, None]
        dneg = dist(anchors, y)
        ratio = (dpos + (dneg - dpos) * lam_all[:, :, m * P:(m + 1) * P, :]) / dneg
        pulled = anchors + (y - anchors) * ratio
        keep = (dpos >= dneg).float()
        hm = keep * y + (1 - keep) * pulled
        if S is None:
            S = hm
        else:
            u = torch.tensor([mixing[k * (K - 1) + m - 1] for k in range(K)], dtype=z.dtype).view(K, 1, 1, 1)
            S = hm + u * (S - hm)
    return S.reshape(K * P * P, D)


def npair(z, P, K):
    D = z.shape[1]
    anchors = z[:P]
    target = torch.arange(P)
    ce = sum(F.cross_entropy(anchors @ z[k * P:(k + 1) * P].t(), target) for k in range(1, K)) / (K - 1)
    return ce + 3e-3 * 0.25 * (z ** 2).sum() / P


def npair_synthetic(G, z, P, K):
    D = z.shape[1]
    eye = torch.eye(P)[:, :, None]
    target = torch.arange(P)
    total = 0
    for k in range(K):
        anchors = z[k * P:(k + 1) * P]
        positives = z[((k + 1) % K) * P:((k + 1) % K + 1) * P]
        block = G[k * P * P:(k + 1) * P * P].view(P, P, D)
        tile = block * (1 - eye) + eye * positives[:, None, :]
        logits = (anchors[:, None, :] * tile).sum(-1)
        l2 = (anchors ** 2).sum() / P + (tile ** 2).sum() / (P * P)
        total = total + F.cross_entropy(logits, target) + 3e-3 * 0.25 * l2
    return total / K


def l2n(x):
    return x / torch.sqrt((x ** 2).sum(1, keepdim=True) + 1e-12)


def make_iteration(shape, per_edge_kv, seed=0):
    P, K, D, C = shape['P'], shape['K'], shape['D'], shape['C']
    B = P * K
    head, gnn, cls, buffers = build(shape, seed)
    opt_c = torch.optim.AdamW(head.trainable(), lr=1e-4, weight_decay=1e-4)
    opt_gnn = torch.optim.AdamW(gnn.trainable(), lr=3e-4, weight_decay=1e-4)
    opt_s = torch.optim.AdamW(cls.trainable(), lr=1e-3, weight_decay=0.01)
    x = torch.randn(B, D, generator=torch.Generator().manual_seed(1))
    labels = torch.arange(B) % P
    allowed = (torch.arange(B)[:, None] % P) != (torch.arange(B)[None, :] % P)
    label_mix = labels[:P].repeat(B)
    sim_mask = torch.ones(K * P * P)
    for k in range(K):
        for a in range(P):
            sim_mask[a * B + k * P + a] = 0  # the official rows (QUIRK 1)
    phi = math.exp(-ALPHA / J_AVG)
    e_bj = math.exp(-BETA / J_GEN)
    rng = torch.Generator().manual_seed(2)

    def mixing():
        return torch.rand(K * (K - 1), generator=rng, dtype=torch.float64).tolist()

    def clip(params):
        for t in params:
            if t.grad is not None:
                t.grad.clamp_(-CLIP, CLIP)

    def iteration():
        opt_c.zero_grad(set_to_none=False)
        opt_gnn.zero_grad(set_to_none=False)
        # Pass 1: J_metric = J_m + J_syn + J_gce.
        z = lin(head, 'fc', batch_norm(x, head['bn.weight'], head['bn.bias'], buffers['head']))
        j_m = npair(z, P, K)
        node_pred, edge_para = gnn_forward(gnn, buffers, shape, z, correlation_graph(z), allowed, per_edge_kv)
        j_gce = F.cross_entropy(node_pred, labels)
        G = pull(z, edge_para.detach(), P, K, phi, mixing())
        j_metric = j_m + (1 - e_bj) * npair_synthetic(G, z, P, K) + j_gce
        j_metric.backward()
        clip(head.trainable())
        opt_c.step()
        clip(gnn.trainable())
        opt_gnn.step()
        # The softmax classifier on sg(z).
        zd = z.detach()
        opt_s.zero_grad(set_to_none=False)
        j_ce = 10 * F.cross_entropy(lin(cls, 'softmax', zd), labels)
        j_ce.backward()
        opt_s.step()
        # Pass 2: J_gen with the updated GNN.
        opt_gnn.zero_grad(set_to_none=False)
        _, edge_para2 = gnn_forward(gnn, buffers, shape, zd, correlation_graph(zd), allowed, per_edge_kv)
        G2 = pull(zd, edge_para2, P, K, phi, mixing())
        lam = edge_para2.view(B, B, D)
        j_div = 0.01 * (1 - torch.sqrt(((lam - lam.mean(1, keepdim=True)) ** 2).sum() / (B * B)))
        logits = F.linear(G2, cls['softmax.weight'].detach(), cls['softmax.bias'].detach())
        j_gence = SOFTMAX_FACTOR * F.cross_entropy(logits, label_mix)
        anchors = z.detach().view(K, P, 1, D).expand(K, P, P, D).reshape(K * P * P, D)
        j_sim = ((1 - F.cosine_similarity(l2n(anchors), l2n(G2), dim=1, eps=1e-8)) * sim_mask).mean()
        j_gen = 0.5 * (j_gence + DOT_WEIGHT * j_sim + DIV_WEIGHT * j_div)
        j_gen.backward()
        clip(gnn.trainable())
        opt_gnn.step()
        return float(j_metric), float(j_ce), float(j_gen)

    return iteration


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument('--shape', action='append', choices=sorted(SHAPES), help='repeatable; default: all')
    ap.add_argument('--runs', type=int, default=3)
    ap.add_argument('--threads', type=int, default=2)
    ap.add_argument('--per-edge-kv', action='store_true')
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    torch.set_num_interop_threads(1)
    for name in args.shape or sorted(SHAPES):
        iteration = make_iteration(SHAPES[name], args.per_edge_kv)
        losses = iteration()  # warm-up
        times = []
        for _ in range(args.runs):
            t0 = time.perf_counter()
            losses = iteration()
            times.append((time.perf_counter() - t0) * 1000)
        print(json.dumps({
            'case': f'iteration-{name}-pytorch' + ('-per-edge-kv' if args.per_edge_kv else ''),
            'median_ms': round(statistics.median(times), 1),
            'min_ms': round(min(times), 1),
            'runs': args.runs,
            # ru_maxrss is the process's high-water mark in KiB (over all shapes run so far).
            'peak_rss_mb': round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024),
            'threads': torch.get_num_threads(),
            'torch': torch.__version__,
            'losses': [round(v, 6) for v in losses],
        }), flush=True)


if __name__ == '__main__':
    main()
