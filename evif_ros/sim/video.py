"""Visible-only event sequences from still photographs, for training the reconstruction to
hold a scene on real sensors (as E2VID and FireNet trained on MS-COCO photographs).

One sequence is ``windows`` consecutive reconstruction windows (one IR frame period each)
of a small sensor crop moving over a photograph, with:

- camera motion that starts, slows and stops (translation, roll and zoom, each speed
  following random keyframes, a third of them zero), so quiet periods with only the
  sensor's noise events follow motion;
- a frame period drawn log-uniformly over 10-110 ms (exposures of 5-100 ms and their gaps)
  and an apparent pixel scale of 0.5-2 photograph pixels per sensor pixel: what a 240x180
  or a 640x480 sensor sees of the same scene differs by such a scale;
- lamps flickering at 100 or 120 Hz on part of the sequences (the ground truth is the
  scene under its mean light: a reconstruction should not show the flicker);
- a per-sequence event sensor (:func:`randomized_sensor`): contrast thresholds, their
  per-pixel mismatch, refractory period, background activity, hot pixels, shot noise and
  scene brightness over the ranges real DAVIS sensors show.

The scenes come from a folder of photographs and, optionally, more folders of visible images
(``extra_dirs``): registered visible/IR pair sets keep their thermal halves in ``ir/``
folders, which are skipped.

Stored per window: the ON and OFF event counts of its K equal sub-windows (the stacked
reconstruction's input, ``EvifPipeline.per_polarity``) as uint8, and the tone-mapped sharp
frame at the window's end (``tonemap_log``, as ``evif dataset``'s visible ground truth).
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Iterator

import cv2
import numpy as np

from evif_ros.errors import ConfigError, InputFileError, reason
from evif_ros.paths import output_dir
from evif_ros.sim.aps import tonemap_log
from evif_ros.sim.dvs import DvsConfig, DvsSimulator
from evif_ros.sim.pairs import IMAGE_SUFFIXES, image_split, srgb_to_linear
from evif_ros.sim.shards import run_shard_jobs

SPLITS = {"train": 0, "test": 1}
FLICKER_HZ = (100.0, 120.0)  # lamps on 50 / 60 Hz mains


@dataclass(frozen=True)
class VideoConfig:
    photos_dir: str
    size: int = 128  # side of the square sensor crop (px)
    windows: int = 24  # consecutive reconstruction windows per sequence
    sub_windows: int = 6  # K sub-windows per window
    period_ms: tuple[float, float] = (10.0, 110.0)  # window length range (log-uniform)
    pixel_scale: tuple[float, float] = (0.5, 2.0)  # photograph px per sensor px
    flicker_fraction: float = 0.3
    max_renders: int = 6000  # cap on sub-frames per sequence (simulation time)
    extra_dirs: tuple[str, ...] = ()  # more scene folders (pair sets: their vi/ halves)
    refractory_ms: tuple[float, float] = (0.0, 1.0)  # the sensors' refractory period range
    contrast: tuple[float, float] = (0.1, 0.6)  # the ON threshold's range (log units)


def _config_json(cfg: VideoConfig) -> dict:
    """The config as a dataset's metadata stores it (JSON lists for tuples)."""
    return {k: list(v) if isinstance(v, tuple) else v for k, v in asdict(cfg).items()}


def list_photos(root: Path, split: str) -> list[Path]:
    """Images of a split, by a hash of the relative path; files under a folder named ``ir``
    (the thermal halves of registered pairs) are not scenes, and a pair's visible half (in
    ``vi/``) splits by its file name, as :class:`~evif_ros.sim.pairs.PairLibrary` splits
    it, so no pipeline test image becomes a training scene."""
    root = Path(root)
    if not root.is_dir():
        raise InputFileError(f"{root}: no such photo folder")
    files = sorted(p for p in root.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES
                   and "ir" not in p.relative_to(root).parts[:-1])
    chosen = [p for p in files if image_split(
        p.name if p.parent.name == "vi" else str(p.relative_to(root))) == split]
    if not chosen:
        raise InputFileError(f"{root}: no {split} photographs ({', '.join(IMAGE_SUFFIXES)})")
    return chosen


def list_scenes(cfg: VideoConfig, split: str) -> list[Path]:
    """The split's images over ``photos_dir`` and ``extra_dirs``, in that order."""
    return [p for d in (cfg.photos_dir, *cfg.extra_dirs) for p in list_photos(Path(d), split)]


def randomized_sensor(rng: np.random.Generator, size: int,
                      refractory_ms: tuple[float, float] = (0.0, 1.0),
                      contrast: tuple[float, float] = (0.1, 0.6)
                      ) -> tuple[DvsConfig, float, float]:
    """``(sensor, shot noise, scene brightness)`` drawn per sequence (shot noise: the log
    intensity's noise std on a white surface, :func:`simulate_windows`). ON threshold
    log-uniform over ``contrast`` (0.1-0.6 log units spans real DAVIS biases; a narrower
    range around a rig's measured threshold makes data for that sensor), OFF 0.7-1.4 times
    it (kept within 0.08-0.7), mismatch 0.01-0.08, refractory uniform over
    ``refractory_ms`` (a real DAVIS346's biases give up to ~2 ms: ``cups`` has no two
    events of a pixel closer than 1.5 ms), background
    activity 0.01-2 Hz per pixel, hot pixels up to 5e-4 of the array; brightness over
    three decades, so dark scenes carry the shot noise and the thin events of real ones."""
    c_on = float(np.exp(rng.uniform(*np.log(contrast))))
    cfg = DvsConfig(width=size, height=size, c_on=c_on,
                    c_off=float(np.clip(c_on * rng.uniform(0.7, 1.4), 0.08, 0.7)),
                    c_sigma=float(rng.uniform(0.01, 0.08)),
                    refractory_ns=int(rng.uniform(*np.multiply(refractory_ms, 1e6)))
                    // 1000 * 1000,
                    noise_rate_hz=float(np.exp(rng.uniform(np.log(0.01), np.log(2.0)))),
                    hot_pixel_fraction=float(rng.uniform(0.0, 5e-4)))
    shot = float(rng.uniform(0.0, 0.04))
    brightness = float(10 ** rng.uniform(-2.0, 1.0))
    return cfg, shot, brightness


def speed_profile(rng: np.random.Generator, t_s: np.ndarray, peak: float) -> np.ndarray:
    """A speed over ``t_s`` through random keyframes: a third of them zero (the camera
    rests), the rest up to ``peak`` with random sign; linear between keyframes."""
    n = int(rng.integers(3, 8))
    knots = np.sort(rng.uniform(t_s[0], t_s[-1], n))
    knots = np.concatenate([[t_s[0]], knots, [t_s[-1]]])
    v = peak * rng.uniform(-1, 1, knots.size)
    v[rng.random(knots.size) < 1 / 3] = 0.0
    # a held stop: two neighbouring keyframes at zero make a rest, not a passing zero
    if rng.random() < 0.5:
        i = int(rng.integers(0, knots.size - 1))
        v[i] = v[i + 1] = 0.0
    return np.interp(t_s, knots, v)


def _flicker_mask(rng: np.random.Generator, size: int) -> np.ndarray:
    """Where a lamp's light falls: the whole view or a broad blob."""
    if rng.random() < 0.5:
        return np.ones((size, size), np.float32)
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float32)
    cx, cy = rng.uniform(0, size, 2)
    r = rng.uniform(0.2, 0.6) * size
    return np.exp(-((xx - cx) ** 2 + (yy - cy) ** 2) / (2 * r * r)).astype(np.float32)


def simulate_windows(render, speed_px_s, dvs: DvsSimulator, rng: np.random.Generator,
                     size: tuple[int, int], period_ns: int, windows: int, k: int,
                     flicker_hz: float = 0.0, shot: float = 0.0, white: float = 1.0,
                     max_renders: int = 6000, keep_mean: bool = False
                     ) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
    """Events of ``windows`` consecutive windows of ``period_ns`` binned per sub-window and
    polarity, and the tone-mapped sharp frame at each window's end.

    ``render(t_s, lit=True)`` -> radiance (H, W) at scene time ``t_s`` (``lit=False``: under
    the mean light, for the ground truth); ``speed_px_s(t0_s, t1_s)``: the fastest image
    motion in that interval, which sets the sub-frame rate (about 1 px apart; 8 per flicker
    period). Returns ``(counts (T, K, 2, H, W) uint8, frames (T, H, W) uint8, mean radiance
    per window (T, H, W) float32 with keep_mean, else None)``. Shot noise: the log
    intensity's std is ``shot / sqrt(100 x radiance / white)``, at most 0.3 (``white``: the
    radiance of a white surface in the photons' units; a dimmer scene under the same
    ``white`` is noisier), redrawn once per
    sub-window so its event rate does not grow with the render rate.
    """
    w, h = size
    counts = np.zeros((windows, k, 2, h, w), np.uint16)
    frames = np.zeros((windows, h, w), np.uint8)
    means = np.zeros((windows, h, w), np.float32) if keep_mean else None
    edges = np.linspace(0, period_ns, k + 1).round().astype(np.int64)
    per_win = max(2, max_renders // windows)
    t_prev = 0
    dvs.reset(render(0.0), 0)
    for j in range(windows):
        t0, t1 = j * period_ns, (j + 1) * period_ns
        move_px = speed_px_s(t0 * 1e-9, t1 * 1e-9) * period_ns * 1e-9
        n = int(np.ceil(move_px)) + 2
        if flicker_hz:
            n = max(n, int(np.ceil(period_ns * 1e-9 * flicker_hz * 8)))
        n = min(n, per_win)
        sub_noise, noise = -1, 0.0
        for t in np.linspace(t0, t1, n + 1)[1:].round().astype(np.int64):
            rad = render(t * 1e-9)
            if means is not None:
                means[j] += rad / n
            sub_now = min(int((t - t0) * k // period_ns), k - 1)
            if sub_now != sub_noise:
                sub_noise = sub_now
                noise = np.minimum(shot / np.sqrt(rad * (100.0 / white) + 1e-6), 0.3) \
                    * rng.standard_normal(rad.shape).astype(np.float32) if shot > 0 else 0.0
            ev = dvs.step(rad * np.exp(noise), int(t))
            if ev.size:
                sub = np.clip(np.searchsorted(edges, ev["t"] - t0, side="right") - 1, 0, k - 1)
                code = ((sub * 2 + (1 - ev["p"].astype(np.int64))) * h + ev["y"]) * w + ev["x"]
                counts[j] += np.bincount(code, minlength=k * 2 * h * w).reshape(k, 2, h, w) \
                    .astype(np.uint16)
            t_prev = t
        frames[j] = (tonemap_log(render(t_prev * 1e-9, lit=False)) * 255).round()
    return np.minimum(counts, 255).astype(np.uint8), frames, means


def make_sequence(photo: Path, cfg: VideoConfig, rng: np.random.Generator) -> dict:
    """Simulate one sequence over ``photo``: ``counts`` (T, K, 2, S, S) uint8, ``frames``
    (T, S, S) uint8, ``period_ns``, and the sensor drawn."""
    img = cv2.imread(str(photo), cv2.IMREAD_GRAYSCALE)
    if img is None:
        raise InputFileError(f"{photo}: not a readable image")
    s = cfg.size
    dvs_cfg, shot, brightness = randomized_sensor(rng, s, cfg.refractory_ms, cfg.contrast)
    dvs = DvsSimulator(dvs_cfg, rng)
    radiance = (srgb_to_linear(img / 255.0) + 1e-3) * brightness
    period_ns = int(np.exp(rng.uniform(*np.log(cfg.period_ms))) * 1e6) // 1000 * 1000
    k, n_win = cfg.sub_windows, cfg.windows
    total_s = n_win * period_ns * 1e-9
    t_fine = np.linspace(0.0, total_s, 2001)
    dt = t_fine[1] - t_fine[0]
    # px/s peaks drawn log-uniformly: thin-event windows of slow drift as well as fast pans
    peak = float(np.exp(rng.uniform(np.log(5.0), np.log(600.0))))
    vx, vy = speed_profile(rng, t_fine, peak), speed_profile(rng, t_fine, peak)
    vr = speed_profile(rng, t_fine, float(rng.uniform(0, 1.0)))  # rad/s
    vz = speed_profile(rng, t_fine, float(rng.uniform(0, 0.5)))  # log zoom / s
    # the camera moves, so every speed profile shares the same rests
    rest = speed_profile(rng, t_fine, 1.0) == 0
    for v in (vx, vy, vr, vz):
        v[rest] = 0.0
    px, py = np.cumsum(vx) * dt, np.cumsum(vy) * dt
    rot, zoom = np.cumsum(vr) * dt, np.cumsum(vz) * dt
    scale0 = float(np.exp(rng.uniform(*np.log(cfg.pixel_scale))))
    h, w = img.shape
    c0 = np.array([rng.uniform(0.3, 0.7) * w, rng.uniform(0.3, 0.7) * h])
    flicker = rng.random() < cfg.flicker_fraction
    f_hz = float(rng.choice(FLICKER_HZ))
    depth = float(rng.uniform(0.05, 0.5))
    phase = float(rng.uniform(0, 2 * np.pi))
    mask = _flicker_mask(rng, s) if flicker else None

    def render(t: float, lit: bool = True) -> np.ndarray:
        i = min(int(round(t / dt)), t_fine.size - 1)
        a = scale0 * np.exp(zoom[i])  # photograph px per sensor px
        c, sn = a * np.cos(rot[i]), a * np.sin(rot[i])
        centre = c0 + [px[i], py[i]]
        m = np.array([[c, -sn, 0.0], [sn, c, 0.0]], np.float64)
        m[:, 2] = centre - m[:, :2] @ np.array([s / 2, s / 2])
        out = cv2.warpAffine(radiance, m, (s, s), flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP,
                             borderMode=cv2.BORDER_REFLECT_101)
        if lit and mask is not None:
            out = out * (1.0 + depth * mask * np.sin(2 * np.pi * f_hz * t + phase))
        return out

    # sub-frames: about one px of motion apart, at least 8 per flicker period
    speed = np.hypot(vx, vy) / scale0 + (np.abs(vr) + np.abs(vz)) * s / 2
    counts, frames, _ = simulate_windows(
        render, lambda t0_s, t1_s: float(speed[int(t0_s / dt):min(int(t1_s / dt) + 1,
                                                                   t_fine.size)]
                                         .max(initial=0.0)),
        dvs, rng, (s, s), period_ns, n_win, k, f_hz if flicker else 0.0, shot, brightness,
        cfg.max_renders)
    return {"counts": counts, "frames": frames,
            "period_ns": period_ns, "flicker_hz": f_hz if flicker else 0.0,
            "c_on": dvs_cfg.c_on, "noise_hz": dvs_cfg.noise_rate_hz,
            "photo": photo.name}


def _shard_job(args) -> str:
    out_dir, split, seed, first, count, cfg = args
    photos = list_scenes(cfg, split)
    seqs = []
    for i in range(first, first + count):
        rng = np.random.default_rng(np.random.SeedSequence([seed, SPLITS[split], i]))
        seqs.append(make_sequence(photos[int(rng.integers(len(photos)))], cfg, rng))
    path = Path(out_dir) / f"{split}-{first // count:05d}.npz"
    tmp = path.with_suffix(".tmp.npz")
    np.savez_compressed(tmp, **{key: np.stack([q[key] for q in seqs]) for key in seqs[0]})
    tmp.replace(path)  # a shard is either complete or absent
    return str(path)


def write_video_dataset(out_dir: Path, split: str, sequences: int, seed: int,
                        cfg: VideoConfig, shard_size: int = 16, workers: int = 1,
                        progress: bool = True) -> None:
    """Generate ``sequences`` sequences into shards; resumable and parallel."""
    if split not in SPLITS:
        raise ConfigError(f"--split {split!r} is not one of {', '.join(SPLITS)}")
    if sequences <= 0:
        raise ConfigError(f"--sequences must be positive, got {sequences}")
    if cfg.refractory_ms[0] > cfg.refractory_ms[1]:
        raise ConfigError(f"--refractory-ms {cfg.refractory_ms[0]:g} "
                          f"{cfg.refractory_ms[1]:g}: the minimum exceeds the maximum")
    if not 0 < cfg.contrast[0] <= cfg.contrast[1]:
        raise ConfigError(f"--contrast {cfg.contrast[0]:g} {cfg.contrast[1]:g}: needs "
                          "0 < MIN <= MAX")
    list_scenes(cfg, split)  # fail before any work
    out_dir = Path(out_dir)
    output_dir(out_dir)
    meta = {"split": split, "seed": seed, "sequences": sequences, "shard_size": shard_size,
            "config": _config_json(cfg)}
    meta_path = out_dir / f"{split}.json"
    if meta_path.exists() and _with_defaults(json.loads(meta_path.read_text())) != meta:
        raise ConfigError(f"{meta_path}: holds a different dataset; choose another --out")
    meta_path.write_text(json.dumps(meta, indent=1))
    jobs = []
    for first in range(0, sequences, shard_size):
        count = min(shard_size, sequences - first)
        if not (out_dir / f"{split}-{first // shard_size:05d}.npz").exists():
            jobs.append((str(out_dir), split, seed, first, count, cfg))
    run_shard_jobs(_shard_job, jobs, [j[4] for j in jobs], sequences, f"video {split}", "seq",
                   workers, progress)


def _with_defaults(meta: dict) -> dict:
    """A stored dataset's metadata with the config fields it predates at their defaults
    (which are what it was made with), so it still resumes."""
    if isinstance(meta, dict) and isinstance(meta.get("config"), dict):
        defaults = _config_json(VideoConfig(photos_dir=""))
        meta = {**meta, "config": {**defaults, **meta["config"]}}
    return meta


def iter_sequences(data_dir: Path, split: str) -> Iterator[dict]:
    """The split's sequences in order (``counts``, ``frames``, ``period_ns``, and the
    sensor's ON threshold ``c_on``, NaN in shards written before it was stored)."""
    shards = sorted(Path(data_dir).glob(f"{split}-*.npz"))
    shards = [p for p in shards if not p.name.endswith(".tmp.npz")]
    if not shards:
        raise InputFileError(f"{data_dir}: no {split}-*.npz shards (run `evif video-dataset`)")
    for shard in shards:
        try:
            z = np.load(shard)
            counts, frames, period = z["counts"], z["frames"], z["period_ns"]
            c_on = z["c_on"] if "c_on" in z.files else np.full(counts.shape[0], np.nan)
        except Exception as exc:  # noqa: BLE001 - numpy/zipfile raise many kinds
            raise InputFileError(f"{shard}: unreadable video shard ({reason(exc)})") from exc
        for i in range(counts.shape[0]):
            yield {"counts": counts[i], "frames": frames[i], "period_ns": int(period[i]),
                   "c_on": float(c_on[i])}
