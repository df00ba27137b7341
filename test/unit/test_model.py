"""EVIF networks: scripting, shapes, losses, training steps, export (tiny inputs, CPU)."""

import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch

from evif_ros.learning.deblur import DeblurNet
from evif_ros.learning.fusion import FusionNet
from evif_ros.learning.losses import info_nce, mi_min_loss, ssim
from evif_ros.learning.pipeline import EvifPipeline, config_for, count_parameters
from evif_ros.learning.recon import ReconNet

TINY = config_for("lite", sub_windows=3, recon_base=4, deblur_base=8, fusion_base=8,
                  fusion_dim=16)


def test_each_network_scripts_and_runs_on_a_tiny_input():
    torch.manual_seed(0)
    recon = torch.jit.script(ReconNet(10, 4, kernel=3).eval())
    img, state, feat, dec = recon(torch.rand(2, 10, 16, 24), [])
    assert img.shape == (2, 1, 16, 24) and feat.shape == (2, 8, 8, 12)
    assert dec.shape == (2, 4, 16, 24) and len(state) == 6
    img2, _, _, _ = recon(torch.rand(2, 10, 16, 24), state)
    assert torch.isfinite(img2).all()
    deblur = torch.jit.script(DeblurNet(10, 8, c_rec=8).eval())
    sharp, dec_ir = deblur(torch.rand(2, 1, 16, 24), torch.rand(2, 10, 16, 24), [feat, feat])
    assert sharp.shape == (2, 1, 16, 24) and torch.isfinite(sharp).all()
    fusion = torch.jit.script(FusionNet(4, 8, 8, 16, 2).eval())
    fused, emb = fusion(img, sharp.clamp(0, 1), dec, dec_ir)
    assert fused.shape == (2, 1, 16, 24) and fused.min().item() >= 0 and fused.max().item() <= 1


TINY_RT = config_for("rt", sub_windows=3, recon_base=4, deblur_base=4, fusion_base=4,
                     fusion_dim=16)
TINY_RT2 = config_for("rt2", sub_windows=3, recon_base=4, deblur_base=4, fusion_base=4,
                      fusion_dim=16)
TINY_RT2_MOTION = config_for("rt2", sub_windows=3, recon_base=4, deblur_base=4, fusion_base=4,
                             fusion_dim=16, motion_taps=7, motion_curved=True,
                             deblur_act="lrelu")
TINY_RT2_L1 = config_for("rt2", sub_windows=3, recon_base=4, deblur_base=4, fusion_base=4,
                         fusion_dim=16, motion_taps=7, motion_curved=True, enhance_level=1)
TINY_RT2_SEES = config_for("rt2", sub_windows=3, recon_base=4, deblur_base=4, fusion_base=4,
                           fusion_dim=16, motion_taps=7, motion_curved=True,
                           motion_gate=False, motion_border=2, deblur_sees_blurry=True)


# lite: ConvLSTMs at every encoder, state (h1, ...) at 1/2 of the 264x352 padded grid;
# rt: one ConvLSTM at the bottleneck, 1/8 of the 272x352 grid (16-px fusion tokens);
# rt2: the same at half resolution, so the bottleneck is 1/16 of that grid
@pytest.mark.parametrize("cfg, n_state, state_hw", [(TINY, 6, (132, 176)),
                                                    (TINY_RT, 2, (34, 44)),
                                                    (TINY_RT2, 2, (17, 22)),
                                                    (TINY_RT2_MOTION, 2, (17, 22)),
                                                    (TINY_RT2_L1, 2, (17, 22)),
                                                    (TINY_RT2_SEES, 2, (17, 22))])
def test_pipeline_pads_and_crops_346x260_and_scripted_matches_eager(cfg, n_state, state_hw):
    torch.manual_seed(1)
    model = EvifPipeline(cfg).eval()
    scripted = torch.jit.script(model)
    ir = 7000 + 1000 * torch.rand(1, 1, 260, 346)
    ev = torch.poisson(torch.full((1, 10, 260, 346), 0.2))
    sub = torch.poisson(torch.full((1, 3, 10, 260, 346), 0.1))
    with torch.no_grad():
        a = model(ir, ev, sub, [])
        b = scripted(ir, ev, sub, [])
        c = scripted(ir, ev, sub, b[3])  # carried state
    for x in a[:3] + c[:3]:
        assert x.shape == (1, 1, 260, 346) and torch.isfinite(x).all()
    assert (a[0] - b[0]).abs().max() < 1e-4 and (a[2] - b[2]).abs().max() < 1e-4
    assert ((a[1] - b[1]).abs().max() / 1000) < 1e-4
    assert len(b[3]) == n_state and a[3][0].shape[-2:] == state_hw


def _gaussian_pair(n, dim, corr, seed):
    g = torch.Generator().manual_seed(seed)
    a = torch.randn(n, dim, generator=g)
    b = corr * a + (1 - corr ** 2) ** 0.5 * torch.randn(n, dim, generator=g)
    return a, b


def test_info_nce_low_for_matched_pairs_high_for_independent():
    a, b = _gaussian_pair(32, 16, 0.95, 0)
    matched = float(info_nce(a, b))
    indep = float(info_nce(a, torch.randn(32, 16, generator=torch.Generator().manual_seed(9))))
    assert matched < 0.5 * indep


def test_mi_min_loss_higher_for_shared_than_for_independent_embeddings():
    torch.manual_seed(0)
    a, b = _gaussian_pair(256, 16, 0.98, 1)
    lv = torch.full_like(a, -4.0)
    shared = float(mi_min_loss(a, lv, b, lv, sample=False))
    c = torch.randn(256, 16)
    independent = float(mi_min_loss(a, lv, c, lv, sample=False))
    assert shared > independent  # minimising it pushes the modalities apart


def test_ssim_identity_and_ordering():
    x = torch.rand(1, 1, 32, 32)
    assert float(ssim(x, x)) == pytest.approx(1.0, abs=1e-5)
    assert float(ssim(x, x + 0.05 * torch.randn_like(x))) > float(ssim(x, torch.rand_like(x)))


def test_sequence_batches_train_through_the_carried_state(tmp_path):
    """With earlier frames in the sample the reconstruction state is carried into the
    supervised exposure: its loss depends on the earlier frames' events and its gradient
    reaches the recurrent memory's weights through that state."""
    from evif_ros.learning.data import ShardData
    from evif_ros.learning.train import carried_state, stage_losses
    from evif_ros.sim.dataset import DatasetConfig, write_dataset
    write_dataset(tmp_path, "train", 2, seed=3, workers=1, progress=False,
                  cfg=DatasetConfig(warmup_frames=2))
    cfg = config_for("rt2", sub_windows=3, recon_base=4, deblur_base=4, fusion_base=4,
                     fusion_dim=16)
    torch.manual_seed(0)
    model = EvifPipeline(cfg).train()
    batch = ShardData(tmp_path, "train").batch(np.random.default_rng(0), 2, 64, 3)
    assert batch.warm_sub_vox.shape[1] == 2 and batch.warm_sub_vox.sum() > 0
    assert len(carried_state(model, batch)) == 2
    loss, _ = stage_losses(model, batch, 1, True)
    loss.backward()
    # one exposure from a reset state never multiplies the memory's state half of its kernel
    # by anything but zero; with carried state it does
    gates = model.recon.memory.gates.weight
    assert gates.grad[:, gates.shape[1] // 2:].abs().sum() > 0
    batch.warm_sub_vox.zero_()
    with torch.no_grad():
        no_events_before = stage_losses(model, batch, 1, True)[0]
    assert float(no_events_before) != float(loss.detach())
    batch.warm_sub_vox = batch.warm_sub_vox[:, :0]  # single exposures: a reset state
    assert carried_state(model, batch) == []


@pytest.mark.timeout(600)
@pytest.mark.slow  # trains or runs a whole CLI flow: make test, not test-fast
def test_a_few_training_steps_reduce_each_stage_loss(tiny_data):
    from evif_ros.learning.data import ShardData
    from evif_ros.learning.train import stage_losses
    data = ShardData(tiny_data, "train")
    for stage in (1, 2, 3):
        torch.manual_seed(stage)
        model = EvifPipeline(TINY).train()
        # deblurring starts as the identity, which is already close (~44 dB here): Adam's
        # first steps overshoot, so stage 2 gets a smaller step and more of them
        steps, lr = (60, 1e-3) if stage == 2 else (15, 2e-3)
        if stage == 3:  # the shipped recipe (--freeze-tasks): stage 3 trains fusion only
            model.recon.requires_grad_(False)
            model.deblur.requires_grad_(False)
        opt = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=lr)
        batch = data.batch(np.random.default_rng(stage), 4, 32, TINY.sub_windows)

        def loss_now(model=model, batch=batch, stage=stage):
            torch.manual_seed(100)  # the MI loss samples its latents: same noise each time
            with torch.no_grad():
                loss, terms = stage_losses(model, batch, stage, True)
            return float(loss), terms.get("deblur_db", 0.0)
        first, first_db = loss_now()
        for _ in range(steps):
            loss, _ = stage_losses(model, batch, stage, True)
            opt.zero_grad()
            loss.backward()
            opt.step()
        last, last_db = loss_now()
        assert last < first, (stage, first, last)
        if stage == 2:
            assert last_db > first_db, (first_db, last_db)


@pytest.mark.timeout(600)
@pytest.mark.slow  # trains or runs a whole CLI flow: make test, not test-fast
def test_cli_train_resume_export_and_load_with_only_torch(tiny_data, tmp_path):
    from evif_ros.apps.cli import main
    run = tmp_path / "run"
    base = ["train", "--data", str(tiny_data), "--out", str(run), "--size", "lite",
            "--batch", "2", "--crop", "32", "--quiet", "--limit", "6"]
    assert main(base + ["--stage", "1", "--iters", "2"]) == 0
    assert main(base + ["--stage", "1", "--iters", "3"]) == 0  # resumes at 2
    rows = (run / "stage1.csv").read_text().strip().splitlines()
    assert [r.split(",")[0] for r in rows[1:]] == ["1", "2", "3"]
    # stage 2 with the motion deconvolution in front of the deblurring network; later
    # stages and the exported file keep it
    assert main(base + ["--stage", "2", "--iters", "1", "--init", str(run / "stage1.pt"),
                        "--motion-taps", "7", "--deblur-act", "lrelu"]) == 0
    # stage 3 as the shipped recipe's last step: fusion alone, with the intensity-MI term
    # and its visible side weighted more, the weights by name
    # and trains on with the deconvolution along the time bins' curved path
    assert main(base + ["--stage", "3", "--iters", "1", "--init", str(run / "stage2.pt"),
                        "--fusion", "salient", "--fusion-weights",
                        "ssim=3,int=1,grad=4,mi_px=0.25,mi_px_vis=0.75",
                        "--freeze-tasks", "--no-mi", "--motion-curved"]) == 0
    from evif_ros.learning.train import model_from_checkpoint
    cfg2, cfg3 = (model_from_checkpoint(run / f"stage{i}.pt")[1] for i in (2, 3))
    assert (cfg2.motion_taps, cfg2.motion_curved, cfg2.deblur_act) == (7, False, "lrelu")
    assert (cfg3.motion_taps, cfg3.motion_curved, cfg3.deblur_act) == (7, True, "lrelu")
    header, row = (run / "stage3.csv").read_text().strip().splitlines()
    terms = dict(zip(header.split(","), row.split(",")))
    assert 0.0 < float(terms["mi_px"]) < 2 * 5.0  # two MIs of 32-bin histograms
    assert 0.0 < float(terms["mi_px_vis"]) < float(terms["mi_px"])  # one of the two
    out = tmp_path / "m.ts"
    assert main(["export", "--checkpoint", str(run / "stage3.pt"), "--out", str(out),
                 "--motion-curved"]) == 0
    code = (
        "import json, sys, torch\n"
        "extra = {'evif.json': ''}\n"
        f"m = torch.jit.load({str(out)!r}, _extra_files=extra)\n"
        "cfg = json.loads(extra['evif.json'])['config']\n"
        "k = cfg['sub_windows']\n"
        "assert cfg['motion_taps'] == 7 and cfg['motion_curved'] is True\n"
        "f, d, v, s = m(torch.rand(1,1,30,40)*100, torch.rand(1,10,30,40), "
        "torch.rand(1,k,10,30,40), [])\n"
        "assert f.shape == (1,1,30,40) and len(s) == 6\n"
        "print('ok', sorted(m for m in sys.modules if m.startswith('evif')))\n")
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         timeout=300)
    assert res.returncode == 0, res.stderr
    assert res.stdout.strip() == "ok []"
    # an exported file is a starting point too (the shipped files without their runs),
    # here with the cross-task enhancement moved to the first level
    again = tmp_path / "again"
    assert main(base[:4] + [str(again)] + base[5:] + ["--stage", "2", "--iters", "1",
                                                    "--init", str(out),
                                                    "--enhance-level", "1",
                                                    "--deblur-sees-blurry"]) == 0
    m, cfg, ck = model_from_checkpoint(again / "stage2.pt")
    assert cfg.enhance_level == 1 and cfg.motion_curved and ck["iter"] == 1
    assert cfg.deblur_sees_blurry
    assert m.deblur.img_head[0].weight.shape[1] == 2 * m.deblur.shuffle ** 2  # two images


def test_export_refuses_corrupt_model(tmp_path):
    from evif_ros.errors import InputFileError
    from evif_ros.runtime.model_file import load_exported
    bad = tmp_path / "bad.ts"
    bad.write_bytes(b"garbage")
    with pytest.raises(InputFileError, match="bad.ts: not a loadable"):
        load_exported(bad)
    with pytest.raises(InputFileError, match="not found"):
        load_exported(tmp_path / "none.ts")


def test_parameter_counts_of_both_sizes():
    lite = count_parameters(EvifPipeline(config_for("lite")))
    paper = count_parameters(EvifPipeline(config_for("paper")))
    assert lite < 2_500_000 < paper  # lite ships under 20 MB


def test_mi_loss_is_bounded_below_through_the_embedding_heads():
    from evif_ros.learning.fusion import VariationalEmbedding
    torch.manual_seed(0)
    head_a, head_b = VariationalEmbedding(8, 16), VariationalEmbedding(8, 16)
    x = torch.randn(4, 8, 4, 4)
    opt = torch.optim.Adam(list(head_a.parameters()) + list(head_b.parameters()), lr=0.5)
    for _ in range(200):  # minimise Eq. 4 as hard as possible
        loss = mi_min_loss(*head_a(x), *head_b(-x), sample=False)
        opt.zero_grad()
        loss.backward()
        opt.step()
    # floor with |mu|, |logvar| <= 1: KL(a||b) + KL(b||a) <= 8.93 per dimension and the
    # cross entropies are >= 0 (it ran to -4e19 unbounded)
    assert torch.isfinite(loss) and loss.item() > -8.94


def test_learning_rate_constant_then_cosine_decay_to_the_final_fraction():
    from evif_ros.learning.train import TrainArgs, learning_rate
    const = TrainArgs(Path("d"), Path("o"), 2, iters=100, lr=1e-3)
    assert {learning_rate(const, it) for it in range(100)} == {1e-3}
    dec = TrainArgs(Path("d"), Path("o"), 2, iters=100, lr=1e-3, decay_from=40)
    lrs = [learning_rate(dec, it) for it in range(101)]
    assert lrs[:41] == [1e-3] * 41  # constant up to and including the decay start
    assert all(a > b for a, b in zip(lrs[40:], lrs[41:]))  # strictly decreasing after
    assert lrs[70] == pytest.approx(1e-3 * (1 + 0.05) / 2)  # cosine midpoint
    assert lrs[100] == pytest.approx(1e-3 * 0.05)


@pytest.mark.parametrize("act", ["relu", "lrelu"])
def test_a_decoder_switched_off_by_relu_cuts_off_the_encoder_and_the_enhancement(act):
    """The failure the shipped rt2 network had: when the decoder layer ``up1`` outputs 0
    for every input (all pre-activations negative, here forced by its bias), a ReLU network
    passes nothing from the encoder or the cross-task enhancement to the output and no
    gradient back to them; with LeakyReLU both still flow."""
    torch.manual_seed(0)
    net = DeblurNet(in_ch=10, base=4, c_rec=8, shuffle=2, conv_first=True, act=act)
    with torch.no_grad():
        net.up1[0].bias.fill_(-1e3)
    ir = torch.rand(1, 1, 32, 32)
    vox = torch.log1p(torch.poisson(torch.full((1, 10, 32, 32), 0.5)))
    feats = [torch.rand(1, 8, 8, 8)]
    out, _ = net(ir, vox, feats)
    without, _ = net(ir, vox, [])
    out.sum().backward()
    grad = net.img_down2[0].weight.grad
    if act == "relu":
        assert torch.equal(out, without)
        assert grad is None or grad.abs().max() == 0
    else:
        assert (out - without).abs().max() > 1e-6
        assert grad.abs().max() > 0


def test_enhancement_at_the_first_level_acts_past_a_dead_decoder():
    """With the enhancement at the first level (the reconstruction's last decoder feature
    merged into the first event feature), the failure above no longer cuts it off: its
    path to the output is the first level's skip. Output and gradient reach it even with
    ReLU and ``up1`` dead."""
    torch.manual_seed(0)
    net = DeblurNet(in_ch=10, base=4, c_rec=8, shuffle=2, conv_first=True, enhance_level=1,
                    c_dec=6)
    with torch.no_grad():
        net.up1[0].bias.fill_(-1e3)
        net.cte.scale.fill_(1.0)
    ir = torch.rand(1, 1, 32, 32)
    vox = torch.log1p(torch.poisson(torch.full((1, 10, 32, 32), 0.5)))
    feats = [torch.rand(1, 6, 16, 16)]  # at the network's resolution (half of 32)
    out, _ = net(ir, vox, feats)
    without, _ = net(ir, vox, [])
    assert (out - without).abs().max() > 1e-6
    out.sum().backward()
    assert net.cte.fwd.q.weight.grad.abs().max() > 0
    with pytest.raises(ValueError, match="enhance_level must be 1 or 2"):
        DeblurNet(enhance_level=3)


def test_moving_the_enhancement_keeps_every_other_weight():
    from evif_ros.errors import ConfigError
    from evif_ros.learning.pipeline import with_settings
    from evif_ros.learning.train import moved_enhancement
    torch.manual_seed(0)
    model = EvifPipeline(TINY_RT2_MOTION)
    moved, cfg = moved_enhancement(model, TINY_RT2_MOTION, 1)
    assert cfg.enhance_level == 1 and cfg.motion_curved and cfg.deblur_act == "lrelu"
    old, new = model.state_dict(), moved.state_dict()
    assert set(old) == set(new)
    for k, v in old.items():
        if k.startswith("deblur.cte."):
            continue
        assert torch.equal(v, new[k]), k
    # the first level's event feature has deblur_base channels, the second twice that
    assert new["deblur.cte.scale"].shape[1] == 4 and old["deblur.cte.scale"].shape[1] == 8
    # the reconstruction's last decoder feature (recon_base channels) feeds it
    assert new["deblur.cte.fwd.q.weight"].shape[1] == 4 + 8
    with pytest.raises(ConfigError, match="--enhance-level needs the cross-task"):
        moved_enhancement(model, config_for("rt2", enhance=False), 1)
    with pytest.raises(ConfigError, match="has weights of its own"):
        with_settings(model, TINY_RT2_MOTION, enhance_level=1)


def test_seeing_the_blurry_frame_starts_as_the_model_and_reaches_it():
    """The widened deblurring network gives the model's own outputs (the blurry frame's
    weights start at zero), its image head takes the blurry frame as a second input that
    the loss can train, and a model without the deconvolution is refused."""
    from evif_ros.errors import ConfigError
    from evif_ros.learning.train import seeing_blurry
    torch.manual_seed(0)
    cfg = replace(TINY_RT2_SEES, deblur_sees_blurry=False)
    model = EvifPipeline(cfg).eval()
    wide, wcfg = seeing_blurry(model, cfg)
    wide.eval()
    assert wcfg.deblur_sees_blurry and not cfg.deblur_sees_blurry
    old_w = model.state_dict()["deblur.img_head.0.weight"]
    new_w = wide.state_dict()["deblur.img_head.0.weight"]
    # 2x2 blocks: 4 input channels per image, the blurry frame's 4 after the frame's
    assert old_w.shape[1] == 4 and new_w.shape[1] == 8
    assert torch.equal(new_w[:, :4], old_w) and not new_w[:, 4:].any()
    ir = 7000 + 1000 * torch.rand(1, 1, 64, 80)
    ev = torch.poisson(torch.full((1, 10, 64, 80), 0.3))
    sub = torch.poisson(torch.full((1, 3, 10, 64, 80), 0.1))
    with torch.no_grad():
        a, b = model(ir, ev, sub, []), wide(ir, ev, sub, [])
    for x, y in zip(a[:3], b[:3]):
        assert torch.equal(x, y)
    # the blurry frame reaches the output: a gradient on its (zero) weights
    wide.train()
    wide(ir, ev, sub, [])[1].sum().backward()
    assert wide.deblur.img_head[0].weight.grad[:, 4:].abs().max() > 0
    with pytest.raises(ConfigError, match="--deblur-sees-blurry needs the motion"):
        seeing_blurry(EvifPipeline(TINY_RT2), TINY_RT2)


def test_init_recon_carries_the_reconstruction_alone(tmp_path):
    """Stage 2 of a wider deblurring network (the hq size) from another file's
    reconstruction: that network's weights exactly, the others fresh; a reconstruction of
    another design is refused by name."""
    from dataclasses import replace

    from evif_ros.errors import ConfigError
    from evif_ros.learning.train import TrainArgs, recon_from, save_checkpoint, train
    torch.manual_seed(0)
    donor = EvifPipeline(TINY_RT2_MOTION)
    path = tmp_path / "donor.pt"
    save_checkpoint(path, donor, torch.optim.AdamW(donor.parameters()), 5, TINY_RT2_MOTION, 3)
    wide = replace(TINY_RT2_MOTION, deblur_base=8)
    model = recon_from(path, wide)
    for k, v in donor.recon.state_dict().items():
        assert torch.equal(v, model.recon.state_dict()[k]), k
    assert model.deblur.state_dict().keys() == EvifPipeline(wide).deblur.state_dict().keys()
    donor_sd = donor.deblur.state_dict()
    assert any(v.shape != donor_sd[k].shape for k, v in model.deblur.state_dict().items())
    with pytest.raises(ConfigError, match=r"--init-recon .*donor.pt: its 'rt2' "
                                          r"reconstruction does not fit"):
        recon_from(path, replace(TINY_RT2_MOTION, recon_base=8))
    with pytest.raises(ConfigError, match="--init-recon starts stage 2"):
        train(TrainArgs(data=tmp_path, out=tmp_path / "run", stage=3, init_recon=path))


def test_the_hq_size_is_the_shipped_reconstruction_with_a_wider_deblurring():
    """evif_hq.ts trains from evif_rt.ts's reconstruction: the two sizes' reconstructions
    must stay the same design (the rt4 entry is what the shipped file records)."""
    rt4, hq = config_for("rt4"), config_for("hq")
    recon_fields = ("sub_windows", "recon_base", "recon_kernel", "recon_stacked",
                    "recon_recurrent", "conv_first", "scale", "recon_feedback", "recon_advect",
                    "recon_advect_support")
    assert all(getattr(rt4, f) == getattr(hq, f) for f in recon_fields)
    assert hq.deblur_base == 4 * rt4.deblur_base
    assert (hq.motion_taps, hq.motion_curved, hq.motion_gate) == (7, True, False)


def test_training_crops_are_cut_from_the_whole_frame_deconvolved(tiny_data):
    """With a motion deconvolution, the deblurring network trains on crops of the frame
    deconvolved whole (as inference sees it), flipped with the crop; the pipeline fed that
    result gives what it computes itself on the whole frame."""
    from evif_ros.learning.data import ShardData, sample_tensors
    from evif_ros.learning.layers import pad_to
    from evif_ros.learning.train import whole_frame_deconvolution
    # a stand-in deconvolver whose result is known by hand: the frame doubled
    data = ShardData(tiny_data, "train", deconvolve=lambda ir_n, vox: 2.0 * ir_n)
    s = data.samples[0]
    want = 2.0 * (s["ir_blur"] - s["ir_lo"]) / s["ir_scale"] * s["ir_scale"] + s["ir_lo"]
    assert np.allclose(s["ir_deconv"], want, rtol=1e-5)
    rng = np.random.default_rng(0)
    for _ in range(6):  # some crops mirrored, some not
        c = ShardData.crop(s, rng, 32, 3, flip=True)
        ir, deconv = c[0], c[-1]
        assert np.allclose((deconv - s["ir_lo"]) / s["ir_scale"],
                           2.0 * (ir - s["ir_lo"]) / s["ir_scale"], atol=1e-4)
    plain = ShardData(tiny_data, "train", limit=1)
    assert "ir_deconv" not in plain.samples[0]
    assert np.array_equal(ShardData.crop(plain.samples[0], np.random.default_rng(1), 32, 3,
                                         True)[-1],
                          ShardData.crop(plain.samples[0], np.random.default_rng(1), 32, 3,
                                         True)[0])
    # the model's own deconvolver, and the pipeline given its result
    assert whole_frame_deconvolution(EvifPipeline(config_for("rt2", sub_windows=3))) is None
    model = EvifPipeline(TINY_RT2_MOTION).eval()
    run = whole_frame_deconvolution(model)
    h, w = s["ir_blur"].shape
    ir_n = ((s["ir_blur"] - s["ir_lo"]) / s["ir_scale"]).astype(np.float32)
    vox = sample_tensors(s["events"], s["exposure_ns"], s["recon_start_ns"], 1, h, w)[0]
    deconv = run(ir_n, vox)
    x = pad_to(torch.from_numpy(ir_n)[None, None], model.multiple)[0]
    v = pad_to(torch.from_numpy(vox)[None], model.multiple)[0]
    assert float(np.abs(deconv - ir_n).max()) > 1e-3  # the tiny sample's camera moved
    sub = torch.zeros(1, 3, 10, x.shape[2], x.shape[3])
    with torch.no_grad():
        full = model.deblur.motion(x, model.events_in(v))[0]
        own = model.run(x, v, sub, [])["ir_n"]
        given = model.run(x, v, sub, [], full)["ir_n"]
        other = model.run(x, v, sub, [], x)["ir_n"]  # handed the blurry frame instead
    assert np.array_equal(deconv, full[0, 0, :h, :w].numpy())
    assert torch.equal(own, given) and not torch.allclose(own, other, atol=1e-3)


def test_init_fusion_copies_every_fusion_weight_whose_shape_agrees(tmp_path):
    from dataclasses import replace

    from evif_ros.errors import ConfigError
    from evif_ros.learning.train import TrainArgs, fusion_from, save_checkpoint, train
    torch.manual_seed(0)
    donor = EvifPipeline(TINY_RT2_MOTION)
    path = tmp_path / "donor.pt"
    save_checkpoint(path, donor, torch.optim.AdamW(donor.parameters()), 5, TINY_RT2_MOTION, 3)
    wide = EvifPipeline(replace(TINY_RT2_MOTION, deblur_base=8))
    before = {k: v.clone() for k, v in wide.fusion.state_dict().items()}
    fresh = fusion_from(wide, path)
    # only the projection of the deblurring feature (4 -> 8 channels) has another shape
    assert fresh == ["proj_ir.0.weight"]
    after, theirs = wide.fusion.state_dict(), donor.fusion.state_dict()
    for k in after:
        assert torch.equal(after[k], before[k] if k in fresh else theirs[k]), k
    with pytest.raises(ConfigError, match="--init-fusion starts stage 3"):
        train(TrainArgs(data=tmp_path, out=tmp_path / "run", stage=2, init=path,
                        init_fusion=path))
