"""Multiply-accumulates of one forward pass, counted with forward hooks on the layers that
carry nearly all of them (convolutions, transposed convolutions, linear layers); the
attention products and element-wise work are left out."""

from __future__ import annotations

import torch
from torch import nn


def count_macs(model: nn.Module, *inputs) -> int:
    """MACs of ``model(*inputs)`` in eager mode (no gradient)."""
    total = [0]

    def hook(m, args, out):
        if isinstance(m, nn.ConvTranspose2d):  # each input element feeds cout*kh*kw outputs
            kh, kw = m.kernel_size
            total[0] += args[0].numel() * (m.out_channels // m.groups) * kh * kw
        elif isinstance(m, nn.Conv2d):  # each output element takes cin*kh*kw MACs
            kh, kw = m.kernel_size
            total[0] += out.numel() * (m.in_channels // m.groups) * kh * kw
        elif isinstance(m, nn.Linear):
            total[0] += out.numel() * m.in_features

    handles = [m.register_forward_hook(hook) for m in model.modules()
               if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d, nn.Linear))]
    try:
        with torch.no_grad():
            model(*inputs)
    finally:
        for h in handles:
            h.remove()
    return total[0]
