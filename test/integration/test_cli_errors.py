"""Bad input through the `evif` command line: every case ends in exit code 2 and one line
on stderr naming the culprit, never a traceback or a hang, and nothing is written where it
should not be. Cases are built from files other tools wrote (rosbags, sqlite3, torch,
numpy) or from raw bytes."""

from __future__ import annotations

import csv
import json
import os
import shutil
import sqlite3
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

pytestmark = pytest.mark.timeout(300)
EVIF = str(Path(sys.executable).parent / "evif")


def run(args: list[str], timeout: float = 120) -> subprocess.CompletedProcess:
    return subprocess.run([EVIF, *map(str, args)], capture_output=True, text=True,
                          timeout=timeout)


def assert_one_line(res: subprocess.CompletedProcess, *names: str) -> None:
    lines = [ln for ln in res.stderr.splitlines() if ln.strip()]
    assert res.returncode == 2, (res.returncode, res.stderr[-2000:])
    assert "Traceback" not in res.stderr, res.stderr[-2000:]
    assert len(lines) == 1, res.stderr
    for name in names:
        assert str(name) in lines[0], (name, lines[0])


@pytest.fixture(scope="module")
def sim_bag(tmp_path_factory) -> Path:
    """A small real bag (`evif simulate`), the raw material of the broken ones."""
    out = tmp_path_factory.mktemp("sim")
    res = run(["simulate", "--out", out, "--duration", "0.3", "--seed", "1", "--quiet"])
    assert res.returncode == 0, res.stderr
    return out / "rig"


# --- usage errors: ranges and finite numbers -------------------------------------------
USAGE = [
    (["simulate", "--out", "{tmp}/s", "--duration", "nan"], "--duration"),
    (["simulate", "--out", "{tmp}/s", "--duration", "-1"], "--duration"),
    (["simulate", "--out", "{tmp}/s", "--missed-pulses", "1.5"], "--missed-pulses"),
    (["dataset", "--out", "{tmp}/d", "--split", "train", "--samples", "4",
      "--shard-size", "0"], "--shard-size"),
    (["dataset", "--out", "{tmp}/d", "--split", "train", "--samples", "4",
      "--shard-size", "-1"], "--shard-size"),
    (["dataset", "--out", "{tmp}/d", "--split", "train", "--samples", "4",
      "--workers", "-1"], "--workers"),
    (["dataset", "--out", "{tmp}/d", "--split", "train", "--samples", "0"], "--samples"),
    (["train", "--data", "{tmp}", "--out", "{tmp}/t", "--stage", "1", "--crop", "7"],
     "--crop"),
    (["train", "--data", "{tmp}", "--out", "{tmp}/t", "--stage", "1", "--crop", "1000"],
     "--crop"),
    (["train", "--data", "{tmp}", "--out", "{tmp}/t", "--stage", "1", "--crop", "100"],
     "--crop"),
    (["train", "--data", "{tmp}", "--out", "{tmp}/t", "--stage", "1", "--batch", "0"],
     "--batch"),
    (["train", "--data", "{tmp}", "--out", "{tmp}/t", "--stage", "1", "--threads", "-2"],
     "--threads"),
    (["train", "--data", "{tmp}", "--out", "{tmp}/t", "--stage", "1", "--iters", "-3"],
     "--iters"),
    (["train", "--data", "{tmp}", "--out", "{tmp}/t", "--stage", "1", "--lr", "inf"],
     "--lr"),
    (["train", "--data", "{tmp}", "--out", "{tmp}/t", "--stage", "3", "--fusion-weights",
      "1,x"], "--fusion-weights"),
    (["train", "--data", "{tmp}", "--out", "{tmp}/t", "--stage", "3", "--fusion-weights",
      "1,2"], "--fusion-weights"),
    (["train", "--data", "{tmp}", "--out", "{tmp}/t", "--stage", "3", "--fusion-weights",
      "1,0,0,1,4,1,1,1,1"], "--fusion-weights"),
    (["train", "--data", "{tmp}", "--out", "{tmp}/t", "--stage", "3", "--fusion-weights",
      "ssim=1,salience=2"], "--fusion-weights"),
    (["train", "--data", "{tmp}", "--out", "{tmp}/t", "--stage", "3", "--fusion-weights",
      "ssim=1,grad"], "--fusion-weights"),
    (["replay", "{tmp}/x", "--rate", "0"], "--rate"),
    (["replay", "{tmp}/x", "--delay", "-1"], "--delay"),
    (["eval", "--data", "{tmp}", "--out", "{tmp}/e", "--limit", "-1"], "--limit"),
    (["demo", "--rate", "abc"], "--rate"),
]


@pytest.mark.parametrize("args,flag", USAGE, ids=[" ".join(a[:1] + [f]) for a, f in USAGE])
def test_out_of_range_arguments(tmp_path, args, flag):
    res = run([a.format(tmp=tmp_path) for a in args])
    assert_one_line(res, flag)
    assert not any(p.name in ("s", "d", "t", "e") for p in tmp_path.iterdir())


# --- files that are not what they claim -------------------------------------------------
def _broken_bags(sim: Path, root: Path) -> dict[str, Path]:
    data = (sim / f"{sim.name}.mcap").read_bytes()
    out = {}
    out["random bytes"] = root / "random.mcap"
    out["random bytes"].write_bytes(np.random.default_rng(0).bytes(5000))
    out["empty file"] = root / "empty.mcap"
    out["empty file"].write_bytes(b"")
    bad = root / "garbage_meta"
    bad.mkdir()
    (bad / "metadata.yaml").write_bytes(b"\x00\xff\xfe rosbag2: [unclosed")
    shutil.copy(sim / f"{sim.name}.mcap", bad / "garbage_meta.mcap")
    out["binary metadata.yaml"] = bad
    bad = root / "meta_nonsense"
    bad.mkdir()
    (bad / "metadata.yaml").write_text("rosbag2_bagfile_information: 42\n")
    (bad / "meta_nonsense.mcap").write_bytes(data)
    out["metadata of the wrong shape"] = bad
    # sqlite3 bags: a copy written by rosbags, then damaged with sqlite3 and raw bytes
    from rosbags.highlevel import AnyReader
    from rosbags.rosbag2 import StoragePlugin, Writer

    from evif_ros.ros.bags import typestore
    store = typestore()
    good = root / "sq"
    with AnyReader([sim], default_typestore=store) as r, \
            Writer(good, version=9, storage_plugin=StoragePlugin.SQLITE3) as w:
        conns = {}
        for c, t, raw in r.messages():
            if c.topic not in conns:
                conns[c.topic] = w.add_connection(c.topic, c.msgtype, typestore=store)
            w.write(conns[c.topic], t, raw)
    head = root / "sq_head"
    shutil.copytree(good, head)
    db = next(head.glob("*.db3"))
    db.write_bytes(b"\x00" * 100 + db.read_bytes()[100:])
    out["sqlite3 with a broken header"] = head
    mid = root / "sq_mid"
    shutil.copytree(good, mid)
    db = next(mid.glob("*.db3"))
    raw = bytearray(db.read_bytes())
    at = len(raw) // 2
    raw[at:at + 20000] = np.random.default_rng(1).bytes(20000)
    db.write_bytes(bytes(raw))
    out["sqlite3 corrupt mid-file"] = mid
    notdb = root / "sq_notdb"
    notdb.mkdir()
    shutil.copy(good / "metadata.yaml", notdb)
    con = sqlite3.connect(notdb / "sq.db3")
    con.execute("CREATE TABLE other (x INTEGER)")
    con.commit()
    con.close()
    out["sqlite3 without rosbag2 tables"] = notdb
    return out


def test_broken_bags_replay_fails_in_one_line_and_quickly(sim_bag, tmp_path):
    for what, bag in _broken_bags(sim_bag, tmp_path).items():
        res = run(["replay", bag, "--delay", "0", "--rate", "50"], timeout=60)
        assert_one_line(res, bag)
        assert what  # (the case name is in the assertion context above)


def test_broken_bag_eval_fails_in_one_line(sim_bag, tmp_path):
    bags = _broken_bags(sim_bag, tmp_path)
    for what in ("random bytes", "sqlite3 corrupt mid-file"):
        out = tmp_path / f"eval_{what.replace(' ', '_')}"
        res = run(["eval", "--bag", bags[what], "--out", out, "--quiet"], timeout=300)
        assert_one_line(res, bags[what])


def test_broken_bags_in_contrast_and_eval_real_fail_in_one_line(sim_bag, tmp_path):
    """The commands that read a recording with APS frames take bags too: a broken one ends
    in one line naming it, whatever broke."""
    bags = _broken_bags(sim_bag, tmp_path)
    for what, bag in bags.items():
        assert_one_line(run(["contrast", bag], timeout=60), bag)
        assert what
    bag = bags["random bytes"]
    assert_one_line(run(["eval-real", bag, "--out", tmp_path / "o", "--quiet"], timeout=60),
                    bag)


def test_eval_real_reads_a_good_bag_to_the_end(sim_bag, tmp_path):
    """The bag's APS frames are stamped at one instant (image_raw): no exposure to blur
    along, so the blur's ceiling is a perfect 1.0, not an error."""
    res = run(["eval-real", sim_bag, "--out", tmp_path / "o", "--quiet"], timeout=120)
    assert res.returncode == 0, res.stderr
    rows = list(csv.DictReader(open(tmp_path / "o" / "scores.csv")))
    assert rows and all(float(r["blur_ceiling"]) == 1.0 and float(r["motion_px"]) == 0.0
                        for r in rows)


def test_broken_calibrations(sim_bag, tmp_path):
    good = (Path(__file__).resolve().parents[2] / "calibration"
            / "synthetic_rig.yaml").read_text()
    cases = {"inf.yaml": good.replace("ir_exposure_ns: 25000000", "ir_exposure_ns: .inf"),
             "binary.yaml": None,
             "h33.yaml": None}
    (tmp_path / "binary.yaml").write_bytes(b"\x89PNG\r\n\x1a\n\x00\xff")
    import yaml
    data = yaml.safe_load(good)
    data["ir_to_davis_homography"][2][2] = 0.0
    data["ir_to_davis_homography"][2][0] = 1e-3  # still invertible
    (tmp_path / "h33.yaml").write_text(yaml.safe_dump(data))
    (tmp_path / "inf.yaml").write_text(cases["inf.yaml"])
    assert ".inf" in (tmp_path / "inf.yaml").read_text()
    for name in cases:
        res = run(["eval", "--bag", sim_bag, "--calibration", tmp_path / name,
                   "--out", tmp_path / f"ev_{name}", "--quiet"], timeout=300)
        assert_one_line(res, tmp_path / name)


def test_calibrate_bad_pairs_and_out_folder(tmp_path):
    binary = tmp_path / "pairs.bin"
    binary.write_bytes(bytes(range(256)) * 8)
    assert_one_line(run(["calibrate", "--pairs", binary, "--out", tmp_path / "c.yaml"]),
                    binary)
    pairs = tmp_path / "pairs.txt"
    rng = np.random.default_rng(0)
    pts = rng.uniform(0, 250, (12, 2))
    pairs.write_text("\n".join(f"{u} {v} {u * 1.05 + 3} {v * 1.02 + 1}" for u, v in pts))
    missing = tmp_path / "no" / "such" / "c.yaml"
    assert_one_line(run(["calibrate", "--pairs", pairs, "--out", missing]), missing.parent)
    assert not missing.parent.exists()
    nan_pairs = tmp_path / "nan.txt"
    nan_pairs.write_text("nan 1 2 3\n" * 8)
    res = run(["calibrate", "--pairs", nan_pairs, "--out", tmp_path / "n.yaml"])
    assert_one_line(res, nan_pairs)
    assert not (tmp_path / "n.yaml").exists()


def test_bad_dataset_folders(tmp_path):
    a_file = tmp_path / "afile"
    a_file.write_text("x")
    assert_one_line(run(["dataset", "--out", a_file, "--split", "train", "--samples", "2",
                         "--quiet"]), a_file)
    assert_one_line(run(["simulate", "--out", a_file, "--duration", "0.1", "--quiet"]),
                    a_file)
    for kind, content in (("empty", b""), ("corrupt", np.random.default_rng(2).bytes(4000))):
        data = tmp_path / kind
        data.mkdir()
        (data / "train-00000.npz").write_bytes(content)
        (data / "test-00000.npz").write_bytes(content)
        (data / "train.json").write_text(json.dumps({"split": "train"}))
        res = run(["train", "--data", data, "--out", tmp_path / f"t_{kind}", "--stage", "1",
                   "--iters", "1", "--quiet"])
        assert_one_line(res, data / "train-00000.npz")
        res = run(["eval", "--data", data, "--out", tmp_path / f"e_{kind}", "--quiet"])
        assert_one_line(res, data / "test-00000.npz")


def test_untrusted_checkpoints_cannot_run_code(tmp_path):
    """A pickle that would run a command when unpickled: every command that reads a
    checkpoint refuses it in one line, and the command never runs."""
    marker = tmp_path / "pwned"

    class Exploit:
        def __reduce__(self):
            return (os.system, (f"touch {marker}",))
    crafted = tmp_path / "stage1.pt"
    torch.save({"config": {}, "model": Exploit()}, crafted)
    assert_one_line(run(["export", "--checkpoint", crafted, "--out", tmp_path / "m.ts"]),
                    crafted)
    data = tmp_path / "data"
    data.mkdir()
    assert_one_line(run(["train", "--data", data, "--out", tmp_path / "t", "--stage", "2",
                         "--init", crafted, "--iters", "1"]), crafted)
    assert not marker.exists()
    assert not (tmp_path / "m.ts").exists()


def test_models_that_break_the_contract(tmp_path, sim_bag):
    """Metadata without sub_windows, and a model that returns 8x8 images: refused at load
    with one line (`evif eval --bag` loads them like the node does)."""
    class Small(torch.nn.Module):
        def forward(self, ir: torch.Tensor, ev: torch.Tensor, sub: torch.Tensor,
                    state: list[torch.Tensor]):
            small = torch.zeros(1, 1, 8, 8)
            return small, small, small, state
    scripted = torch.jit.script(Small())
    no_k = tmp_path / "no_k.ts"
    torch.jit.save(scripted, str(no_k), _extra_files={"evif.json": json.dumps({"config": {}})})
    small = tmp_path / "small.ts"
    torch.jit.save(scripted, str(small),
                   _extra_files={"evif.json": json.dumps({"config": {"sub_windows": 2}})})
    for model, words in ((no_k, "sub_windows"), (small, "8x8")):
        res = run(["eval", "--bag", sim_bag, "--model", model, "--out", tmp_path / "e",
                   "--quiet"], timeout=300)
        assert_one_line(res, model, words)


def test_export_options_that_do_not_apply(tmp_path):
    """The curved motion path is a setting of a checkpoint's export; an exported file keeps
    its own."""
    out = tmp_path / "m.ts"
    shipped = Path(__file__).resolve().parents[2] / "models" / "evif_rt.ts"
    res = run(["export", "--model", shipped, "--out", out, "--motion-curved"])
    assert_one_line(res, "--motion-curved", "--checkpoint")
    assert not out.exists()
    for bad in ("-3", "x"):  # a thermal time constant is a duration
        res = run(["export", "--model", shipped, "--out", out, "--ir-lag-ms", bad])
        assert res.returncode == 2 and "--ir-lag-ms" in res.stderr
    res = run(["export", "--model", shipped, "--out", out, "--ir-lag-ms", "10",
               "--ir-exposure-ms", "0"])
    assert res.returncode == 2 and "--ir-exposure-ms" in res.stderr
    assert not out.exists()


def test_curved_motion_without_the_deconvolution(tmp_path):
    """Training the curved path needs the motion deconvolution it bends; refused before any
    data is read or checkpoint written."""
    res = run(["train", "--data", tmp_path, "--out", tmp_path / "run", "--stage", "1",
               "--size", "lite", "--iters", "1", "--motion-curved"])
    assert_one_line(res, "--motion-curved", "--motion-taps")
    assert not (tmp_path / "run" / "stage1.pt").exists()


def test_garbage_event_payloads_in_a_bag_are_dropped_and_counted(sim_bag, tmp_path):
    """A bag whose every third event packet carries bytes that are not 9-byte events (a
    truncated payload): evif eval --bag drops those messages, says how many on one line,
    scores the rest and records the count (it used to end in `cannot reshape`)."""
    from rosbags.highlevel import AnyReader
    from rosbags.rosbag2 import StoragePlugin, Writer

    from evif_ros.ros.bags import typestore
    from evif_ros.runtime import topics

    store = typestore()
    damaged = tmp_path / "damaged"
    n_bad = 0
    with AnyReader([sim_bag], default_typestore=store) as r, \
            Writer(damaged, version=9, storage_plugin=StoragePlugin.MCAP) as w:
        conns, k = {}, 0
        for c, t, raw in r.messages():
            if c.topic not in conns:
                conns[c.topic] = w.add_connection(c.topic, c.msgtype, typestore=store)
            if c.topic == topics.EVENTS:
                k += 1
                if k % 3 == 0:
                    msg = r.deserialize(raw, c.msgtype)
                    msg.data = msg.data[:-5]  # no longer a whole number of points
                    raw = store.serialize_cdr(msg, c.msgtype)
                    n_bad += 1
            w.write(conns[c.topic], t, raw)
    assert n_bad > 0
    out = tmp_path / "eval"
    res = run(["eval", "--bag", damaged, "--out", out, "--quiet", "--methods", "average"],
              timeout=300)
    assert res.returncode == 0, res.stderr[-2000:]
    warnings = [ln for ln in res.stderr.splitlines() if "malformed" in ln]
    assert len(warnings) == 1 and f"dropped {n_bad} malformed" in warnings[0]
    assert topics.EVENTS in warnings[0] and "Traceback" not in res.stderr
    import json
    assert json.loads((out / "summary.json").read_text())["dropped_messages"] == {
        topics.EVENTS: n_bad}


def test_bags_carry_chunk_crcs_and_damaged_data_is_refused(sim_bag, tmp_path):
    """`evif simulate` writes a CRC-32 into every chunk (the mcap library, an outside
    reader, checks them); a bag damaged inside a chunk's messages is refused in one line by
    `evif replay` and `evif eval --bag`, naming the bag, instead of publishing garbage."""
    from mcap.reader import make_reader
    from mcap.records import Chunk
    from mcap.stream_reader import StreamReader

    mcap_file = sim_bag.parent / "rig.mcap"
    with open(mcap_file, "rb") as f:
        chunks = [r for r in StreamReader(f, emit_chunks=True).records
                  if isinstance(r, Chunk)]
    assert chunks and all(c.uncompressed_crc != 0 for c in chunks)
    with open(mcap_file, "rb") as f:
        n = sum(1 for _ in make_reader(f, validate_crcs=True).iter_messages())
    assert n > 0
    damaged = tmp_path / "damaged"
    shutil.copytree(sim_bag, damaged, symlinks=False)
    target = next(damaged.glob("*.mcap"))
    raw = bytearray(target.read_bytes())
    at = len(raw) // 3  # inside the message data of an early chunk
    raw[at:at + 64] = bytes(64)
    target.write_bytes(bytes(raw))
    res = run(["replay", damaged, "--delay", "0", "--rate", "50"], timeout=120)
    assert_one_line(res, damaged)
    assert "checksum" in res.stderr.lower()
    res = run(["eval", "--bag", damaged, "--out", tmp_path / "eval", "--quiet"], timeout=300)
    assert_one_line(res, damaged)
