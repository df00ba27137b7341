"""Exposure synchronizer: pairs each IR frame with its hardware trigger and cuts the events
of its exposure (plus the reconstruction sub-windows), ROS-free.

Clocks: events and triggers are on the event camera's clock (ns). IR frames carry a host
arrival stamp; ``time_offset_ns`` maps it onto the event clock. A frame whose exposure
started at trigger ``t`` arrives at ``t + exposure + latency`` with
``latency_ns[0] <= latency <= latency_ns[1]``; a frame is paired with the trigger inside
that window, so a missed pulse or a dropped frame never shifts later pairs.

A window is emitted once the event stream has passed its end.
Buffers are sized by time and capped in events; late, duplicate and out-of-order input is
accepted where it still can be and counted. An input far off the running clock (more than
``jump_back_ns`` behind it or ``jump_forward_ns`` ahead) is held: a single one is an outlier
(a corrupt stamp), dropped and counted; when ``jump_confirm`` consecutive inputs of the same
stream agree on the new clock (camera reset, bag loop, a long gap) the synchronizer resets
and takes them.
"""

from __future__ import annotations

import bisect
from collections import deque
from dataclasses import dataclass
from typing import Any

import numpy as np

from evif_ros.errors import ConfigError
from evif_ros.runtime.events import merge_sorted, recon_edges, slice_time, split_windows

_NEVER = int(np.iinfo(np.int64).min)  # no input on this clock yet


@dataclass(frozen=True)
class SyncConfig:
    exposure_ns: int = 25_000_000
    latency_ns: tuple[int, int] = (0, 30_000_000)  # frame arrival after exposure end
    time_offset_ns: int = 0  # event_clock = host_stamp + offset
    sub_windows: int = 20  # K reconstruction sub-windows ending at mid-exposure
    recon_span_ns: int = 0  # span of the K sub-windows; 0 = the exposure
    reorder_slack_ns: int = 0  # wait this long past a window's end for stragglers
    buffer_ns: int = 1_000_000_000  # event history kept
    max_events: int = 40_000_000  # hard cap on buffered events (flood protection)
    frame_timeout_ns: int = 2_000_000_000  # event-clock wait for a frame (fast replays)
    jump_back_ns: int = 500_000_000  # a step back this large is a reset or an outlier
    jump_forward_ns: int = 5_000_000_000  # a step ahead this large, the same
    jump_confirm: int = 3  # consecutive far-off inputs that make a reset
    max_pending: int = 64  # pending frames / triggers kept at most

    def __post_init__(self) -> None:
        if self.exposure_ns <= 0:
            raise ConfigError(f"exposure_ns must be positive, got {self.exposure_ns}")
        lo, hi = self.latency_ns
        if not 0 <= lo <= hi:
            raise ConfigError(f"latency_ns must be 0 <= min <= max, got {self.latency_ns}")
        if self.sub_windows < 1:
            raise ConfigError(f"sub_windows must be >= 1, got {self.sub_windows}")
        if self.jump_confirm < 1:
            raise ConfigError(f"jump_confirm must be >= 1, got {self.jump_confirm}")

    @property
    def span_ns(self) -> int:
        return self.recon_span_ns or self.exposure_ns


@dataclass
class SyncStats:
    packets: int = 0
    events: int = 0
    windows: int = 0
    empty_windows: int = 0
    duplicate_packets: int = 0
    out_of_order_packets: int = 0
    late_packets: int = 0
    overflow_events: int = 0
    duplicate_triggers: int = 0
    duplicate_frames: int = 0
    unpaired_frames: int = 0  # missed pulse: no trigger in the frame's window
    orphan_triggers: int = 0  # dropped frame: no frame for the trigger
    ambiguous_pairs: int = 0
    dropped_pending: int = 0
    outlier_packets: int = 0  # one packet far off the clock, dropped
    outlier_triggers: int = 0
    resets: int = 0

    def as_dict(self) -> dict[str, int]:
        return dict(self.__dict__)


@dataclass(frozen=True)
class ExposureWindow:
    """One IR frame with its exposure ``[t_start_ns, t_start_ns + exposure_ns)``.

    ``events`` holds every event from the first reconstruction sub-window's start to the
    exposure end, time-sorted; ``recon_edges_ns`` are the ``K + 1`` sub-window edges,
    the last one at mid-exposure. ``grids``: the window's voxel grids when they were binned
    as the packets arrived (``WindowFeeder(prebin=True)``), valid while the window lives.
    """

    image: Any
    host_ns: int
    t_start_ns: int
    exposure_ns: int
    events: np.ndarray
    recon_edges_ns: np.ndarray
    seq: int = 0
    grids: tuple[np.ndarray, np.ndarray] | None = None

    @property
    def t_end_ns(self) -> int:
        return self.t_start_ns + self.exposure_ns

    @property
    def mid_ns(self) -> int:
        return self.t_start_ns + self.exposure_ns // 2

    @property
    def exposure_events(self) -> np.ndarray:
        return slice_time(self.events, self.t_start_ns, self.t_end_ns)

    def sub_window_events(self) -> list[np.ndarray]:
        return split_windows(self.events, self.recon_edges_ns)


class _EventBuffer:
    """Packets kept sorted by first timestamp; gathered and sliced on demand."""

    def __init__(self) -> None:
        self.firsts: list[int] = []
        self.packets: list[np.ndarray] = []
        self.keys: set[tuple[int, int, int]] = set()
        self.count = 0

    def insert(self, ev: np.ndarray) -> tuple[bool, bool]:
        """Add a packet; returns ``(duplicate, out_of_order)``."""
        key = (int(ev["t"][0]), int(ev["t"][-1]), int(ev.size))
        if key in self.keys:
            return True, False
        first = key[0]
        out_of_order = bool(self.packets) and first < int(self.packets[-1]["t"][-1])
        i = bisect.bisect_right(self.firsts, first)
        self.firsts.insert(i, first)
        self.packets.insert(i, ev)
        self.keys.add(key)
        self.count += ev.size
        return False, out_of_order

    def gather(self, t0: int, t1: int) -> np.ndarray:
        """Events with ``t0 <= t < t1``, sorted (packets may overlap)."""
        hi = bisect.bisect_left(self.firsts, t1)
        parts = [p for p in self.packets[:hi] if int(p["t"][-1]) >= t0]
        return slice_time(merge_sorted(*parts), t0, t1) if parts else merge_sorted()

    def drop_before(self, t: int) -> int:
        """Drop whole packets that end before ``t``; returns events dropped."""
        n = 0
        while self.packets and int(self.packets[0]["t"][-1]) < t:
            n += self._pop_front()
        return n

    def drop_oldest(self) -> int:
        return self._pop_front()

    def _pop_front(self) -> int:
        p = self.packets.pop(0)
        self.firsts.pop(0)
        self.keys.discard((int(p["t"][0]), int(p["t"][-1]), int(p.size)))
        self.count -= p.size
        return p.size


@dataclass
class _Frame:
    image: Any
    host_ns: int
    seq: int


class ExposureSynchronizer:
    """Feed ``add_events`` / ``add_trigger`` / ``add_frame`` in any interleaving; each
    returns the windows that became complete, oldest first."""

    def __init__(self, config: SyncConfig = SyncConfig()):
        self.cfg = config
        self.stats = SyncStats()
        self._held_events: list[np.ndarray] = []  # far-off packets awaiting confirmation
        self._held_triggers: list[int] = []
        self._reset_state()

    def _reset_state(self) -> None:
        self.buffer = _EventBuffer()
        self.triggers: list[int] = []  # unpaired, sorted
        self.frames: list[_Frame] = []  # unpaired, by host stamp
        self.ready: list[tuple[int, _Frame]] = []  # paired, sorted by trigger
        self.watermark = _NEVER  # newest event time
        self.trigger_mark = _NEVER  # newest trigger time
        self.emitted_until = _NEVER
        self._seq = 0
        # recently paired stamps, so that a repeat after emission is still a duplicate
        self.recent_triggers: deque[int] = deque(maxlen=256)
        self.recent_frames: deque[int] = deque(maxlen=256)

    def reset(self) -> None:
        """Forget everything buffered (counters are kept)."""
        self.stats.resets += 1
        self._reset_state()

    # --- inputs ---------------------------------------------------------------------
    def _far_off(self, t_first: int, t_last: int, ref: int) -> bool:
        return ref != _NEVER and (t_last < ref - self.cfg.jump_back_ns
                                  or t_first > ref + self.cfg.jump_forward_ns)

    def _agree(self, times: list[int]) -> bool:
        """Held inputs on one consistent new clock (each close to the one before)."""
        return all(-self.cfg.jump_back_ns <= b - a <= self.cfg.jump_forward_ns
                   for a, b in zip(times, times[1:]))

    def add_events(self, events: np.ndarray) -> list[ExposureWindow]:
        if events.size == 0:
            return []
        first, last = int(events["t"][0]), int(events["t"][-1])
        if self._far_off(first, last, self.watermark):
            held = self._held_events
            held.append(events)
            if not self._agree([int(e["t"][0]) for e in held]):
                self.stats.outlier_packets += len(held) - 1
                del held[:-1]
            if len(held) < self.cfg.jump_confirm:
                return []
            packets, self._held_events = held, []
            return self._restart(packets, [])
        self.stats.outlier_packets += len(self._held_events)
        self._held_events = []
        return self._take_events(events)

    def _restart(self, packets: list[np.ndarray], triggers: list[int]) -> list[ExposureWindow]:
        """A sustained jump: reset, then take what was held of both streams (the other
        stream is usually on its way to the same new clock)."""
        self.reset()
        packets, self._held_events = packets + self._held_events, []
        triggers, self._held_triggers = triggers + self._held_triggers, []
        out = [w for p in packets for w in self._take_events(p)]
        return out + [w for t in sorted(triggers) for w in self.add_trigger(t)]

    def _take_events(self, events: np.ndarray) -> list[ExposureWindow]:
        first, last = int(events["t"][0]), int(events["t"][-1])
        dup, ooo = self.buffer.insert(events)
        if dup:
            self.stats.duplicate_packets += 1
            return []
        self.stats.packets += 1
        self.stats.events += events.size
        self.stats.out_of_order_packets += ooo
        if first < self.emitted_until:
            self.stats.late_packets += 1
        self.watermark = max(self.watermark, last)
        while self.buffer.count > self.cfg.max_events and len(self.buffer.packets) > 1:
            self.stats.overflow_events += self.buffer.drop_oldest()
        return self._advance()

    def add_trigger(self, t_ns: int) -> list[ExposureWindow]:
        t_ns = int(t_ns)
        # against the trigger clock once there is one, else against the events
        ref = self.trigger_mark if self.trigger_mark != _NEVER else self.watermark
        if self._far_off(t_ns, t_ns, ref):
            held = self._held_triggers
            held.append(t_ns)
            if not self._agree(held):
                self.stats.outlier_triggers += len(held) - 1
                del held[:-1]
            if len(held) < self.cfg.jump_confirm:
                return []
            triggers, self._held_triggers = held, []
            return self._restart([], triggers)
        self.stats.outlier_triggers += len(self._held_triggers)
        self._held_triggers = []
        return self._take_trigger(t_ns)

    def _take_trigger(self, t_ns: int) -> list[ExposureWindow]:
        i = bisect.bisect_left(self.triggers, t_ns)
        if (i < len(self.triggers) and self.triggers[i] == t_ns) or t_ns in self.recent_triggers:
            self.stats.duplicate_triggers += 1
            return []
        self.triggers.insert(i, t_ns)
        self.trigger_mark = max(self.trigger_mark, t_ns)

        if len(self.triggers) > self.cfg.max_pending:
            self.triggers.pop(0)
            self.stats.orphan_triggers += 1
        self._pair()
        return self._advance()

    def add_frame(self, image: Any, host_ns: int) -> list[ExposureWindow]:
        host_ns = int(host_ns)
        if host_ns in self.recent_frames or any(f.host_ns == host_ns for f in self.frames):
            self.stats.duplicate_frames += 1
            return []
        self.frames.append(_Frame(image, host_ns, self._seq))
        self._seq += 1
        self.frames.sort(key=lambda f: f.host_ns)
        if len(self.frames) > self.cfg.max_pending:
            self.frames.pop(0)
            self.stats.unpaired_frames += 1
        self._pair()
        return self._advance()

    # --- logic ----------------------------------------------------------------------
    def trigger_window(self, host_ns: int) -> tuple[int, int]:
        """Event-clock range in which the trigger of a frame stamped ``host_ns`` lies."""
        t_end = host_ns + self.cfg.time_offset_ns - self.cfg.exposure_ns
        return t_end - self.cfg.latency_ns[1], t_end - self.cfg.latency_ns[0]

    def _pair(self) -> None:
        lat_mid = (self.cfg.latency_ns[0] + self.cfg.latency_ns[1]) // 2
        keep = []
        for f in self.frames:
            lo, hi = self.trigger_window(f.host_ns)
            i0 = bisect.bisect_left(self.triggers, lo)
            i1 = bisect.bisect_right(self.triggers, hi)
            if i1 == i0:
                keep.append(f)
                continue
            if i1 - i0 > 1:
                self.stats.ambiguous_pairs += 1
            nominal = hi - (lat_mid - self.cfg.latency_ns[0])
            best = min(range(i0, i1), key=lambda j: abs(self.triggers[j] - nominal))
            t_trig = self.triggers.pop(best)
            self.recent_triggers.append(t_trig)
            self.recent_frames.append(f.host_ns)
            bisect.insort(self.ready, (t_trig, f), key=lambda r: r[0])
        self.frames = keep

    def _advance(self) -> list[ExposureWindow]:
        cfg = self.cfg
        # Windows close on event time only: triggers travel on their own topic and can
        # overtake a backlog of events, so they must not close a window. (A DAVIS always
        # emits background-activity events, so the event clock keeps moving.)
        wm = self.watermark
        # frames whose trigger can no longer come: the event clock passed their window
        keep = []
        for f in self.frames:
            if self.trigger_window(f.host_ns)[1] + cfg.reorder_slack_ns < wm - cfg.frame_timeout_ns:
                self.stats.unpaired_frames += 1
            else:
                keep.append(f)
        self.frames = keep
        # triggers whose frame never came
        while self.triggers and self.triggers[0] + cfg.exposure_ns + cfg.latency_ns[1] \
                + cfg.frame_timeout_ns < wm:
            self.triggers.pop(0)
            self.stats.orphan_triggers += 1
        out = []
        while self.ready and self.ready[0][0] + cfg.exposure_ns + cfg.reorder_slack_ns <= wm:
            t0, frame = self.ready.pop(0)
            out.append(self._window(t0, frame))
        if len(self.ready) > cfg.max_pending:
            drop = len(self.ready) - cfg.max_pending
            self.ready = self.ready[drop:]
            self.stats.dropped_pending += drop
        oldest_needed = min([t for t, _ in self.ready] + self.triggers + [self.watermark])
        horizon = min(self.watermark - cfg.buffer_ns, oldest_needed - cfg.span_ns)
        self.buffer.drop_before(horizon)
        return out

    def window_span(self, t0: int) -> tuple[np.ndarray, int, int]:
        """``(sub-window edges, first event time, end)`` of the exposure starting at ``t0``:
        a window holds the events ``first <= t < end``."""
        edges = recon_edges(t0 + self.cfg.exposure_ns // 2, self.cfg.span_ns,
                            self.cfg.sub_windows)
        return edges, min(int(edges[0]), t0), t0 + self.cfg.exposure_ns

    def pending_triggers(self) -> list[int]:
        """Exposure starts whose window may still be emitted (paired or not)."""
        return self.triggers + [t for t, _ in self.ready]

    def _window(self, t0: int, frame: _Frame) -> ExposureWindow:
        cfg = self.cfg
        edges, start, t_end = self.window_span(t0)
        events = self.buffer.gather(start, t_end)
        self.emitted_until = max(self.emitted_until, t_end)
        self.stats.windows += 1
        if slice_time(events, t0, t_end).size == 0:
            self.stats.empty_windows += 1
        return ExposureWindow(frame.image, frame.host_ns, t0, cfg.exposure_ns, events, edges,
                              frame.seq)


def sync_config(calib, sub_windows: int, **overrides: Any) -> SyncConfig:
    """The synchronizer settings a calibration implies (exposure, frame latency, the IR
    host clock's offset), with ``sub_windows`` reconstruction windows."""
    return SyncConfig(exposure_ns=calib.ir_exposure_ns, latency_ns=calib.ir_latency_ns,
                      time_offset_ns=calib.time_offset_ns, sub_windows=sub_windows,
                      **overrides)
