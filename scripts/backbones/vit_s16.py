"""DINO's ViT-S/16 in PyTorch, written from the architecture description (docs/backbones.md), in DINO's
state-dict layout (cls_token, pos_embed, patch_embed.proj.*, blocks.N.{norm1, attn.qkv, attn.proj,
norm2, mlp.fc1, mlp.fc2}.*, norm.*). The reference for src/models/dino_vit.ts, shared by
scripts/backbones/make_fixtures.py and bench/pytorch_dino_step.py.
"""
from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F

WIDTH, DEPTH, HEADS, PATCH, GRID = 384, 12, 6, 16, 14
HEAD_DIM = WIDTH // HEADS


class Attention(nn.Module):
    def __init__(self):
        super().__init__()
        self.qkv = nn.Linear(WIDTH, 3 * WIDTH)
        self.proj = nn.Linear(WIDTH, WIDTH)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, t, c = x.shape
        q, k, v = self.qkv(x).reshape(b, t, 3, HEADS, HEAD_DIM).permute(2, 0, 3, 1, 4)
        a = ((q @ k.transpose(-2, -1)) * HEAD_DIM ** -0.5).softmax(-1)
        return self.proj((a @ v).transpose(1, 2).reshape(b, t, c))


class Mlp(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc1 = nn.Linear(WIDTH, 4 * WIDTH)
        self.fc2 = nn.Linear(4 * WIDTH, WIDTH)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc2(F.gelu(self.fc1(x)))  # exact (erf) GELU


class Block(nn.Module):
    def __init__(self):
        super().__init__()
        self.norm1 = nn.LayerNorm(WIDTH, eps=1e-6)
        self.attn = Attention()
        self.norm2 = nn.LayerNorm(WIDTH, eps=1e-6)
        self.mlp = Mlp()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.attn(self.norm1(x))
        return x + self.mlp(self.norm2(x))


class PatchEmbed(nn.Module):
    def __init__(self):
        super().__init__()
        self.proj = nn.Conv2d(3, WIDTH, PATCH, stride=PATCH)


class VitS16(nn.Module):
    def __init__(self):
        super().__init__()
        self.cls_token = nn.Parameter(torch.zeros(1, 1, WIDTH))
        self.pos_embed = nn.Parameter(torch.zeros(1, GRID * GRID + 1, WIDTH))
        self.patch_embed = PatchEmbed()
        self.blocks = nn.ModuleList(Block() for _ in range(DEPTH))
        self.norm = nn.LayerNorm(WIDTH, eps=1e-6)

    def positions(self, h: int, w: int) -> torch.Tensor:
        """The learned positions for an h × w image: as stored for 224 × 224, else the 14 × 14 grid
        resized bicubically with scale factors ((h/16 + 0.1)/14, (w/16 + 0.1)/14) as DINO does."""
        hp, wp = h // PATCH, w // PATCH
        if hp * wp == GRID * GRID and h == w:
            return self.pos_embed
        grid = self.pos_embed[:, 1:].reshape(1, GRID, GRID, WIDTH).permute(0, 3, 1, 2)
        grid = F.interpolate(grid, scale_factor=((hp + 0.1) / GRID, (wp + 0.1) / GRID), mode='bicubic', align_corners=False)
        assert tuple(grid.shape[-2:]) == (hp, wp)
        return torch.cat([self.pos_embed[:, :1], grid.permute(0, 2, 3, 1).reshape(1, hp * wp, WIDTH)], 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """NCHW images → the CLS token after the final LayerNorm, [n, 384]."""
        n, _, h, w = x.shape
        tokens = self.patch_embed.proj(x).flatten(2).transpose(1, 2)
        tokens = torch.cat([self.cls_token.expand(n, -1, -1), tokens], 1) + self.positions(h, w)
        for blk in self.blocks:
            tokens = blk(tokens)
        return self.norm(tokens)[:, 0]
