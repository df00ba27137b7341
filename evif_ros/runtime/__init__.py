"""The ROS-free runtime: events, voxel grids, the exposure synchronizer and its front
end, calibration, message conversions, the model file and its runner. Imports neither
rclpy nor the simulator nor the training code (.importlinter)."""
