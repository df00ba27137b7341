"""Losses of EVIF: SSIM, the MI-minimisation loss (Eq. 4) and InfoNCE (Eq. 5)."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor


def _gauss(size: int = 11, sigma: float = 1.5, device=None) -> Tensor:
    x = torch.arange(size, dtype=torch.float32, device=device) - size // 2
    g = torch.exp(-x * x / (2 * sigma * sigma))
    g = g / g.sum()
    return (g[:, None] * g[None, :])[None, None]


def ssim(a: Tensor, b: Tensor, data_range: float = 1.0) -> Tensor:
    """Mean SSIM of (B, 1, H, W) images (11x11 Gaussian window, sigma 1.5, valid region)."""
    w = _gauss(device=a.device).to(a.dtype)
    c1, c2 = (0.01 * data_range) ** 2, (0.03 * data_range) ** 2
    mu_a, mu_b = F.conv2d(a, w), F.conv2d(b, w)
    saa = F.conv2d(a * a, w) - mu_a ** 2
    sbb = F.conv2d(b * b, w) - mu_b ** 2
    sab = F.conv2d(a * b, w) - mu_a * mu_b
    num = (2 * mu_a * mu_b + c1) * (2 * sab + c2)
    den = (mu_a ** 2 + mu_b ** 2 + c1) * (saa + sbb + c2)
    return (num / den).mean()


def psnr_loss(pred: Tensor, target: Tensor, eps: float = 1e-10) -> Tensor:
    """Negative PSNR (dB, peak 1) per image, averaged over the batch (NAFNet's PSNR loss).

    Same minimiser per image as L2, but every image weighs by its relative error: a
    nearly sharp frame at 60 dB counts as much as a smeared one at 30 dB, which is how
    the mean PSNR of an evaluation weighs them (plain L2 lets the worst frames dominate
    and the network never learns to leave a sharp frame alone).
    """
    mse = ((pred - target) ** 2).flatten(1).mean(1)
    return (10.0 / math.log(10.0) * torch.log(mse + eps)).mean()


def _kl(mu1: Tensor, lv1: Tensor, mu2: Tensor, lv2: Tensor) -> Tensor:
    """KL(N(mu1, e^lv1) || N(mu2, e^lv2)), summed over dims, mean over the batch."""
    return 0.5 * (lv2 - lv1 + (lv1.exp() + (mu1 - mu2) ** 2) / lv2.exp() - 1).sum(1).mean()


def mi_min_loss(mu_a: Tensor, lv_a: Tensor, mu_b: Tensor, lv_b: Tensor,
                sample: bool = True) -> Tensor:
    """Eq. 4 (following the cascaded MI-minimisation of Zhang et al., ICCV 2021):
    ``H(z_b, z_a) + H(z_a, z_b) - (KL(z_a || z_b) + KL(z_b || z_a))``, the cross
    entropies taken between the sigmoid-squashed latent samples.

    Minimising it pushes the two modalities' embeddings apart in information content.
    """
    if sample:
        za = mu_a + torch.randn_like(mu_a) * (0.5 * lv_a).exp()
        zb = mu_b + torch.randn_like(mu_b) * (0.5 * lv_b).exp()
    else:
        za, zb = mu_a, mu_b
    pa, pb = torch.sigmoid(za), torch.sigmoid(zb)
    ce_ab = F.binary_cross_entropy(pa, pb.detach())
    ce_ba = F.binary_cross_entropy(pb, pa.detach())
    kl = _kl(mu_a, lv_a, mu_b, lv_b) + _kl(mu_b, lv_b, mu_a, lv_a)
    return ce_ab + ce_ba - kl / mu_a.shape[1]


def info_nce(z_f: Tensor, z_m: Tensor, temperature: float = 0.1) -> Tensor:
    """Eq. 5: InfoNCE with ``(z_f[i], z_m[i])`` positive and the rest of the batch
    negative; embeddings are L2-normalised (a temperature replaces their scale).
    Mean over the batch (the paper sums)."""
    zf = F.normalize(z_f, dim=1)
    zm = F.normalize(z_m, dim=1)
    logits = zf @ zm.t() / temperature
    return F.cross_entropy(logits, torch.arange(z_f.shape[0], device=z_f.device))


def sobel_magnitude(x: Tensor) -> Tensor:
    """|dx| + |dy| of (B, 1, H, W) images with 3x3 Sobel kernels (replicate-padded)."""
    k = torch.tensor([[-1.0, 0.0, 1.0], [-2.0, 0.0, 2.0], [-1.0, 0.0, 1.0]],
                     dtype=x.dtype, device=x.device)
    xp = F.pad(x, [1, 1, 1, 1], mode="replicate")
    gx = F.conv2d(xp, k[None, None])
    gy = F.conv2d(xp, k.t()[None, None])
    return gx.abs() + gy.abs()


def structure_loss(pred: Tensor, target: Tensor, sigma: float = 1.5) -> Tensor:
    """1 - the Pearson correlation of the Sobel magnitudes of (B, 1, H, W) images after a
    Gaussian of ``sigma`` px, per image, mean over the batch: the real-recording structure
    score (``evaluation/structure.py``, without its histogram equalisation) as a loss. Blind
    to tone and contrast, it asks for the scene's edges where L1 and SSIM accept a blur as
    the safe guess under sparse events."""
    size = 2 * int(round(3 * sigma)) + 1
    w = _gauss(size, sigma, pred.device).to(pred.dtype)
    ga = sobel_magnitude(F.conv2d(F.pad(pred, [size // 2] * 4, mode="replicate"), w))
    gb = sobel_magnitude(F.conv2d(F.pad(target, [size // 2] * 4, mode="replicate"), w))
    a = ga.flatten(1) - ga.flatten(1).mean(1, keepdim=True)
    b = gb.flatten(1) - gb.flatten(1).mean(1, keepdim=True)
    corr = (a * b).sum(1) / torch.sqrt((a * a).sum(1) * (b * b).sum(1) + 1e-12)
    return (1 - corr).mean()


def salience_loss(fused: Tensor, vis: Tensor, ir: Tensor) -> tuple[Tensor, Tensor]:
    """Intensity and texture terms against the element-wise maximum of the sources
    (SeAFusion-style, L1): warm targets keep the IR's brightness and each pixel keeps the
    stronger of the two sources' gradients."""
    l_int = F.l1_loss(fused, torch.maximum(vis, ir))
    l_grad = F.l1_loss(sobel_magnitude(fused),
                       torch.maximum(sobel_magnitude(vis), sobel_magnitude(ir)))
    return l_int, l_grad


def _bin_weights(x: Tensor, bins: int) -> tuple[Tensor, Tensor]:
    """Linear-interpolation binning of (B, 1, H, W) values in [0, 1] among ``bins`` equal
    bins: each value's lower bin index (B, N) and its weight on the bin above (B, N), 0 at
    a bin's centre; the weights carry the gradient."""
    pos = (x.flatten(1) * bins - 0.5).clamp(0, bins - 1)
    low = pos.detach().floor().clamp(max=bins - 2)
    return low.long(), pos - low


def intensity_mi(a: Tensor, b: Tensor, bins: int = 32) -> Tensor:
    """Mutual information (bits) between the intensities of two (B, 1, H, W) images in
    [0, 1], from their joint histogram with linear-interpolation (triangular-kernel)
    binning; mean over the batch. O(pixels): each pixel adds to four joint bins.

    The quantity the MI fusion metric counts (there on 256 hard bins), made differentiable:
    a fused image keeps it high by being a sharp function of each source's intensities
    rather than a grey compromise between them."""
    ia, fa = _bin_weights(a, bins)
    ib, fb = _bin_weights(b, bins)
    joint = a.new_zeros(a.shape[0], bins * bins)
    for da, wa in ((0, 1 - fa), (1, fa)):
        for db, wb in ((0, 1 - fb), (1, fb)):
            joint = joint.scatter_add(1, (ia + da) * bins + ib + db, wa * wb)
    joint = (joint / ia.shape[1]).view(-1, bins, bins)  # each image's sums to 1
    pa, pb = joint.sum(2, keepdim=True), joint.sum(1, keepdim=True)
    eps = 1e-12
    mi = (joint * (torch.log(joint + eps) - torch.log(pa * pb + eps))).sum((1, 2))
    return mi.mean() / math.log(2.0)


# the fusion objective's terms in the order of its weights (the CLI's names): the paper's
# Eq. 6 (SSIM, MI, NCE), the salience terms, then optional ones, 0 when left out
FUSION_TERMS = ("ssim", "mi", "nce", "int", "grad", "mi_px", "ssim_vis", "mi_px_vis")
FUSION_WEIGHTS = (1.0, 0.1, 0.01, 0.0, 0.0)
# SSIM keeps the weight of Eq. 6: with it at 0.5 and the salience terms at 4.0 (a first
# run), the network matched gradient magnitudes with 16-px block edges and lost structure
# (SSIM sum 0.90 -> 0.70 while training)
SALIENT_FUSION_WEIGHTS = (1.0, 0.1, 0.01, 1.0, 1.0)
# the same with the gradient term tripled: the fused image kept ~80 % of the stronger
# source's average gradient (AG 3.9 vs 4.9 for Laplacian-pyramid fusion on RoadScene)
SHARP_FUSION_WEIGHTS = (1.0, 0.1, 0.01, 1.0, 3.0)


def fusion_loss(fused: Tensor, vis: Tensor, ir: Tensor, emb: dict,
                weights=FUSION_WEIGHTS) -> tuple[Tensor, dict]:
    """L_fuse = w0 L_SSIM + w1 L_MI + w2 (L_NCE_vis + L_NCE_ir) + w3 L_int + w4 L_grad
    - w5 (MI(F, vis) + MI(F, ir)) + w6 (1 - SSIM(F, vis)) - w7 MI(F, vis), weights in the
    order of ``FUSION_TERMS``; ``w5``-``w7`` are 0 when ``weights`` has fewer entries.
    MI(F, .) is the intensity MI of :func:`intensity_mi` (bits).

    ``w6`` and ``w7`` weight the visible side of the SSIM and intensity-MI terms beyond
    ``w0`` and ``w5``: the IR side, with its strong salient targets, otherwise pulls the
    fused image towards it and the visible texture is lost (measured in the model card).

    With the paper's weights (1.0, 0.1, 0.01) and no salience terms this is Eq. 6; the
    symmetric SSIM alone rewards a grey compromise between the sources, which the
    salience terms (:func:`salience_loss`) counter."""
    l_ssim_vis = 1 - ssim(fused, vis)
    l_ssim = l_ssim_vis + (1 - ssim(fused, ir))
    l_mi = mi_min_loss(emb["mu_vis_f"], emb["lv_vis_f"], emb["mu_ir_f"], emb["lv_ir_f"])
    l_nce = info_nce(emb["z_f"], emb["z_vis"]) + info_nce(emb["z_f"], emb["z_ir"])
    l_int, l_grad = salience_loss(fused, vis, ir)
    total = (weights[0] * l_ssim + weights[1] * l_mi + weights[2] * l_nce
             + weights[3] * l_int + weights[4] * l_grad)
    terms = {"ssim": float(l_ssim.detach()), "mi": float(l_mi.detach()),
             "nce": float(l_nce.detach()), "int": float(l_int.detach()),
             "grad": float(l_grad.detach())}
    w = tuple(weights) + (0.0,) * (len(FUSION_TERMS) - len(weights))
    if w[5] or w[7]:
        mi_vis = intensity_mi(fused, vis)
        mi_px = mi_vis + intensity_mi(fused, ir)
        total = total - w[5] * mi_px - w[7] * mi_vis
        terms["mi_px"] = float(mi_px.detach())
        terms["mi_px_vis"] = float(mi_vis.detach())
    if w[6]:
        total = total + w[6] * l_ssim_vis
        terms["ssim_vis"] = float(l_ssim_vis.detach())
    return total, terms
