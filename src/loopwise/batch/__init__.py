"""Batch scoring: a registered model over a dataset or files, in chunks, locally or on Ray."""
