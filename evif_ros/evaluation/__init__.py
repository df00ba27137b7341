"""Scoring: metrics, fusion baselines, test-split tables, bags, real recordings with APS
frames, stop-and-go recordings. May import every layer but the applications."""
