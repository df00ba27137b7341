"""Thin rclpy nodes, one per file, each with ``main()``."""
