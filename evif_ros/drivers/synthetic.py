"""The synthetic rig's cameras as driver sources: the one place where the runtime and ROS
layers reach the simulator (.importlinter allows this module alone to import
:mod:`evif_ros.sim.rig`). Drivers import it only when the synthetic source is asked for,
so a live rig never loads the simulator.

Both sources take the driver's parameters (``scenario``, ``seed``, ``aligned``, ...) as a
dict; the same parameters give the same scene on both sides.
"""

from __future__ import annotations

from typing import Iterator

from evif_ros.drivers.davis_sources import DavisBatch, ImuReading, Pacer
from evif_ros.drivers.ir_sources import IrImage
from evif_ros.sim.rig import ApsFrame, EventChunk, ImuSample, Rig, Trigger, synthetic_rig_config


class SyntheticDavisSource:
    """The DAVIS346 of the synthetic rig (see :mod:`evif_ros.sim.rig`)."""

    def __init__(self, params: dict, duration_s: float, rate: float = 0.0):
        config = synthetic_rig_config(params)
        self.rig = Rig(config)
        self.duration_s, self.rate = duration_s, rate
        self.width, self.height = config.dvs.width, config.dvs.height

    def __iter__(self) -> Iterator[DavisBatch]:
        pacer = Pacer(self.rate)
        for rec in self.rig.run(self.duration_s):
            if isinstance(rec, EventChunk):
                pacer.wait(int(rec.events["t"][-1]))
                yield DavisBatch(rec.events)
            elif isinstance(rec, Trigger):
                yield DavisBatch(triggers=[rec.t_ns])
            elif isinstance(rec, ApsFrame):
                yield DavisBatch(frames=[(rec.t_ns + rec.exposure_ns // 2, rec.image)])
            elif isinstance(rec, ImuSample):
                yield DavisBatch(imu=[ImuReading(rec.t_ns, rec.gyro, rec.accel)])


class SyntheticIrSource:
    """The thermal camera of the synthetic rig: same seed, same frames as the DAVIS side."""

    def __init__(self, params: dict, duration_s: float):
        self.rig = Rig(synthetic_rig_config(params))
        self.duration_s = duration_s

    def __iter__(self) -> Iterator[IrImage]:
        for frame in self.rig.ir_frames(self.duration_s):
            yield IrImage(frame.host_ns, frame.counts)
