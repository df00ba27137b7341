"""evif_ros: event-based visible and infrared fusion (EVIF) for a DAVIS346 + thermal rig."""

__version__ = "0.1.0"
