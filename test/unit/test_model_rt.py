"""The real-time size and its building blocks: each fast path against the slow reference it
replaces (torch's own layers, numpy's percentile, hand-computed values)."""

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from evif_ros.learning.cost import count_macs
from evif_ros.learning.deblur import event_gate
from evif_ros.learning.firenet import FireNet
from evif_ros.learning.layers import ChannelAttention, ConvGRU, TransformerBlock, pointwise
from evif_ros.learning.losses import (
    FUSION_TERMS,
    fusion_loss,
    intensity_mi,
    salience_loss,
    sobel_magnitude,
    ssim,
)
from evif_ros.learning.pipeline import SIZES, EvifPipeline, config_for, quantile


def test_stacked_reconstruction_sees_on_and_off_counts_per_sub_window():
    sub = torch.zeros(1, 2, 10, 16, 16)
    sub[0, 1, 3, 5, 7] = 2.0  # sub-window 1, ON bin 3
    sub[0, 0, 9, 1, 1] = 1.0  # sub-window 0, OFF bin 4
    per = EvifPipeline.per_polarity(sub)
    assert per.shape == (1, 2, 2, 16, 16)
    assert per[0, 1, 0, 5, 7] == 2.0 and per[0, 0, 1, 1, 1] == 1.0 and per.sum() == 3.0
    assert torch.equal(EvifPipeline.per_polarity(per), per)


def test_quantile_from_order_statistics_equals_numpy_percentile():
    g = torch.Generator().manual_seed(0)
    x = torch.rand(3, 1001, generator=g) * 9000
    # raw counts are whole numbers: ties at the order statistics too
    for rows in (x, torch.round(x / 100.0)):
        for q in (0.0, 0.005, 0.3, 0.5, 0.7, 0.995, 1.0):
            np.testing.assert_allclose(quantile(rows, q).numpy(),
                                       np.percentile(rows.numpy(), 100 * q, axis=1),
                                       rtol=1e-6)
    # by hand: 0.25 of [0, 10, 20, 30, 40] sits at position 1 -> 10; 0.3 at 1.2 -> 12
    row = torch.tensor([[40.0, 0.0, 30.0, 10.0, 20.0]])
    assert float(quantile(row, 0.25)) == 10.0 and abs(float(quantile(row, 0.3)) - 12.0) < 1e-5


@pytest.mark.parametrize("layout", [torch.contiguous_format, torch.channels_last])
def test_transformer_unembedding_equals_the_transposed_convolution(layout):
    torch.manual_seed(0)
    block = TransformerBlock(4, 16, 2, patch=16).eval()
    with torch.no_grad():
        block.unembed.bias.uniform_(-1, 1)  # torch starts it near zero: make it count
    x = torch.rand(2, 4, 32, 48)
    with torch.no_grad():
        t = block.embed(x)
        b, d, h, w = t.shape
        tok = t.flatten(2).transpose(1, 2)
        y = block.norm1(tok)
        tok = tok + block.attn(y, y, y, need_weights=False)[0]
        tok = tok + block.mlp(block.norm2(tok))
        ref = x + block.unembed(tok.transpose(1, 2).reshape(b, d, h, w))
        out = block(x.contiguous(memory_format=layout))
        assert (out - ref).abs().max() < 1e-5
        assert out.is_contiguous(memory_format=layout)  # no layout switch for the next op


def test_pointwise_convolution_equals_torchs_plain_1x1_convolution():
    torch.manual_seed(2)
    layer = pointwise(6, 3)
    x = torch.rand(2, 6, 9, 11, requires_grad=True)
    for xin in (x, x.contiguous(memory_format=torch.channels_last)):
        out = layer(xin)
        ref = F.conv2d(xin, layer.weight, layer.bias)
        assert out.shape == ref.shape and (out - ref).abs().max() < 1e-6
        g_out = torch.autograd.grad(out.square().sum(), (x, layer.weight))
        g_ref = torch.autograd.grad(ref.square().sum(), (x, layer.weight))
        assert all((a - b).abs().max() < 1e-5 for a, b in zip(g_out, g_ref))


def test_convgru_from_a_zero_state_equals_the_full_cell_with_zeros():
    torch.manual_seed(3)
    cell = ConvGRU(5, 4)
    x = torch.rand(2, 5, 12, 10)
    full = cell(x, torch.zeros(2, 4, 12, 10))
    short = cell(x, None)
    assert (full - short).abs().max() < 1e-6
    # and the gradients reach the same weights (the state's half of each kernel gets none)
    g_full = torch.autograd.grad(full.sum(), (cell.zr.weight, cell.q.weight))
    g_short = torch.autograd.grad(cell(x, None).sum(), (cell.zr.weight, cell.q.weight))
    for a, b in zip(g_full, g_short):
        torch.testing.assert_close(b, a, rtol=1e-5, atol=1e-5 * float(a.abs().max()))


def test_channel_attention_gives_the_same_result_in_both_memory_layouts():
    torch.manual_seed(4)
    att = ChannelAttention(6, 4).eval()
    q, kv = torch.rand(2, 6, 10, 14), torch.rand(2, 4, 10, 14)
    with torch.no_grad():
        ref = att(q, kv)
        # by hand, in (c, hw) form: out = W_o (softmax(Q K^T / sqrt(hw)) V) + b_o
        qq, kk, vv = (F.conv2d(t, m.weight, m.bias).flatten(2)
                      for t, m in ((q, att.q), (kv, att.k), (kv, att.v)))
        a = torch.softmax(qq @ kk.transpose(1, 2) / (10 * 14) ** 0.5, -1)
        by_hand = F.conv2d((a @ vv).view(2, 6, 10, 14), att.out.weight, att.out.bias)
        cl = att(q.contiguous(memory_format=torch.channels_last),
                 kv.contiguous(memory_format=torch.channels_last))
    assert (ref - by_hand).abs().max() < 1e-5 and (cl - by_hand).abs().max() < 1e-5
    assert cl.is_contiguous(memory_format=torch.channels_last)


def test_half_resolution_networks_see_every_pixel_and_predict_every_pixel():
    """At scale 2 the networks run on 2x2 pixel blocks: a change in any one input pixel
    reaches the output, and each output pixel of a block is predicted on its own."""
    torch.manual_seed(5)
    model = EvifPipeline(config_for("rt2", recon_base=4, deblur_base=4, fusion_base=4,
                                    fusion_dim=16)).eval()
    ir = 7000 + 1000 * torch.rand(1, 1, 32, 32)
    ev = torch.poisson(torch.full((1, 10, 32, 32), 0.3))
    sub = torch.poisson(torch.full((1, 6, 10, 32, 32), 0.3))
    with torch.no_grad():
        base = model(ir, ev, sub, [])
        ir2 = ir.clone()
        ir2[0, 0, 17, 17] += 500  # odd row and column: the block's last pixel
        moved = model(ir2, ev, sub, [])
    assert (moved[1] - base[1]).abs().max() > 0 and (moved[0] - base[0]).abs().max() > 0
    assert base[2].shape == (1, 1, 32, 32)
    # the four pixels of a 2x2 block are not one value repeated (no nearest upsampling)
    blocks = base[2][0, 0].reshape(16, 2, 16, 2)
    assert (blocks - blocks[:, :1, :, :1]).abs().amax(dim=(1, 3)).max() > 0


def test_event_gate_separable_max_equals_the_square_max_filter():
    g = torch.Generator().manual_seed(1)
    vox = torch.log1p(torch.poisson(torch.full((2, 10, 30, 40), 0.01), generator=g))
    ref = torch.clamp(F.max_pool2d(vox.sum(1, keepdim=True), 5, 1, 2) / np.log(2.0), 0, 1)
    assert torch.equal(event_gate(vox, 2), ref)


def test_salience_loss_by_hand():
    vis = torch.zeros(1, 1, 8, 8)
    vis[..., :, 4:] = 1.0  # a vertical edge between columns 3 and 4
    # Sobel by hand at the edge: [-1 0 1; -2 0 2; -1 0 1] over a 0 -> 1 step = 4, in
    # columns 3 and 4 (replicate padding: the borders see no step)
    assert float(sobel_magnitude(vis)[0, 0, 4, 3]) == 4.0
    assert float(sobel_magnitude(vis).sum()) == 4.0 * 2 * 8
    dark = torch.zeros_like(vis)
    l_int, l_grad = salience_loss(vis.clone(), vis, dark)  # fused = the maximum: no loss
    assert float(l_int) == 0.0 and float(l_grad) == 0.0
    grey = torch.full_like(vis, 0.5)
    # fused = max(vis, grey) steps 0.5 -> 1 (Sobel 2) where the target gradient is 4:
    # |2 - 4| on 16 of 64 pixels = 0.5; intensity matches the maximum exactly
    l_int, l_grad = salience_loss(torch.maximum(vis, grey), vis, grey)
    assert float(l_int) == 0.0 and abs(float(l_grad) - 0.5) < 1e-6
    l_int, _ = salience_loss(grey, vis, grey)  # loses the bright half: 0.5 on half the pixels
    assert abs(float(l_int) - 0.25) < 1e-6


def _hard_mi_bits(a: np.ndarray, b: np.ndarray, bins: int) -> float:
    """MI from numpy's 2-D histogram (equal bins over [0, 1])."""
    joint, _, _ = np.histogram2d(a.ravel(), b.ravel(), bins=bins, range=[[0, 1], [0, 1]])
    p = joint / joint.sum()
    pa, pb = p.sum(1, keepdims=True), p.sum(0, keepdims=True)
    nz = p > 0
    return float((p[nz] * np.log2(p[nz] / (pa * pb)[nz])).sum())


def test_intensity_mi_by_hand_and_against_numpys_histogram():
    centre = [0.25, 0.75]  # the centres of 2 bins: no interpolation
    a = torch.tensor([centre[0], centre[0], centre[1], centre[1]]).view(1, 1, 2, 2)
    b = torch.tensor([centre[0], centre[1], centre[0], centre[1]]).view(1, 1, 2, 2)
    assert abs(float(intensity_mi(a, a, bins=2)) - 1.0) < 1e-6  # a copy: H = 1 bit
    assert abs(float(intensity_mi(a, b, bins=2))) < 1e-6  # independent: 0
    # values on 8 bins' centres: the same as numpy's hard histogram, batch averaged
    g = np.random.default_rng(0)
    x = (g.integers(0, 8, (2, 1, 16, 16)) + 0.5) / 8
    y = np.where(g.random(x.shape) < 0.7, x, (g.integers(0, 8, x.shape) + 0.5) / 8)
    ref = np.mean([_hard_mi_bits(x[i], y[i], 8) for i in range(2)])
    got = float(intensity_mi(torch.from_numpy(x).float(), torch.from_numpy(y).float(), 8))
    assert abs(got - ref) < 1e-5 and ref > 0.5


def test_intensity_mi_term_pulls_a_grey_fusion_towards_the_sources():
    g = torch.Generator().manual_seed(0)
    vis, ir = torch.rand(2, 1, 32, 32, generator=g), torch.rand(2, 1, 32, 32, generator=g)
    fused = (0.5 * vis + 0.5 * ir + 0.01 * torch.rand(2, 1, 32, 32, generator=g))
    emb = {"mu_vis_f": torch.zeros(2, 4), "lv_vis_f": torch.zeros(2, 4),
           "mu_ir_f": torch.zeros(2, 4), "lv_ir_f": torch.zeros(2, 4),
           "z_f": torch.rand(2, 4, generator=g), "z_vis": torch.rand(2, 4, generator=g),
           "z_ir": torch.rand(2, 4, generator=g)}
    base, terms = fusion_loss(fused, vis, ir, emb, (1, 0, 0, 1, 1))
    with_mi, terms_mi = fusion_loss(fused, vis, ir, emb, (1, 0, 0, 1, 1, 0.5))
    assert "mi_px" not in terms and terms_mi["mi_px"] > 0
    assert abs(float(base - with_mi) - 0.5 * terms_mi["mi_px"]) < 1e-5
    # the seventh weight: the visible side of the SSIM term once more, by hand
    with_vis, terms_vis = fusion_loss(fused, vis, ir, emb, (1, 0, 0, 1, 1, 0.5, 2))
    l_vis = 1 - float(ssim(fused, vis))
    assert abs(terms_vis["ssim_vis"] - l_vis) < 1e-6 and 0 < l_vis < terms_vis["ssim"]
    assert abs(float(with_vis - with_mi) - 2 * l_vis) < 1e-5
    # the eighth: the visible side of the intensity MI once more
    with_mi_vis, terms_mv = fusion_loss(fused, vis, ir, emb, (1, 0, 0, 1, 1, 0.5, 2, 0.75))
    mi_vis = float(intensity_mi(fused, vis))
    assert abs(terms_mv["mi_px_vis"] - mi_vis) < 1e-6 and 0 < mi_vis < terms_mv["mi_px"]
    assert abs(float(with_vis - with_mi_vis) - 0.75 * mi_vis) < 1e-5
    # one gradient step on the MI term alone raises it (the gradient reaches the image)
    f = fused.clone().requires_grad_(True)
    mi = intensity_mi(f, vis) + intensity_mi(f, ir)
    mi.backward()
    stepped = (f + 0.002 * f.grad.sign()).detach()
    assert float(intensity_mi(stepped, vis) + intensity_mi(stepped, ir)) > float(mi.detach())


def test_mac_count_of_one_convolution_by_hand():
    net = nn.Sequential(nn.Conv2d(3, 5, 3, 1, 1), nn.ConvTranspose2d(5, 2, 2, 2))
    # conv: 5x10x12 outputs x 3*3*3 MACs; transposed: 5x10x12 inputs x 2*2*2 MACs
    assert count_macs(net, torch.rand(1, 3, 10, 12)) == 5 * 120 * 27 + 5 * 120 * 8


def test_firenet_reference_has_the_papers_size_and_scripts():
    net = FireNet()
    assert 37_000 < sum(p.numel() for p in net.parameters()) < 39_000  # "38k parameters"
    scripted = torch.jit.script(net.eval())
    img, state = scripted(torch.rand(1, 5, 20, 30), [])
    img2, _ = scripted(torch.rand(1, 5, 20, 30), state)
    assert img.shape == (1, 1, 20, 30) and len(state) == 2 and torch.isfinite(img2).all()


def test_cli_choices_match_the_model_code():
    from evif_ros.apps.commands import train as cli
    from evif_ros.learning.train import FUSION_OBJECTIVES
    assert set(cli.MODEL_SIZES) == set(SIZES)
    assert cli.FUSION_OBJECTIVES == FUSION_OBJECTIVES
    assert cli.FUSION_TERMS == FUSION_TERMS
    # named weights land in the loss's order, the others 0
    assert cli._weights("grad=4,ssim=3,mi_px_vis=0.5") == (3, 0, 0, 0, 4, 0, 0, 0.5)
    assert cli._weights("2,0,0,1,4") == (2, 0, 0, 1, 4)
