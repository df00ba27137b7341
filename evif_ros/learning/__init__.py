"""Learning: the EVIF networks, training data, losses, training and TorchScript export.
Nothing here is imported by the runtime or the ROS layer."""
