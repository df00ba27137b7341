"""Where the event clock stands on the host clock, for end-to-end latency.

The event camera's clock (DESIGN.md: the one clock of the rig) and the host's monotonic
clock differ by an unknown offset (a live DAVIS, a replayed bag, the synthetic rig started
at 1 s). Every event packet gives an upper bound of that offset: ``host receive time -
time of its last event`` = offset + transport delay. The smallest bound seen recently is
the offset plus the fastest delivery, so exposure end -> publication measured with it
excludes only that constant floor.
"""

from __future__ import annotations

from collections import deque


class EventClockOffset:
    """Running minimum of ``host_ns - event_ns`` over the last ``window`` packets (a sliding
    window, so a clock jump or drift is followed)."""

    def __init__(self, window: int = 500):
        self.bounds: deque[int] = deque(maxlen=window)

    def observe(self, host_ns: int, event_ns: int) -> None:
        self.bounds.append(int(host_ns) - int(event_ns))

    @property
    def offset_ns(self) -> int | None:
        return min(self.bounds) if self.bounds else None

    def latency_ms(self, host_ns: int, event_ns: int) -> float | None:
        """Host time ``host_ns`` minus event-clock time ``event_ns`` mapped to the host
        (ms), or None before the first packet."""
        off = self.offset_ns
        return None if off is None else (int(host_ns) - int(event_ns) - off) / 1e6
