"""Evaluation: score a model on labelled data overall, per slice and against a baseline.

Public names: ``evaluate`` and ``Evaluation`` (in :mod:`.evaluate`); every slice is scored
in one vectorised pass by the kernels of :mod:`.metrics` over codes from :mod:`.slicing`.
"""
