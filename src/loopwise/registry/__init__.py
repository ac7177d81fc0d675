"""Models: packaging (flavors, signatures), the registry with aliases and their history,
promotion gates, and lineage queries from a version back to its run and data.

Public names (re-exported by ``loopwise``): ``log_model``, ``load_model``,
``get_model_version``, ``set_alias``, ``version_at``, ``rollback``, ``model_lineage``.
"""
