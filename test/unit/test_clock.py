"""Event clock -> host clock mapping for end-to-end latency (hand-computed values)."""

from evif_ros.runtime.clock import EventClockMap


def test_mapping_follows_offset_and_replay_speed():
    m = EventClockMap()
    assert m.latency_ms(5_000_000, 0) is None  # nothing observed yet
    m.observe(1_000_000, 10_000)  # host ns, event ns
    assert m.speed() == 1.0 and m.to_host_ns(12_000) == 1_002_000
    m.observe(1_200_000, 110_000)  # 200 us of host time for 100 us of events: rate 0.5x
    assert m.speed() == 2.0
    assert m.to_host_ns(60_000) == 1_100_000  # anchored at the newest packet
    # exposure ended at event time 110 us = host 1.2 ms; published at host 4.2 ms: 3 ms
    assert m.latency_ms(4_200_000, 110_000) == 3.0


def test_a_late_packet_does_not_move_the_anchor():
    m = EventClockMap()
    m.observe(1_000, 100)
    m.observe(2_000, 200)
    m.observe(9_000, 150)  # reordered, older events arriving late
    assert m.to_host_ns(200) == 2_000 and m.speed() == 10.0
