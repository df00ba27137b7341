"""Camera sources for the driver nodes (ROS-free): live devices, files, the synthetic rig."""
