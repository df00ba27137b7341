"""FireNet (Scheerlinck et al., "Fast Image Reconstruction with an Event Camera", WACV 2020):
the real-time reference of event-based reconstruction, used here as a latency yardstick.

A 3x3 head (5 voxel bins -> 16 channels), two ConvGRU + residual-block pairs and a 1x1
prediction, all at full resolution; 38k parameters. Random weights time it as well as
trained ones.
"""

from __future__ import annotations

from typing import List, Optional, Tuple

import torch
from torch import Tensor, nn

from evif_ros.learning.layers import ConvGRU, ResidualBlock, conv, pointwise


class FireNet(nn.Module):
    """``forward(voxel (B, 5, H, W), state [h1, h2]) -> (image (B,1,H,W) in [0,1], state)``."""

    def __init__(self, bins: int = 5, base: int = 16):
        super().__init__()
        self.base = base
        self.head = conv(bins, base, 3)
        self.g1 = ConvGRU(base, base)
        self.r1 = ResidualBlock(base)
        self.g2 = ConvGRU(base, base)
        self.r2 = ResidualBlock(base)
        self.pred = pointwise(base, 1)

    def forward(self, voxel: Tensor, state: List[Tensor]) -> Tuple[Tensor, List[Tensor]]:
        x = self.head(voxel)
        s1: Optional[Tensor] = None  # zero states
        s2: Optional[Tensor] = None
        if len(state) > 0:
            s1, s2 = state[0], state[1]
        h1 = self.g1(x, s1)
        x = self.r1(h1)
        h2 = self.g2(x, s2)
        x = self.r2(h2)
        return torch.sigmoid(self.pred(x)), [h1, h2]
