"""Frame-only deblurring, the paper's NAFNet baseline (Chen et al., "Simple Baselines for
Image Restoration", ECCV 2022) at a size trainable on a CPU: a UNet of NAFBlocks (layer
norm, 1x1 expansion, 3x3 depthwise convolution, SimpleGate, simplified channel attention,
a gated feed-forward part, learnable residual scales), trained on the same blurry/sharp IR
pairs as EVIF, without events.

``forward(x (B,1,H,W) in [0,1]) -> sharp (B,1,H,W)``; pads to a multiple of 4 and crops.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from evif_ros.learning.layers import pad_to


class LayerNorm2d(nn.Module):
    """Layer norm over the channels of each pixel."""

    def __init__(self, c: int, eps: float = 1e-6):
        super().__init__()
        self.weight = nn.Parameter(torch.ones(1, c, 1, 1))
        self.bias = nn.Parameter(torch.zeros(1, c, 1, 1))
        self.eps = eps

    def forward(self, x: Tensor) -> Tensor:
        mu = x.mean(1, keepdim=True)
        var = (x - mu).pow(2).mean(1, keepdim=True)
        return (x - mu) / torch.sqrt(var + self.eps) * self.weight + self.bias


class NAFBlock(nn.Module):
    """(B, c, H, W) -> same; NAFNet's block with its expansion factors of 2."""

    def __init__(self, c: int):
        super().__init__()
        self.norm1 = LayerNorm2d(c)
        self.expand = nn.Conv2d(c, 2 * c, 1)
        self.depthwise = nn.Conv2d(2 * c, 2 * c, 3, 1, 1, groups=2 * c)
        self.sca = nn.Conv2d(c, c, 1)  # simplified channel attention on pooled features
        self.project = nn.Conv2d(c, c, 1)
        self.norm2 = LayerNorm2d(c)
        self.ffn_in = nn.Conv2d(c, 2 * c, 1)
        self.ffn_out = nn.Conv2d(c, c, 1)
        self.beta = nn.Parameter(torch.zeros(1, c, 1, 1))
        self.gamma = nn.Parameter(torch.zeros(1, c, 1, 1))

    @staticmethod
    def gate(x: Tensor) -> Tensor:  # SimpleGate: one half times the other
        a, b = torch.chunk(x, 2, 1)
        return a * b

    def forward(self, x: Tensor) -> Tensor:
        y = self.gate(self.depthwise(self.expand(self.norm1(x))))
        y = y * self.sca(F.adaptive_avg_pool2d(y, 1))
        x = x + self.beta * self.project(y)
        return x + self.gamma * self.ffn_out(self.gate(self.ffn_in(self.norm2(x))))


class FrameDeblurNet(nn.Module):
    """Two down/up levels of NAFBlocks, width ``base``; residual on the input frame."""

    def __init__(self, base: int = 16, blocks: int = 1):
        super().__init__()
        c1, c2, c3 = base, 2 * base, 4 * base
        self.intro = nn.Conv2d(1, c1, 3, 1, 1)
        self.enc1 = nn.Sequential(*[NAFBlock(c1) for _ in range(blocks)])
        self.down1 = nn.Conv2d(c1, c2, 2, 2)
        self.enc2 = nn.Sequential(*[NAFBlock(c2) for _ in range(blocks)])
        self.down2 = nn.Conv2d(c2, c3, 2, 2)
        self.mid = nn.Sequential(*[NAFBlock(c3) for _ in range(2 * blocks)])
        self.up2 = nn.Sequential(nn.Conv2d(c3, 4 * c2, 1), nn.PixelShuffle(2))
        self.dec2 = nn.Sequential(*[NAFBlock(c2) for _ in range(blocks)])
        self.up1 = nn.Sequential(nn.Conv2d(c2, 4 * c1, 1), nn.PixelShuffle(2))
        self.dec1 = nn.Sequential(*[NAFBlock(c1) for _ in range(blocks)])
        self.ending = nn.Conv2d(c1, 1, 3, 1, 1)
        with torch.no_grad():  # start near the identity, as EVIF's deblurring head does
            self.ending.weight.mul_(0.1)
            self.ending.bias.zero_()

    def reset_states(self) -> None:
        """No recurrent state (same interface as the event networks)."""

    def forward(self, x: Tensor) -> Tensor:
        xp, h, w = pad_to(x, 4)
        a = self.enc1(self.intro(xp))
        b = self.enc2(self.down1(a))
        c = self.mid(self.down2(b))
        b = self.dec2(self.up2(c) + b)
        a = self.dec1(self.up1(b) + a)
        return (xp + self.ending(a))[:, :, :h, :w]


def train_frame_deblur(data_dir, out, iters: int = 2000, batch: int = 8, crop: int = 96,
                       lr: float = 1e-3, seed: int = 0, progress: bool = True):
    """PSNR loss on blurry -> sharp IR crops (normalised by the blurry frame's range), as
    EVIF's deblurring is trained; AdamW with cosine decay to 1 % (NAFNet's schedule)."""
    import numpy as np
    from tqdm import tqdm

    from evif_ros.learning.data import ShardData
    from evif_ros.learning.losses import psnr_loss

    torch.manual_seed(seed)
    data = ShardData(data_dir, "train")
    rng = np.random.default_rng(seed)
    net = FrameDeblurNet()
    opt = torch.optim.AdamW(net.parameters(), lr=lr, betas=(0.9, 0.9))
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, iters, eta_min=lr * 0.01)
    bar = tqdm(range(iters), desc="frame deblur", unit="it", disable=not progress)
    for _ in bar:
        b = data.batch(rng, batch, crop, 1)
        x, sharp = b.ir_normalized()
        loss = psnr_loss(net(x), sharp)
        opt.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(net.parameters(), 1.0)
        opt.step()
        sched.step()
        bar.set_postfix(psnr=f"{-loss.item():.2f}")
    net.eval()
    torch.jit.save(torch.jit.script(net), str(out))
    return out
