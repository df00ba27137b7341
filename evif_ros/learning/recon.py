"""Event-based visible reconstruction: E2VID-style recurrent UNet (Rebecq et al. 2019).

Three strided encoders each followed by a ConvLSTM, residual blocks at the bottleneck,
three decoders with additive skips, a 1-channel sigmoid prediction. Run once per
sub-window; the recurrent state carries over between sub-windows and IR frames.

With ``feedback`` the state also holds the last image at full resolution: the network sees
it beside the events and predicts, per pixel, a new image and a gate ``g`` in (0, 1); the
output is ``g * last + (1 - g) * new``, so a scene without events (a resting camera, a quiet
sensor) keeps its image where the gate closes, instead of fading with the coarse ConvLSTM
memory, and the image can never drift outside what the network itself predicts
(a convex update: a logit that accumulated changes saturated to black and white on a real
recording).

With ``advect`` (on top of ``feedback``) the kept image is first moved by the events
themselves, as direct integration would: ``last + step * (ON - OFF)`` per pixel, clipped to
[0, 1], ``step`` a third predicted plane (at most ``STEP_MAX``; an event of contrast C moves a
log-tonemapped image by C / its log range, about 0.05). Without it the kept image cannot
follow slow motion: each sparse window's new image is a blur of the scene, and a gate that
must let the edges move lets that blur in too (a real hand-held recording dissolved into a
blob over five slow windows). The gate still bounds the accumulated changes: it mixes them
with the network's own image.
"""

from __future__ import annotations

from typing import List, Optional, Tuple

import torch
from torch import Tensor, nn

from evif_ros.learning.layers import (
    BlockConv,
    ConvLSTM,
    ResidualBlock,
    box_sum3,
    conv,
    from_blocks,
    pointwise,
    up2x,
)

STEP_MAX = 0.1  # the largest image change per event the advection can take
STEP_INIT = 0.3  # the step plane's initial sigmoid (0.03 per event)


class ReconNet(nn.Module):
    """``forward(voxel (B, C_in, H, W), state) -> (image (B,1,H,W), state, feat, dec)``.

    ``feat``: the decoder feature at half the network's resolution (B, base*2, H/2s, W/2s),
    fed to cross-task enhancement; ``dec``: the last decoder feature (B, base, H/s, W/s),
    fed to fusion (``s`` = ``shuffle``).
    State: ``[h1, c1, h2, c2, h3, c3]`` (``[h3, c3]`` with ``recurrent="bottleneck"``), then
    with ``feedback`` the last image (B, 1, H, W); an empty list means a reset.
    H, W multiples of 8s.

    ``recurrent``: "all" puts a ConvLSTM after every encoder (E2VID); "bottleneck" only after
    the last, at 1/8 resolution, where a gate convolution costs 1/16 of one at 1/2.
    ``advect`` (with ``feedback``): ``voxel`` must be the stacked per-polarity log counts
    (channels ON, OFF of each sub-window in turn, ``EvifPipeline.reconstruct``); ``counts``,
    the same counts before the log, if the caller has them (saves undoing the log: 12
    full-resolution planes, ~3 % of a CPU frame). ``gain`` (B, 1, 1, 1), with ``advect``: a
    factor on the step per sample, each training sequence's sensor threshold over the
    reference (``train-visible --contrast-ref``); at run time the file's ``step_max`` is
    scaled instead (``runtime.model_file.set_contrast``).
    """

    def __init__(self, in_ch: int = 10, base: int = 32, encoders: int = 3, res_blocks: int = 2,
                 kernel: int = 5, recurrent: str = "all", conv_first: bool = False,
                 shuffle: int = 1, feedback: bool = False, advect: bool = False,
                 advect_support: int = 0):
        super().__init__()
        if advect and not feedback:
            raise ValueError("advect moves the fed-back image: it needs feedback")
        self.feedback = feedback
        self.advect = advect
        self.step_max = STEP_MAX  # an attribute: TorchScript cannot read module globals
        # events move the image only where at least this many fell on the 8 neighbouring
        # pixels in the window: a resting camera's noise events are isolated, and each one
        # let through is a step of a random walk that blurs the kept image over seconds
        self.advect_support = advect_support
        in_ch += 1 if feedback else 0
        # shuffle s > 1: the network runs at 1/s resolution on the input's s x s pixel
        # blocks stacked as channels, and predicts each block's s x s pixels (ESPCN)
        self.shuffle = shuffle
        if recurrent not in ("all", "bottleneck"):
            raise ValueError(f"recurrent must be 'all' or 'bottleneck', got {recurrent!r}")
        self.base, self.n_enc = base, encoders
        self.conv_first = conv_first  # decoders convolve before upsampling
        self.head = BlockConv(in_ch, base, kernel, shuffle)
        chans = [base * 2 ** (i + 1) for i in range(encoders)]
        cins = [base] + chans[:-1]
        self.enc = nn.ModuleList([conv(ci, co, kernel, 2) for ci, co in zip(cins, chans)])
        levels = range(encoders) if recurrent == "all" else []
        self.lstm = nn.ModuleList([ConvLSTM(chans[i], chans[i]) for i in levels])
        # None unless bottleneck-only (TorchScript compiles `is None` branches away)
        self.memory = ConvLSTM(chans[-1], chans[-1]) if recurrent == "bottleneck" else None
        self.recurrent_levels = list(levels) if recurrent == "all" else [encoders - 1]
        self.n_state = 2 * len(self.recurrent_levels) + (1 if feedback else 0)
        self.res = nn.Sequential(*[ResidualBlock(chans[-1]) for _ in range(res_blocks)])
        self.dec = nn.ModuleList([conv(co, ci, kernel)
                                  for ci, co in zip(cins[::-1], chans[::-1])])
        # with feedback: a second output plane, the gate's logit; with advect a third, the
        # advection's step
        self.planes = 1 + int(feedback) + int(advect)
        self.pred = pointwise(base, shuffle * shuffle * self.planes)
        self.chans = chans

    def init_state(self, x: Tensor) -> List[Tensor]:
        """Reset state for a full-resolution input ``x`` (B, C, H, W): zero memories and,
        with feedback, a mid-grey image."""
        b, _, h, w = x.shape
        state: List[Tensor] = []
        for i in self.recurrent_levels:
            s = self.shuffle << (i + 1)
            z = torch.zeros(b, self.chans[i], h // s, w // s, dtype=x.dtype, device=x.device)
            state += [z, z]
        if self.feedback:
            state.append(torch.full((b, 1, h, w), 0.5, dtype=x.dtype, device=x.device))
        return state

    def forward(self, voxel: Tensor, state: List[Tensor], counts: Optional[Tensor] = None,
                gain: Optional[Tensor] = None) -> Tuple[Tensor, List[Tensor], Tensor, Tensor]:
        if len(state) == 0:
            state = self.init_state(voxel)
        prev = state[len(state) - 1]  # the last image (used with feedback only)
        events = voxel
        if self.feedback:
            voxel = torch.cat([voxel, prev], 1)
        x = self.head(voxel)
        skips = [x]
        new_state: List[Tensor] = []
        if self.memory is None:  # E2VID: every encoder's output through a ConvLSTM
            i = 0
            for enc, lstm in zip(self.enc, self.lstm):
                x = enc(x)
                h, c = lstm(x, state[2 * i], state[2 * i + 1])
                new_state += [h, c]
                x = h
                skips.append(x)
                i += 1
        else:
            for enc in self.enc:
                x = enc(x)
                skips.append(x)
            x, c = self.memory(x, state[0], state[1])
            new_state += [x, c]
        x = self.res(x)
        feat = x  # with a single encoder the bottleneck is the half-resolution feature
        j = 0
        for dec in self.dec:
            # conv_first: convolve at the coarse scale, then upsample (4x cheaper)
            x = (up2x(dec(x)) if self.conv_first else dec(up2x(x))) + skips[len(skips) - 2 - j]
            if j == len(self.dec) - 2:
                # the half-resolution decoder feature, not the encoder's: it has seen the
                # bottleneck's context and the recurrent memory of every sub-window, which
                # the deblurring event branch (two convolutions deep there) has not
                feat = x
            j += 1
        out = torch.sigmoid(from_blocks(self.pred(x), self.shuffle))
        if self.feedback:
            gate = out[:, 1:2]
            if self.advect:
                if counts is None:  # the inputs are log1p counts
                    counts = torch.expm1(events)
                on = counts[:, 0::2].sum(1, keepdim=True)
                off = counts[:, 1::2].sum(1, keepdim=True)
                change = on - off
                if self.advect_support > 0:
                    both = on + off
                    near = box_sum3(both) - both
                    change = change * (near >= self.advect_support).to(change.dtype)
                step = self.step_max * out[:, 2:3]
                if gain is not None:  # training: each sequence's sensor threshold / ref
                    step = step * gain
                prev = torch.clamp(prev + step * change, 0.0, 1.0)
            image = gate * prev + (1.0 - gate) * out[:, :1]
            new_state.append(image)
            return image, new_state, feat, x
        return out, new_state, feat, x
