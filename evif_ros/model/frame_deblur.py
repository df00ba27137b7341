"""Frame-only deblurring (stands in for NAFNet in the paper's baselines): a small residual
UNet trained on the same synthetic blurry/sharp IR pairs, without events.

``forward(x (B,1,H,W) in [0,1]) -> sharp (B,1,H,W)``; pads to a multiple of 4 and crops.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from evif_ros.model.layers import ResidualBlock, conv, pad_to


class FrameDeblurNet(nn.Module):
    def __init__(self, base: int = 16):
        super().__init__()
        self.e1 = conv(1, base, 3)
        self.e2 = conv(base, 2 * base, 3, 2)
        self.e3 = conv(2 * base, 4 * base, 3, 2)
        self.mid = nn.Sequential(ResidualBlock(4 * base), ResidualBlock(4 * base))
        self.d2 = conv(4 * base, 2 * base, 3)
        self.d1 = conv(2 * base, base, 3)
        self.out = nn.Conv2d(base, 1, 3, 1, 1)
        nn.init.zeros_(self.out.weight)  # start as the identity, like EVIF's deblurring head
        nn.init.zeros_(self.out.bias)

    def reset_states(self) -> None:
        """No recurrent state (same interface as the event networks)."""

    def forward(self, x: Tensor) -> Tensor:
        xp, h, w = pad_to(x, 4)
        a = self.e1(xp)
        b = self.e2(a)
        c = self.mid(self.e3(b))
        c = self.d2(F.interpolate(c, scale_factor=2.0, mode="bilinear", align_corners=False)) + b
        c = self.d1(F.interpolate(c, scale_factor=2.0, mode="bilinear", align_corners=False)) + a
        return (xp + self.out(c))[:, :, :h, :w]


def train_frame_deblur(data_dir, out, iters: int = 600, batch: int = 8, crop: int = 96,
                       lr: float = 1e-3, seed: int = 0, progress: bool = True):
    """PSNR loss on blurry -> sharp IR crops (normalised by the blurry frame's range), as
    EVIF's deblurring is trained."""
    import numpy as np
    from tqdm import tqdm

    from evif_ros.model.data import ShardData
    from evif_ros.model.losses import psnr_loss

    torch.manual_seed(seed)
    data = ShardData(data_dir, "train")
    rng = np.random.default_rng(seed)
    net = FrameDeblurNet()
    opt = torch.optim.AdamW(net.parameters(), lr=lr)
    for _ in tqdm(range(iters), desc="frame deblur", unit="it", disable=not progress):
        b = data.batch(rng, batch, crop, 1)
        x, sharp = b.ir_normalized()
        loss = psnr_loss(net(x), sharp)
        opt.zero_grad()
        loss.backward()
        opt.step()
    net.eval()
    torch.jit.save(torch.jit.script(net), str(out))
    return out
