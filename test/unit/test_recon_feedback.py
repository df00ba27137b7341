"""Image feedback in the reconstruction: the widened network starts as the old one, the state
carries the image, and the exported file keeps the runtime contract."""

from dataclasses import replace

import numpy as np
import torch

from evif_ros.learning.pipeline import EvifPipeline, config_for
from evif_ros.learning.train_visible import sequence_loss, with_advection, with_feedback


def _small(feedback=False):
    return config_for("rt2", recon_base=4, deblur_base=4, fusion_base=4, fusion_dim=8,
                      sub_windows=3, recon_feedback=feedback)


def test_widened_model_reproduces_the_old_one_from_a_reset_state():
    torch.manual_seed(0)
    cfg = _small()
    old = EvifPipeline(cfg).eval()
    new, new_cfg = with_feedback(old, cfg)
    assert new_cfg.recon_feedback and new.n_state == old.n_state + 1
    ir = 5000 + 1000 * torch.rand(1, 1, 40, 56)
    ev = torch.poisson(torch.full((1, 10, 40, 56), 0.3))
    sub = torch.poisson(torch.full((1, 3, 10, 40, 56), 0.3))
    with torch.no_grad():
        a = old(ir, ev, sub, [])
        b = new.eval()(ir, ev, sub, [])
    # the gate starts at sigmoid(-3) of the grey reset image, the rest the old prediction
    g = 1 / (1 + np.exp(3.0))
    assert torch.allclose(b[2], g * 0.5 + (1 - g) * a[2], atol=1e-5)
    assert torch.allclose(a[1], b[1], rtol=1e-5)  # the deblurring sees the same features
    assert b[3][-1].shape == (1, 1, 48, 64)  # the padded image carried in the state


def test_feedback_image_is_the_next_windows_starting_point():
    torch.manual_seed(1)
    model = EvifPipeline(_small(True)).eval()
    sub = torch.zeros(1, 3, 2, 32, 32)
    with torch.no_grad():
        vis, state, _, _ = model.reconstruct(sub, [])
        # the gate shut (its planes follow the image's four): the image must pass unchanged
        model.recon.pred.weight[4:].zero_()
        model.recon.pred.bias[4:] = 30.0
        vis2, state2, _, _ = model.reconstruct(sub, state)
    assert torch.allclose(vis2, vis, atol=1e-6)
    assert torch.equal(state2[-1], vis2)


def test_sequence_loss_trains_only_through_the_reconstruction():
    torch.manual_seed(2)
    model = EvifPipeline(_small(True))
    ev = torch.poisson(torch.full((2, 4, 3, 2, 32, 32), 0.5))
    frames = torch.rand(2, 4, 1, 32, 32)
    loss, state, terms = sequence_loss(model, ev, frames, [], first=0, skip=1)
    loss.backward()
    assert np.isfinite(terms["l1"]) and 0 <= terms["ssim"] <= 1
    assert model.recon.head[0].weight.grad is not None
    assert all(p.grad is None for p in model.deblur.parameters())
    assert len(state) == model.n_state


def test_exported_feedback_model_makes_the_runtime_cut_windows_over_the_frame_period(
        tmp_path):
    """The file says how long a span its reconstruction was trained on; the runner reads it
    and the node's front end cuts the K sub-windows over it (every event since the last
    30 Hz window), where a model without feedback keeps the IR exposure (25 ms)."""
    from evif_ros.learning.export import save
    from evif_ros.paths import share_file
    from evif_ros.runtime.calibration import load_calibration
    from evif_ros.runtime.feeder import WindowFeeder
    from evif_ros.runtime.inference import EvifRunner

    calib = load_calibration(share_file("calibration", "synthetic_rig.yaml"))
    spans = {}
    for feedback in (False, True):
        torch.manual_seed(3)
        cfg = _small(feedback)
        path = tmp_path / f"f{int(feedback)}.ts"
        save(EvifPipeline(cfg), cfg, path)
        runner = EvifRunner(path, calib, "cpu")
        feeder = WindowFeeder(calib, runner.k, recon_span_ns=runner.recon_span_ns)
        edges = feeder.sync.window_span(1_000_000_000)[0]
        spans[feedback] = int(edges[-1] - edges[0])
        # two windows through the runner: the state carries the image after the memories
        run = runner(np.zeros(calib.ir_size[::-1], np.uint16), np.zeros(0, _event_dtype()),
                     0, calib.ir_exposure_ns, edges - 1_000_000_000)
        assert run.visible.shape == calib.davis_size[::-1]
        assert len(runner.state) == (3 if feedback else 2)
    assert spans[False] == calib.ir_exposure_ns
    assert spans[True] == 33_333_333


def _event_dtype():
    from evif_ros.runtime.events import EVENT_DTYPE
    return EVENT_DTYPE


def test_advection_moves_the_kept_image_by_the_events_hand_computed():
    """Prediction weights zero: new image, gate and step are the sigmoids of the biases,
    the same at every pixel; 3 ON events (sub-window 0) and 1 OFF (sub-window 2) at one pixel
    move the kept grey image there by step x (3 - 1), nowhere else."""
    from evif_ros.learning.recon import STEP_MAX

    cfg = replace(_small(True), recon_advect=True)
    model = EvifPipeline(cfg).eval()
    s2 = cfg.scale ** 2
    with torch.no_grad():
        model.recon.pred.weight.zero_()
        model.recon.pred.bias[:s2] = 0.0  # new image 0.5
        model.recon.pred.bias[s2:2 * s2] = 1.0  # gate sigmoid(1)
        model.recon.pred.bias[2 * s2:] = -1.0  # step STEP_MAX x sigmoid(-1)
        sub = torch.zeros(1, 3, 2, 32, 32)
        sub[0, 0, 0, 5, 7] = 3  # ON
        sub[0, 2, 1, 5, 7] = 1  # OFF
        _, state, _, _ = model.reconstruct(torch.zeros(1, 3, 2, 32, 32), [])
        state[-1] = torch.full_like(state[-1], 0.4)  # the kept image
        vis, _, _, _ = model.reconstruct(sub, state)
    sig = lambda v: 1 / (1 + np.exp(-v))  # noqa: E731
    g, step = sig(1.0), STEP_MAX * sig(-1.0)
    assert abs(float(vis[0, 0, 5, 7]) - (g * (0.4 + 2 * step) + (1 - g) * 0.5)) < 1e-6
    assert abs(float(vis[0, 0, 5, 8]) - (g * 0.4 + (1 - g) * 0.5)) < 1e-6
    # many OFF events cannot push the kept image below black
    with torch.no_grad():
        sub[0, 1, 1, 5, 7] = 200
        vis, _, _, _ = model.reconstruct(sub, state)
    assert abs(float(vis[0, 0, 5, 7]) - (1 - g) * 0.5) < 1e-6


def test_advection_from_the_callers_counts_equals_undoing_the_log():
    """The pipeline hands the reconstruction its event counts beside their log (saving the
    exp of 12 full-resolution planes); the network alone undoes the log itself."""
    cfg = replace(_small(True), recon_advect=True, recon_advect_support=2)
    model = EvifPipeline(cfg).eval()
    counts = torch.poisson(torch.full((1, 6, 32, 32), 0.7))
    with torch.no_grad():
        state = model.recon(torch.log1p(counts), [])[1]
        given = model.recon(torch.log1p(counts), state, counts)
        undone = model.recon(torch.log1p(counts), state)
    assert not torch.equal(given[0], state[-1])  # the events moved the kept image
    assert torch.allclose(given[0], undone[0], atol=1e-6)


def test_added_advection_changes_nothing_without_events():
    torch.manual_seed(4)
    cfg = _small(True)
    old = EvifPipeline(cfg).eval()
    new, new_cfg = with_advection(old, cfg)
    assert new_cfg.recon_advect and new.n_state == old.n_state
    sub = torch.zeros(1, 3, 2, 32, 32)
    with torch.no_grad():
        a, sa, _, _ = old.reconstruct(sub, [])
        b, sb, _, _ = new.eval().reconstruct(sub, [])
        sub[0, 1, 0, 9, 9] = 2
        a2, _, _, _ = old.reconstruct(sub, sa)
        b2, _, _, _ = new.reconstruct(sub, sb)
    assert torch.equal(a, b)
    diff = (a2 - b2).abs()
    assert float(diff[0, 0, 9, 9]) > 1e-3  # the event moved the kept image there
    diff[0, 0, 9, 9] = 0
    assert float(diff.max()) < 1e-6


def test_advection_without_feedback_is_refused():
    import pytest

    from evif_ros.errors import ConfigError
    from evif_ros.learning.recon import ReconNet

    with pytest.raises(ValueError, match="needs feedback"):
        ReconNet(12, 4, feedback=False, advect=True)
    cfg = _small(False)
    with pytest.raises(ConfigError, match="image feedback"):
        with_advection(EvifPipeline(cfg), cfg)


def test_structure_loss_is_blind_to_tone_and_sees_a_shifted_edge():
    from evif_ros.learning.losses import structure_loss

    yy, xx = torch.meshgrid(torch.arange(48.0), torch.arange(48.0), indexing="ij")
    img = ((xx > 20) & (yy > 12)).float()[None, None] * 0.6 + 0.2
    assert float(structure_loss(img, img)) < 1e-6
    # a positive affine change of tone keeps every gradient's relative size
    assert float(structure_loss(0.3 * img + 0.5, img)) < 1e-5
    # the same corner 8 px away, and a flat image, both lose the structure
    moved = torch.roll(img, 8, dims=3)
    assert float(structure_loss(moved, img)) > 0.3
    flat = torch.full_like(img, 0.5) + 1e-3 * torch.rand_like(img)
    assert float(structure_loss(flat, img)) > 0.5


def test_isolated_events_do_not_move_the_kept_image_with_a_support():
    """Support 2: an event moves the image only where 2 or more events fell on its 8
    neighbours in the window; a lone noise event (and a pair, each with one neighbour) does
    not, an event with two neighbouring ones does (hand-placed counts)."""
    cfg = replace(_small(True), recon_advect=True, recon_advect_support=2)
    model = EvifPipeline(cfg).eval()
    s2 = cfg.scale ** 2
    with torch.no_grad():
        model.recon.pred.weight.zero_()
        model.recon.pred.bias[s2:2 * s2] = 30.0  # gate shut: the kept image, advected
        model.recon.pred.bias[2 * s2:] = 30.0  # step STEP_MAX
        _, state, _, _ = model.reconstruct(torch.zeros(1, 3, 2, 32, 32), [])
        state[-1] = torch.full_like(state[-1], 0.5)
        sub = torch.zeros(1, 3, 2, 32, 32)
        sub[0, 0, 0, 4, 4] = 1  # alone
        sub[0, 1, 0, 10, 10] = sub[0, 1, 0, 10, 11] = 1  # a pair
        sub[0, 2, 1, 20, 20] = 1  # OFF, with two ON neighbours in earlier sub-windows
        sub[0, 0, 0, 19, 20] = sub[0, 1, 0, 21, 21] = 1
        vis, _, _, _ = model.reconstruct(sub, state)
    from evif_ros.learning.recon import STEP_MAX

    img = vis[0, 0]
    assert torch.allclose(img[4, 4], torch.tensor(0.5), atol=1e-5)
    assert torch.allclose(img[10, 10:12], torch.tensor(0.5), atol=1e-5)
    assert abs(float(img[20, 20]) - (0.5 - STEP_MAX)) < 1e-5
    # its ON neighbour (19, 20) has one event beside it, (20, 20): it stays
    assert torch.allclose(img[19, 20], torch.tensor(0.5), atol=1e-5)


def test_changing_the_support_keeps_every_weight():
    cfg = replace(_small(True), recon_advect=True, recon_advect_support=0)
    model = EvifPipeline(cfg)
    new, new_cfg = with_advection(model, cfg, support=2)
    assert new_cfg.recon_advect_support == 2 and new.recon.advect_support == 2
    assert all(torch.equal(a, b) for a, b in zip(model.state_dict().values(),
                                                  new.state_dict().values()))


def test_training_gain_scales_each_sequences_step_hand_computed():
    """`train-visible --contrast-ref`: each sequence's step times its own gain (its sensor's
    threshold over the reference), the same moves as the runtime's scaled step_max."""
    from evif_ros.learning.recon import STEP_MAX

    cfg = replace(_small(True), recon_advect=True)
    model = EvifPipeline(cfg).eval()
    s2 = cfg.scale ** 2
    with torch.no_grad():
        model.recon.pred.weight.zero_()
        model.recon.pred.bias[:s2] = 0.0
        model.recon.pred.bias[s2:2 * s2] = 1.0
        model.recon.pred.bias[2 * s2:] = -1.0
        sub = torch.zeros(2, 3, 2, 32, 32)
        sub[:, 0, 0, 5, 7] = 2  # 2 ON events at one pixel, in both sequences
        _, state, _, _ = model.reconstruct(torch.zeros(2, 3, 2, 32, 32), [])
        state[-1] = torch.full_like(state[-1], 0.4)
        gain = torch.tensor([1.0, 2.5]).view(2, 1, 1, 1)
        vis, _, _, _ = model.reconstruct(sub, state, gain=gain)
        model.recon.step_max = STEP_MAX * 2.5  # the runtime's way, for the second
        vis_rt, _, _, _ = model.reconstruct(sub[1:], [s[1:] for s in state])
    sig = lambda v: 1 / (1 + np.exp(-v))  # noqa: E731
    g, step = sig(1.0), STEP_MAX * sig(-1.0)
    for i, k in enumerate((1.0, 2.5)):
        want = g * (0.4 + 2 * step * k) + (1 - g) * 0.5
        assert abs(float(vis[i, 0, 5, 7]) - want) < 1e-6
    assert torch.allclose(vis[1:], vis_rt, atol=1e-6)


def test_reset_weight_weighs_the_first_window_against_the_later_ones():
    """The weighted mean, rebuilt from the first window's loss alone and the later windows'
    (the first skipped): ``(w L0 + (T - 1) L_rest) / (w + T - 1)``; 0 drops the first window
    as ``skip`` does; a later chunk (``first`` > 0) has no reset window to weigh."""
    torch.manual_seed(4)
    model = EvifPipeline(_small(True))
    ev = torch.poisson(torch.full((2, 4, 3, 2, 32, 32), 0.5))
    frames = torch.rand(2, 4, 1, 32, 32)
    with torch.no_grad():
        first_only, _, _ = sequence_loss(model, ev[:, :1], frames[:, :1], [], 0, 0)
        rest, _, _ = sequence_loss(model, ev, frames, [], 0, skip=1)
        for w in (0.0, 3.0):
            got, _, _ = sequence_loss(model, ev, frames, [], 0, 0, reset_weight=w)
            want = (w * first_only + 3 * rest) / (w + 3)
            assert torch.allclose(got, want, rtol=1e-5), (w, got, want)
        plain, _, _ = sequence_loss(model, ev, frames, [], 4, 0)
        later, _, _ = sequence_loss(model, ev, frames, [], 4, 0, reset_weight=5.0)
    assert torch.equal(plain, later)
    assert not torch.allclose(first_only, rest)  # else the weights could not show
