"""Test setup: DDS stays on this machine, and each test session gets its own domain."""

import os

# Must be set before anything imports rclpy (Fast DDS reads them at participant creation).
os.environ["ROS_AUTOMATIC_DISCOVERY_RANGE"] = "LOCALHOST"
os.environ.setdefault("ROS_DOMAIN_ID", str(100 + os.getpid() % 100))
