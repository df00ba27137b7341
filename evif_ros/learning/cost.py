"""Multiply-accumulates of one forward pass, counted by torch's own FLOP counter
(``torch.utils.flop_counter``) on the operators that actually run: convolutions and matrix
products (linear layers, projections, the transformers' unembedding). Left out: element-wise
work, and the attention products inside ``nn.MultiheadAttention``'s fused inference kernel,
which the counter does not see (2 x tokens^2 x dim: 9 MMAC per fusion transformer at
346x260 with 16-px tokens)."""

from __future__ import annotations

import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode


def count_macs(model: nn.Module, *inputs) -> int:
    """MACs of ``model(*inputs)`` in eager mode (no gradient); one MAC = two FLOPs."""
    with torch.no_grad(), FlopCounterMode(display=False) as counter:
        model(*inputs)
    return counter.get_total_flops() // 2
