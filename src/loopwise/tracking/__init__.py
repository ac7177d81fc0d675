"""Experiment tracking: runs with params, metric series, tags, artifacts and environment.

Public names (re-exported by ``loopwise``): ``start_run``, ``end_run``, ``log_param(s)``,
``log_metric(s)``, ``set_tag(s)``, ``log_artifact``, ``log_dict``, ``log_text``, ``flush``,
``get_run``, ``get_metric_history``, ``search_runs``. Metric points go through a
background writer (:mod:`.writer`) so logging never waits on the database.
"""
