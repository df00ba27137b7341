"""The ROS 2 layer: thin rclpy nodes (one per file), the graph definition, bags."""
