"""Training samples from the synthetic rig, written as compressed ``.npz`` shards.

One sample is one IR exposure ``[0, E)`` (times relative to its trigger, ns):

- ``ir_blur`` / ``ir_sharp``: blurry IR counts and the sharp counts at mid-exposure, on
  the event camera's grid (the dataset stands for a calibrated, warped rig), uint16;
- ``vis_sharp``: the sharp visible ground truth at mid-exposure (tone-mapped log
  radiance, uint8); ``aps_blur``: the blurry 8-bit APS frame over the exposure;
- events from ``recon_start = E/2 - E`` to ``E``: the exposure's events plus those of the K
  reconstruction sub-windows that end at mid-exposure (``t`` int32 ns, relative); with
  ``warmup_frames`` N > 0 (sequence samples) from N IR frame periods earlier, so training
  can run the reconstruction over the N previous exposures' sub-windows first and carry
  its state into this one, as the node does;
- ``source`` (``procedural`` or ``pairs``) and ``image`` (the pair's file name, or "").

Per-sample seeds come from ``SeedSequence([seed, split, index])``: the same seed gives the
same data, and the ``train`` and ``test`` splits never share a scene. With image pairs
(``pairs``), a sample is drawn from the split's own images (:func:`pairs.image_split`), so a
test image is never a training image; ``procedural_fraction`` of the samples still come
from the procedural world.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Iterator

import numpy as np

from evif_ros.errors import ConfigError, InputFileError, reason
from evif_ros.paths import output_dir
from evif_ros.runtime.events import EVENT_DTYPE
from evif_ros.sim.aps import ApsCamera, ApsConfig, tonemap_log
from evif_ros.sim.dvs import DvsConfig, DvsSimulator
from evif_ros.sim.pairs import ImagePairScene, PairLibrary
from evif_ros.sim.rig import render_rate_hz
from evif_ros.sim.scenarios import PAIR_MOTION_SCALE, SCENARIOS, get_scenario
from evif_ros.sim.scene import Scene
from evif_ros.sim.shards import run_shard_jobs
from evif_ros.sim.thermal import ThermalCamera, ThermalConfig

SPLITS = {"train": 0, "test": 1}
SCENARIO_MIX = {"day": 0.3, "night": 0.2, "hdr": 0.2, "fast": 0.2, "static": 0.1}
SCENARIO_IDS = {name: i for i, name in enumerate(SCENARIOS)}
STORED_EVENT_DTYPE = np.dtype([("x", "<u2"), ("y", "<u2"), ("t", "<i4"), ("p", "u1")])
SOURCES = ("procedural", "pairs")


@dataclass(frozen=True)
class DatasetConfig:
    exposure_ns: int = 25_000_000
    width: int = 346
    height: int = 260
    sub_frames: int = 7
    pairs_dir: str = ""  # folder of vi/ + ir/ image pairs; "" = procedural only
    procedural_fraction: float = 0.0  # with pairs: share of samples from the procedural world
    motion_scale: float = PAIR_MOTION_SCALE  # with pairs: speeds are the scenario's times this
    randomize_dvs: bool = False  # per-sample contrast thresholds, noise and hot pixels
    warmup_frames: int = 0  # earlier IR frames whose events a sample holds too (sequences)
    frame_period_ns: int = ThermalConfig().period_ns  # IR frame period of those frames
    # microbolometer response: a first-order time constant drawn per sample from this range
    # (uncooled thermal cameras: 8-12 ms) before the exposure average; (0, 0): the paper's
    # plain average of 7 sharp frames
    ir_tau_ms: tuple[float, float] = (0.0, 0.0)


def randomized_dvs(rng: np.random.Generator, width: int, height: int) -> DvsConfig:
    """Event-camera settings drawn over the range real DAVIS346 recordings show (contrast
    thresholds 0.15-0.5 log units, ON and OFF apart, mismatch, background activity and
    hot pixels), so a network does not learn one simulator's constants."""
    c_on = float(rng.uniform(0.15, 0.5))
    return DvsConfig(width=width, height=height, c_on=c_on,
                     c_off=float(np.clip(c_on * rng.uniform(0.7, 1.4), 0.12, 0.6)),
                     c_sigma=float(rng.uniform(0.01, 0.06)),
                     noise_rate_hz=float(np.exp(rng.uniform(np.log(0.02), np.log(1.0)))),
                     hot_pixel_fraction=float(rng.uniform(0.0, 4e-4)))


def sample_seed(seed: int, split: str, index: int) -> np.random.SeedSequence:
    return np.random.SeedSequence([seed, SPLITS[split], index])


def make_sample(seed: int, split: str, index: int, cfg: DatasetConfig = DatasetConfig(),
                scenario: str | None = None, image: str | None = None) -> dict:
    """Simulate one exposure; deterministic in ``(seed, split, index)`` (and ``cfg``).

    ``image`` forces a pair (a file name in ``cfg.pairs_dir``) instead of drawing one."""
    ss = sample_seed(seed, split, index)
    s_pick, s_scene, s_dvs, s_aps, s_ir, s_source = ss.spawn(6)
    pick = np.random.default_rng(s_pick)
    if scenario is None:
        names = list(SCENARIO_MIX)
        scenario = names[pick.choice(len(names), p=list(SCENARIO_MIX.values()))]
    scn = get_scenario(scenario)
    scene_seed = int(s_scene.generate_state(1)[0])
    library = PairLibrary.open(cfg.pairs_dir) if cfg.pairs_dir else None
    if library is not None and image is None:
        src = np.random.default_rng(s_source)
        if src.random() >= cfg.procedural_fraction:
            images = library.split(split)
            image = images[int(src.integers(len(images)))]
    if image:
        vis, ir_img = library.load(image)
        scene = ImagePairScene(scn, scene_seed, vis, ir_img, cfg.width, cfg.height,
                               motion_scale=cfg.motion_scale)
    else:
        scene = Scene(scn, scene_seed, cfg.width, cfg.height)
    dvs_cfg = (randomized_dvs(np.random.default_rng(s_dvs.spawn(1)[0]), cfg.width, cfg.height)
               if cfg.randomize_dvs else DvsConfig(width=cfg.width, height=cfg.height))
    dvs = DvsSimulator(dvs_cfg, np.random.default_rng(s_dvs))
    if scn.night:
        dvs.noise_scale = 3.0
    aps = ApsCamera(ApsConfig(), np.random.default_rng(s_aps))
    # drawn only when asked: the paper's blur keeps every earlier dataset's random stream
    tau_ms = float(pick.uniform(*cfg.ir_tau_ms)) if cfg.ir_tau_ms[1] > 0 else 0.0
    ir = ThermalCamera(ThermalConfig(width=cfg.width, height=cfg.height,
                                     exposure_ns=cfg.exposure_ns, sub_frames=cfg.sub_frames,
                                     tau_ms=tau_ms),
                       np.random.default_rng(s_ir), (cfg.width, cfg.height))

    exp = cfg.exposure_ns
    t_trig_s = float(pick.uniform(0.05, 3.0))  # scene time of the trigger
    base_ns = int(round(t_trig_s * 1e9 / 1000)) * 1000
    recon_start = exp // 2 - exp
    first = recon_start - cfg.warmup_frames * cfg.frame_period_ns
    step_ns = max(1000, int(round(1e9 / render_rate_hz(scene, 0) / 1000)) * 1000)
    times = np.arange(first, exp + 1, step_ns, dtype=np.int64)
    chunks = []
    rad_sum = np.zeros((cfg.height, cfg.width), np.float32)
    n_in = 0
    for t in times:
        rad, _ = scene.render((base_ns + t) * 1e-9)
        chunks.append(dvs.step(rad, int(t)))
        if 0 <= t < exp:
            rad_sum += rad
            n_in += 1
    events = np.concatenate(chunks) if chunks else np.empty(0, EVENT_DTYPE)
    mid_rad = scene.render((base_ns + exp // 2) * 1e-9)[0]
    aps_exposure = min(aps.auto_exposure(mid_rad), exp)
    aps_blur = aps.expose(rad_sum / max(n_in, 1), aps_exposure)
    blurry, sharp = ir.capture(lambda ts: scene.render(ts)[1], base_ns)
    stored = np.empty(events.size, STORED_EVENT_DTYPE)
    for name in ("x", "y", "t", "p"):
        stored[name] = events[name]
    return {
        "events": stored,
        "ir_blur": np.clip(blurry.round(), 0, 65535).astype(np.uint16),
        "ir_sharp": np.clip(sharp.round(), 0, 65535).astype(np.uint16),
        "vis_sharp": (tonemap_log(mid_rad) * 255).round().astype(np.uint8),
        "aps_blur": aps_blur,
        "scenario": scenario,
        "exposure_ns": exp,
        "recon_start_ns": recon_start,
        "source": "pairs" if image else "procedural",
        "image": image or "",
        "warmup_frames": cfg.warmup_frames,
        "frame_period_ns": cfg.frame_period_ns,
    }


def _shard_job(args) -> tuple[int, str, int]:
    out_dir, seed, split, first, count, cfg = args
    samples = [make_sample(seed, split, first + i, cfg) for i in range(count)]
    path = Path(out_dir) / f"{split}-{first // count:05d}.npz"
    write_shard(path, samples)
    return first, str(path), sum(s["events"].size for s in samples)


def write_shard(path: Path, samples: list[dict]) -> None:
    counts = np.array([s["events"].size for s in samples], np.int64)
    offsets = np.concatenate([[0], np.cumsum(counts)])
    tmp = path.with_suffix(".tmp.npz")
    np.savez_compressed(
        tmp,
        events=np.concatenate([s["events"] for s in samples]),
        event_offsets=offsets,
        ir_blur=np.stack([s["ir_blur"] for s in samples]),
        ir_sharp=np.stack([s["ir_sharp"] for s in samples]),
        vis_sharp=np.stack([s["vis_sharp"] for s in samples]),
        aps_blur=np.stack([s["aps_blur"] for s in samples]),
        scenario=np.array([SCENARIO_IDS[s["scenario"]] for s in samples], np.uint8),
        exposure_ns=np.array([s["exposure_ns"] for s in samples], np.int64),
        recon_start_ns=np.array([s["recon_start_ns"] for s in samples], np.int64),
        source=np.array([SOURCES.index(s["source"]) for s in samples], np.uint8),
        image=np.array([s["image"] for s in samples], dtype=str),
        warmup_frames=np.array([s["warmup_frames"] for s in samples], np.int64),
        frame_period_ns=np.array([s["frame_period_ns"] for s in samples], np.int64),
    )
    tmp.replace(path)  # a shard is either complete or absent


def write_dataset(out_dir: Path, split: str, samples: int, seed: int, shard_size: int = 32,
                  workers: int | None = None, cfg: DatasetConfig = DatasetConfig(),
                  progress: bool = True) -> list[Path]:
    """Generate ``samples`` samples into shards of ``shard_size``; resumable (existing
    shards are kept) and parallel over ``workers`` processes."""
    if split not in SPLITS:
        raise ConfigError(f"--split {split!r} is not one of {', '.join(SPLITS)}")
    if samples <= 0:
        raise ConfigError(f"--samples must be positive, got {samples}")
    out_dir = Path(out_dir)
    output_dir(out_dir)
    config = asdict(cfg)
    if not cfg.warmup_frames:  # single exposures: the same record as before sequences
        del config["warmup_frames"], config["frame_period_ns"]
    if not any(cfg.ir_tau_ms):  # the paper's blur: the same record as before
        del config["ir_tau_ms"]
    meta = {"split": split, "seed": seed, "samples": samples, "shard_size": shard_size,
            "config": config, "scenarios": list(SCENARIO_IDS)}
    if cfg.pairs_dir:
        if not 0.0 <= cfg.procedural_fraction <= 1.0:
            raise ConfigError(f"--procedural-fraction must be in [0, 1], got "
                              f"{cfg.procedural_fraction}")
        # the images this split may draw from: written down so a reader can check that
        # train and test never share one
        meta["images"] = list(PairLibrary.open(cfg.pairs_dir).split(split))
    meta = json.loads(json.dumps(meta))  # as it reads back (tuples become lists)
    meta_path = out_dir / f"{split}.json"
    if meta_path.exists() and json.loads(meta_path.read_text()) != meta:
        raise ConfigError(f"{meta_path}: holds a different dataset; choose another --out")
    meta_path.write_text(json.dumps(meta, indent=1))
    jobs, paths = [], []
    for first in range(0, samples, shard_size):
        count = min(shard_size, samples - first)
        path = out_dir / f"{split}-{first // shard_size:05d}.npz"
        paths.append(path)
        if not path.exists():
            jobs.append((str(out_dir), seed, split, first, count, cfg))
    run_shard_jobs(_shard_job, jobs, [j[4] for j in jobs], samples, f"dataset {split}",
                   "sample", workers, progress)
    return paths


def iter_samples(data_dir: Path, split: str) -> Iterator[dict]:
    """Samples of a split in order; events come back as event arrays (t relative, ns)."""
    data_dir = Path(data_dir)
    shards = sorted(data_dir.glob(f"{split}-*.npz"))
    if not shards:
        raise InputFileError(f"{data_dir}: no {split}-*.npz shards (run `evif dataset`)")
    names = list(SCENARIO_IDS)
    for shard in shards:
        try:
            z = np.load(shard)
            arrays = {k: z[k] for k in z.files}
        except Exception as exc:  # noqa: BLE001 - numpy/zipfile raise many kinds
            raise InputFileError(f"{shard}: unreadable shard ({reason(exc)})") from exc
        missing = [k for k in ("events", "event_offsets", "ir_blur", "ir_sharp", "vis_sharp",
                               "aps_blur", "scenario", "exposure_ns", "recon_start_ns")
                   if k not in arrays]
        if missing:
            raise InputFileError(f"{shard}: not an `evif dataset` shard (missing "
                                 f"{', '.join(missing)})")
        off = arrays["event_offsets"]
        for i in range(len(off) - 1):
            st = arrays["events"][off[i]:off[i + 1]]
            ev = np.empty(st.size, EVENT_DTYPE)
            for name in ("x", "y", "t", "p"):
                ev[name] = st[name]
            yield {
                "events": ev,
                "ir_blur": arrays["ir_blur"][i],
                "ir_sharp": arrays["ir_sharp"][i],
                "vis_sharp": arrays["vis_sharp"][i],
                "aps_blur": arrays["aps_blur"][i],
                "scenario": names[int(arrays["scenario"][i])],
                "exposure_ns": int(arrays["exposure_ns"][i]),
                "recon_start_ns": int(arrays["recon_start_ns"][i]),
                "source": SOURCES[int(arrays["source"][i])] if "source" in arrays
                else "procedural",
                "image": str(arrays["image"][i]) if "image" in arrays else "",
                # shards written before sequence samples hold single exposures
                "warmup_frames": int(arrays["warmup_frames"][i]) if "warmup_frames" in arrays
                else 0,
                "frame_period_ns": int(arrays["frame_period_ns"][i])
                if "frame_period_ns" in arrays else ThermalConfig().period_ns,
            }
