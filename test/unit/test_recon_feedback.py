"""Image feedback in the reconstruction: the widened network starts as the old one, the state
carries the image, and the exported file keeps the runtime contract."""

import numpy as np
import torch

from evif_ros.learning.pipeline import EvifPipeline, config_for
from evif_ros.learning.train_visible import sequence_loss, with_feedback


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
