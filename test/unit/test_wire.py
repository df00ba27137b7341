from types import SimpleNamespace

import numpy as np
import pytest

from evif_ros.errors import LayoutError
from evif_ros.ros.nodes.common import rclpy_msgs
from evif_ros.runtime import wire
from evif_ros.runtime.events import make_events


def _ev(n=100, seed=0):
    rng = np.random.default_rng(seed)
    return make_events(rng.integers(0, 346, n), rng.integers(0, 260, n),
                       np.sort(rng.integers(5_000_000_000, 5_003_000_000, n)),
                       rng.integers(0, 2, n))


def test_roundtrip_preserves_every_field():
    ev = _ev()
    stamp, payload = wire.encode(ev)
    assert stamp == ev["t"][0] and payload.size == 9 * ev.size
    back = wire.decode(payload.tobytes(), stamp)
    np.testing.assert_array_equal(back, ev)


def test_byte_layout_matches_design():
    ev = make_events([0x0102], [0x0304], [7_000_000_123], [1])
    ev = np.concatenate([ev, make_events([1], [2], [7_000_000_123 + 0x05060708], [0])])
    stamp, payload = wire.encode(ev)
    rec = payload[9:18].tobytes()
    assert rec == bytes([1, 0, 2, 0, 0x08, 0x07, 0x06, 0x05, 0])
    assert payload[:9].tobytes() == bytes([2, 1, 4, 3, 0, 0, 0, 0, 1])
    assert stamp == 7_000_000_123


def test_view_is_zero_copy():
    _, payload = wire.encode(_ev())
    v = wire.view(payload)
    assert np.shares_memory(v, payload)
    assert v.dtype.itemsize == 9


def test_packet_spanning_more_than_uint32_is_rejected():
    ev = make_events([0, 0], [0, 0], [0, 2 ** 32], [1, 1])
    with pytest.raises(LayoutError, match="spans"):
        wire.encode(ev)


def _fields(spec):
    return [SimpleNamespace(name=n, offset=o, datatype=d, count=c) for n, o, d, c in spec]


def test_check_layout_accepts_design_layout():
    wire.check_layout(_fields(wire.WIRE_FIELDS), 9, 1, 10, False, 90)


@pytest.mark.parametrize("mutate, match", [
    (lambda f: f[:3], "fields"),
    (lambda f: [f[0], f[1], (f[2][0], 4, wire.FLOAT64, 1), f[3]], "t@4"),
    (lambda f: [("xx", 0, wire.UINT16, 1)] + f[1:], "fields"),
])
def test_check_layout_rejects_other_fields(mutate, match):
    spec = [tuple(f) for f in wire.WIRE_FIELDS]
    with pytest.raises(LayoutError, match=match):
        wire.check_layout(_fields(mutate(spec)), 9, 1, 10, False, 90, source="/davis/events")


@pytest.mark.parametrize("kw, match", [
    (dict(point_step=16), "point_step"), (dict(is_bigendian=True), "big"),
    (dict(data_len=89), "bytes"), (dict(height=2), "height")])
def test_check_layout_rejects_bad_geometry(kw, match):
    args = dict(point_step=9, height=1, width=10, is_bigendian=False, data_len=90)
    args.update(kw)
    with pytest.raises(LayoutError, match=match):
        wire.check_layout(_fields(wire.WIRE_FIELDS), args["point_step"], args["height"],
                          args["width"], args["is_bigendian"], args["data_len"])


def test_libcaer_roundtrip_and_invalid_events_dropped():
    ev = _ev(50)
    ev["t"] = ev["t"] // 1000 * 1000  # libcaer carries microseconds
    base = int(ev["t"][0])
    payload = wire.encode_libcaer(ev, base)
    np.testing.assert_array_equal(wire.decode_libcaer(payload, base), ev)
    rec = payload.copy().view(wire.LIBCAER_DTYPE)
    rec["data"][3] &= ~np.uint32(1)  # clear the valid bit
    assert wire.decode_libcaer(rec.view(np.uint8), base).size == 49


def test_libcaer_bit_layout():
    # x=5, y=7, polarity on, valid; ts=3 us
    word = (5 << 17) | (7 << 2) | (1 << 1) | 1
    payload = np.array([(word, 3)], dtype=wire.LIBCAER_DTYPE).view(np.uint8)
    ev = wire.decode_libcaer(payload, 1_000_000)
    got = (int(ev["x"][0]), int(ev["y"][0]), int(ev["p"][0]), int(ev["t"][0]))
    assert got == (5, 7, 1, 1_003_000)


@pytest.mark.parametrize("n,frame_id", [(0, ""), (1, "davis"), (7, "ab"), (10_000, "davis_link")])
def test_serialized_pointcloud2_is_what_the_ros_serializers_write(n, frame_id):
    """Byte for byte rosbags' CDR serializer (zero padding, as ours); through rclpy's own
    deserializer the same message as rclpy builds (rclpy leaves padding bytes undefined,
    so its bytes differ there only)."""
    from rclpy.serialization import deserialize_message
    from sensor_msgs.msg import PointCloud2

    from evif_ros.ros.bags import typestore
    from evif_ros.runtime.cdr import PointCloud2Encoder
    from evif_ros.runtime.msgs import MsgTypes, events_from_msg

    ev = _ev(n, seed=n)
    ev["t"] += 1_700_000_000_000_000_000  # a wall-clock stamp: seconds need 31 bits
    raw = PointCloud2Encoder(frame_id)(ev)
    store = typestore()
    ref = store.serialize_cdr(MsgTypes.from_typestore(store).events(ev, frame_id),
                              "sensor_msgs/msg/PointCloud2")
    assert raw == bytes(ref)
    msg = deserialize_message(raw, PointCloud2)
    built = rclpy_msgs().events(ev, frame_id)
    for field in ("height", "width", "fields", "is_bigendian", "point_step", "row_step",
                  "is_dense", "header"):
        assert getattr(msg, field) == getattr(built, field), field
    np.testing.assert_array_equal(events_from_msg(msg), ev)
