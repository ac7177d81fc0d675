"""Data: versioned datasets, profiles, schemas, validation, drift and quality reports.

Public names (re-exported by ``loopwise``): ``log_dataset``, ``load_dataset``,
``get_dataset_version``, ``list_datasets``, ``profile``, ``infer_schema``, ``Schema``,
``validate``, ``impute``, ``detect_drift``, ``detect_skew``, ``data_quality``. Every
kernel works on a Polars frame (:mod:`.frames` converts the input) in vectorised passes.
"""
