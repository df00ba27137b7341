"""ROS-free core: events, wire layout, voxel grids (numpy only; never imports rclpy)."""
