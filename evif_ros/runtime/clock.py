"""Where the event clock stands on the host clock, for end-to-end latency.

The event camera's clock (DESIGN.md: the one clock of the rig) and the host's monotonic
clock differ by an unknown offset (a live DAVIS, a replayed bag, the synthetic rig started
at 1 s) and, in a replay or the synthetic rig, run at different speeds (``rate``). Each
event packet pairs its last event's time with the host time it arrived. The newest pair
anchors the mapping; the slope over the recent pairs gives the speed. An event-clock time
then maps to the host time it was (or will be) current, so "exposure end -> publication"
is wall time whatever the replay speed. Transport delay of the newest packet is included
in the anchor: the latency counts from when the exposure's last events could be known.
"""

from __future__ import annotations

from collections import deque


class EventClockMap:
    """Event-clock ns -> host ns, from the last ``window`` (host, event) pairs."""

    def __init__(self, window: int = 200):
        self.pairs: deque[tuple[int, int]] = deque(maxlen=window)

    def observe(self, host_ns: int, event_ns: int) -> None:
        if self.pairs and event_ns <= self.pairs[-1][1]:
            return  # a packet from the past (reordered) does not move the anchor
        self.pairs.append((int(host_ns), int(event_ns)))

    def speed(self) -> float:
        """Host seconds per event-clock second (1 live; 1/rate in a replay)."""
        if len(self.pairs) < 2:
            return 1.0
        (h0, e0), (h1, e1) = self.pairs[0], self.pairs[-1]
        return (h1 - h0) / (e1 - e0)

    def to_host_ns(self, event_ns: int) -> int | None:
        if not self.pairs:
            return None
        h1, e1 = self.pairs[-1]
        return int(h1 + (int(event_ns) - e1) * self.speed())

    def latency_ms(self, host_ns: int, event_ns: int) -> float | None:
        """Host time ``host_ns`` minus the host time of event-clock ``event_ns`` (ms), or
        None before the first packet."""
        at = self.to_host_ns(event_ns)
        return None if at is None else (int(host_ns) - at) / 1e6
