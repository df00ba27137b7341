"""Visible-infrared fusion with bi-level min-max mutual information (Sec. 3.4).

Convolutions on the reconstructed visible and the deblurred IR image are concatenated
with the decoder features of both task networks (F_vis, F_ir); transformer blocks filter
them (F'_vis, F'_ir); pooled variational embeddings z'_vis, z'_ir carry the MI
minimisation loss (Eq. 4); F'_vis, F'_ir are fused by another transformer block into F_f;
embeddings z_f, z_vis, z_ir carry the InfoNCE maximisation loss (Eq. 5).
"""

from __future__ import annotations

from typing import Dict, Tuple

import torch
from torch import Tensor, nn

from evif_ros.learning.layers import BlockConv, TransformerBlock, conv, from_blocks


class VariationalEmbedding(nn.Module):
    """Global-average-pool + MLP -> (mu, logvar), each (B, dim)."""

    def __init__(self, c: int, dim: int):
        super().__init__()
        self.mlp = nn.Sequential(nn.Linear(c, 2 * dim), nn.GELU(), nn.Linear(2 * dim, 2 * dim))

    def forward(self, x: Tensor) -> Tuple[Tensor, Tensor]:
        mu, logvar = torch.chunk(self.mlp(x.mean(dim=(2, 3))), 2, 1)
        # bounded to [-1, 1] as in Zhang et al.'s cascaded MI minimisation: Eq. 4
        # subtracts the KL divergence, which unbounded embeddings push to infinity (seen
        # here: -4e19); with |mu|, |logvar| <= 1 the two KLs are at most ~8.9 per dimension
        return torch.tanh(mu), torch.tanh(logvar)


class FusionNet(nn.Module):
    """``forward(vis, ir, dec_vis, dec_ir) -> (fused (B,1,H,W), embeddings)``.

    Images in [0, 1], decoder features at 1/``shuffle`` resolution; H, W multiples of
    ``shuffle`` x the transformer patch (``patch``, in the network's pixels).
    Embeddings (training only): mu/logvar of z'_vis, z'_ir and z_f, z_vis, z_ir.
    """

    def __init__(self, c_dec_vis: int, c_dec_ir: int, base: int = 32, dim: int = 64,
                 heads: int = 4, emb: int = 32, patch: int = 8, mix_kernel: int = 3,
                 shuffle: int = 1):
        super().__init__()
        # shuffle s > 1: at 1/s resolution on s x s pixel blocks stacked as channels (the
        # decoder features come at that resolution), output through a pixel shuffle
        self.shuffle = shuffle
        s2 = shuffle * shuffle
        self.img_vis = BlockConv(1, base, 3, shuffle)
        self.img_ir = BlockConv(1, base, 3, shuffle)
        # mix_kernel 1: the projections and the merge only mix channels (the image
        # convolutions and the transformers see the neighbourhood)
        self.proj_vis = conv(base + c_dec_vis, base, mix_kernel)
        self.proj_ir = conv(base + c_dec_ir, base, mix_kernel)
        self.filter_vis = TransformerBlock(base, dim, heads, patch)
        self.filter_ir = TransformerBlock(base, dim, heads, patch)
        self.merge = conv(2 * base, base, mix_kernel)
        self.fuse = TransformerBlock(base, dim, heads, patch)
        self.out = nn.Sequential(conv(base, base, 3), nn.Conv2d(base, s2, 3, 1, 1))
        self.q_vis_f = VariationalEmbedding(base, emb)  # z'_vis (filtered)
        self.q_ir_f = VariationalEmbedding(base, emb)  # z'_ir
        self.e_fused = VariationalEmbedding(base, emb)  # z_f
        self.e_vis = VariationalEmbedding(base, emb)  # z_vis (unfiltered)
        self.e_ir = VariationalEmbedding(base, emb)  # z_ir

    def forward(self, vis: Tensor, ir: Tensor, dec_vis: Tensor, dec_ir: Tensor
                ) -> Tuple[Tensor, Dict[str, Tensor]]:
        f_vis = self.proj_vis(torch.cat([self.img_vis(vis), dec_vis], 1))
        f_ir = self.proj_ir(torch.cat([self.img_ir(ir), dec_ir], 1))
        fv, fi = self.filter_vis(f_vis), self.filter_ir(f_ir)
        f_f = self.fuse(self.merge(torch.cat([fv, fi], 1)))
        fused = torch.sigmoid(from_blocks(self.out(f_f), self.shuffle))
        emb: Dict[str, Tensor] = {}
        if self.training:
            emb["mu_vis_f"], emb["lv_vis_f"] = self.q_vis_f(fv)
            emb["mu_ir_f"], emb["lv_ir_f"] = self.q_ir_f(fi)
            emb["z_f"] = self.e_fused(f_f)[0]
            emb["z_vis"] = self.e_vis(f_vis)[0]
            emb["z_ir"] = self.e_ir(f_ir)[0]
        return fused, emb
