"""Building blocks shared by the EVIF networks; layers come from explicit registries."""

from __future__ import annotations

from typing import List, Optional, Tuple

import torch
import torch.nn.functional as F
from torch import Tensor, nn

ACTIVATIONS = {"relu": nn.ReLU, "gelu": nn.GELU, "lrelu": lambda: nn.LeakyReLU(0.1)}
NORMS = {"none": lambda c: nn.Identity(), "batch": nn.BatchNorm2d,
         "instance": lambda c: nn.InstanceNorm2d(c, affine=True),
         "group": lambda c: nn.GroupNorm(max(1, c // 8), c)}


def pointwise(cin: int, cout: int) -> nn.Conv2d:
    """A 1x1 convolution declared dilated, which changes nothing in its result or its
    parameters: torch sends single-threaded undilated 1x1 convolutions to its BLAS path,
    which on channels-last maps is 6x slower than oneDNN here (16 -> 8 channels at 352x272:
    4.3 vs 0.65 ms on one AMD EPYC core); a dilated one always goes to oneDNN."""
    return nn.Conv2d(cin, cout, 1, dilation=2)


def conv(cin: int, cout: int, k: int = 3, stride: int = 1, act: str = "relu",
         norm: str = "none") -> nn.Sequential:
    layer = pointwise(cin, cout) if k == 1 and stride == 1 else nn.Conv2d(cin, cout, k, stride,
                                                                          k // 2)
    return nn.Sequential(layer, NORMS[norm](cout), ACTIVATIONS[act]())


def block_conv(x: Tensor, weight: Tensor, bias: Optional[Tensor], s: int) -> Tensor:
    """The 'same' convolution of ``weight`` (C_out, C*s*s, k, k) over ``to_blocks(x, s)``,
    computed on ``x`` (B, C, H, W) itself: the block's s x s pixels are the kernel's, so it
    is one convolution with an (s*k) x (s*k) kernel and stride s, whose weight at
    ``(s*ky + i, s*kx + j)`` of input channel c is the block weight of channel
    ``c*s*s + i*s + j`` at ``(ky, kx)``. No unshuffled copy of the input is made: 2-3x faster
    than unshuffle + convolution on this CPU (10 -> 8 channels at 352x272, 2 threads: 2.6
    vs 5.0 ms)."""
    k = weight.shape[2]
    if s == 1:
        return F.conv2d(x, weight, bias, 1, k // 2)
    cout, cin = weight.shape[0], weight.shape[1] // (s * s)
    w = weight.view(cout, cin, s, s, k, k).permute(0, 1, 4, 2, 5, 3).reshape(
        cout, cin, k * s, k * s)
    return F.conv2d(x, w, bias, s, s * (k // 2))


class BlockConv(nn.Sequential):
    """``conv(cin * s * s, cout, k, ...)`` applied to ``to_blocks(x, s)``, taking ``x``
    (B, cin, H, W) at full resolution (``block_conv``): the same parameters under the same
    names as that ``conv``, so checkpoints of either load into the other."""

    def __init__(self, cin: int, cout: int, k: int, s: int, act: str = "relu",
                 norm: str = "none"):
        super().__init__(nn.Conv2d(cin * s * s, cout, k, 1, k // 2), NORMS[norm](cout),
                         ACTIVATIONS[act]())
        self.s = s

    def forward(self, x: Tensor) -> Tensor:
        first = self[0]
        return self[2](self[1](block_conv(x, first.weight, first.bias, self.s)))


class ResidualBlock(nn.Module):
    def __init__(self, c: int, norm: str = "none", act: str = "relu"):
        super().__init__()
        self.body = nn.Sequential(nn.Conv2d(c, c, 3, 1, 1), NORMS[norm](c), ACTIVATIONS[act](),
                                  nn.Conv2d(c, c, 3, 1, 1), NORMS[norm](c))
        self.act = ACTIVATIONS[act]()

    def forward(self, x: Tensor) -> Tensor:
        return self.act(x + self.body(x))


class ConvLSTM(nn.Module):
    """Convolutional LSTM cell; state ``(h, c)``, each ``(B, hidden, H, W)``."""

    def __init__(self, cin: int, hidden: int, k: int = 3):
        super().__init__()
        self.hidden = hidden
        self.gates = nn.Conv2d(cin + hidden, 4 * hidden, k, 1, k // 2)

    def forward(self, x: Tensor, h: Tensor, c: Tensor) -> Tuple[Tensor, Tensor]:
        i, f, o, g = torch.chunk(self.gates(torch.cat([x, h], 1)), 4, 1)
        c = torch.sigmoid(f) * c + torch.sigmoid(i) * torch.tanh(g)
        h = torch.sigmoid(o) * torch.tanh(c)
        return h, c


class ConvGRU(nn.Module):
    """Convolutional GRU cell; state ``(B, hidden, H, W)``, ``None`` for zeros."""

    def __init__(self, cin: int, hidden: int, k: int = 3):
        super().__init__()
        self.cin, self.hidden, self.pad = cin, hidden, k // 2
        self.zr = nn.Conv2d(cin + hidden, 2 * hidden, k, 1, k // 2)
        self.q = nn.Conv2d(cin + hidden, hidden, k, 1, k // 2)

    def forward(self, x: Tensor, h: Optional[Tensor]) -> Tensor:
        if h is None:
            # from a zero state the update is z * q, and z, q see only x: the same result
            # from the input's slice of the weights (a third of the work with the reset gate
            # and the state's half skipped)
            c, n = self.cin, self.hidden
            zr_b, q_b = self.zr.bias, self.q.bias
            z = torch.sigmoid(F.conv2d(x, self.zr.weight[:n, :c], None if zr_b is None
                                       else zr_b[:n], padding=self.pad))
            return z * torch.tanh(F.conv2d(x, self.q.weight[:, :c], q_b, padding=self.pad))
        z, r = torch.chunk(torch.sigmoid(self.zr(torch.cat([x, h], 1))), 2, 1)
        q = torch.tanh(self.q(torch.cat([x, r * h], 1)))
        return (1 - z) * h + z * q


class ChannelAttention(nn.Module):
    """Attention across channels (c x c), query from one feature, key/value from another:
    ``out = V softmax(Q^T K / sqrt(hw))`` with Q, K, V reshaped to ``(hw, c)``.
    Used as EVIF's cross-task channel attention (Eq. 2) and as EFNet-style cross-modal
    attention between image and event features."""

    def __init__(self, c_query: int, c_kv: int):
        super().__init__()
        self.q = pointwise(c_query, c_query)
        self.k = pointwise(c_kv, c_query)
        self.v = pointwise(c_kv, c_query)
        self.out = pointwise(c_query, c_query)

    def forward(self, query: Tensor, kv: Tensor) -> Tensor:
        b, c, h, w = query.shape
        q, k, v = self.q(query), self.k(kv), self.v(kv)
        scale = float(h * w) ** 0.5
        if q.is_contiguous(memory_format=torch.channels_last) and \
                v.is_contiguous(memory_format=torch.channels_last):
            # the same products on (b, hw, c) views, so the result keeps the layout (an
            # NCHW result here would be copied back at every following channels-last op)
            q, k, v = (t.permute(0, 2, 3, 1).reshape(b, h * w, c) for t in (q, k, v))
            attn = torch.softmax(torch.bmm(q.transpose(1, 2), k) / scale, -1)
            y = torch.bmm(v, attn.transpose(1, 2)).view(b, h, w, c).permute(0, 3, 1, 2)
            return self.out(y)
        q, k, v = q.flatten(2), k.flatten(2), v.flatten(2)  # (b, c, hw)
        attn = torch.softmax(torch.bmm(q, k.transpose(1, 2)) / scale, -1)
        return self.out(torch.bmm(attn, v).view(b, c, h, w))


class TransformerBlock(nn.Module):
    """Pre-norm transformer block with multi-head self-attention over spatial tokens.

    Tokens are ``patch x patch`` patches (a strided conv embeds them) so attention stays
    affordable at 346x260; the block's output is upsampled back and added to its input.
    Input/output ``(B, C, H, W)`` with H, W multiples of ``patch``.
    """

    def __init__(self, c: int, dim: int, heads: int = 4, patch: int = 8, mlp: int = 2):
        super().__init__()
        self.patch = patch
        self.embed = nn.Conv2d(c, dim, patch, patch)
        self.norm1 = nn.LayerNorm(dim)
        self.attn = nn.MultiheadAttention(dim, heads, batch_first=True)
        self.norm2 = nn.LayerNorm(dim)
        self.mlp = nn.Sequential(nn.Linear(dim, mlp * dim), nn.GELU(), nn.Linear(mlp * dim, dim))
        self.unembed = nn.ConvTranspose2d(dim, c, patch, patch)

    def forward(self, x: Tensor) -> Tensor:
        t = self.embed(x)
        b, d, h, w = t.shape
        tok = t.flatten(2).transpose(1, 2)
        y = self.norm1(tok)
        tok = tok + self.attn(y, y, y, need_weights=False)[0]
        tok = tok + self.mlp(self.norm2(tok))
        # the transposed convolution (kernel = stride = patch) as one matrix product (bias
        # included) and a pixel shuffle: the same arithmetic, without the slow strided
        # scatter, written in the input's memory layout so the residual sum is a plain add
        wt = self.unembed.weight  # (dim, c, patch, patch)
        c, p = wt.shape[1], self.patch
        bias = self.unembed.bias
        if bias is None:
            bias = torch.zeros(c, dtype=tok.dtype, device=tok.device)
        tok = tok.reshape(b * h * w, d)
        if x.is_contiguous(memory_format=torch.channels_last):
            # one (p, p, c) block per token -> (b, H, W, c), viewed as channels-last NCHW
            blocks = torch.addmm(bias.repeat(p * p), tok, wt.permute(0, 2, 3, 1).reshape(d, -1))
            y = blocks.view(b, h, w, p, p, c).permute(0, 1, 3, 2, 4, 5).reshape(
                b, h * p, w * p, c).permute(0, 3, 1, 2)
        else:  # one (c, p, p) block per token -> (b, c, H, W)
            blocks = torch.addmm(bias.repeat_interleave(p * p), tok, wt.reshape(d, -1))
            y = blocks.view(b, h, w, c, p, p).permute(0, 3, 1, 4, 2, 5).reshape(
                b, c, h * p, w * p)
        return x + y


def from_blocks(x: Tensor, s: int) -> Tensor:
    """(B, C*s*s, H/s, W/s) -> (B, C, H, W): each pixel's s*s channels spread over an
    s x s block (pixel shuffle, ESPCN); the inverse of stacking the blocks as channels
    (``BlockConv``'s input side); s = 1 passes ``x`` through untouched."""
    return F.pixel_shuffle(x, s) if s > 1 else x


def up2x(x: Tensor) -> Tensor:
    """Bilinear 2x upsampling (``F.interpolate``'s, align_corners=False) called as the one
    ATen op: scripting ``F.interpolate`` copies all its modes into the file, and a file
    saved by torch 2.13 then names ops (``_upsample_lanczos2d_aa``) that torch 2.11 cannot
    load (seen on the GPU machine)."""
    return torch._C._nn.upsample_bilinear2d(x, None, False, [2.0, 2.0])


def pad_to(x: Tensor, multiple: int) -> Tuple[Tensor, int, int]:
    """Replicate-pad H and W up to a multiple; returns the padded tensor and H, W."""
    h, w = x.shape[-2], x.shape[-1]
    ph = (multiple - h % multiple) % multiple
    pw = (multiple - w % multiple) % multiple
    if ph or pw:
        x = F.pad(x, [0, pw, 0, ph], mode="replicate")
    return x, h, w


def box_sum3(x: Tensor) -> Tensor:
    """(B, C, H, W) -> the sum over each pixel's 3x3 neighbourhood (zeros beyond the border).
    Two passes of three shifted views: 14x faster than ``avg_pool2d`` (x 9) on one
    full-resolution plane on the CPU, and exact for counts (no division)."""
    h, w = x.shape[2], x.shape[3]
    p = F.pad(x, [1, 1, 1, 1])
    rows = p[:, :, :, 0:w] + p[:, :, :, 1:w + 1] + p[:, :, :, 2:w + 2]
    return rows[:, :, 0:h] + rows[:, :, 1:h + 1] + rows[:, :, 2:h + 2]


def block_mean(x: Tensor, k: int) -> Tensor:
    """(B, C, H, W) -> (B, C, H//k, W//k): the mean of each k x k block (``avg_pool2d(x,
    k)``, rows and columns beyond the last whole block dropped as it drops them). The sum
    of k*k strided views: 4x faster than ``avg_pool2d`` on the CPU (0.5 against 2.1 ms for
    the motion search's 5 bins at 346x260, one thread)."""
    if k == 1:
        return x
    h, w = x.shape[2] // k * k, x.shape[3] // k * k
    out = x[:, :, 0:h:k, 0:w:k]
    for i in range(k):
        for j in range(k):
            if i > 0 or j > 0:
                out = out + x[:, :, i:h:k, j:w:k]
    return out / float(k * k)


def zeros_like_state(state: List[Tensor]) -> List[Tensor]:
    return [torch.zeros_like(s) for s in state]
