"""Real event-camera recordings with APS frames: reading them and scoring a reconstruction
against their frames (``evif eval-real``)."""
