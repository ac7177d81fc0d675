"""Data drift and training-serving skew: per-column tests between two frames, and the
HTML page of a drift report."""
