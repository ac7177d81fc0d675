"""Project scaffold: the files ``loopwise init NAME`` writes (layout, settings, policy,
monitor, CI workflow, Makefile, a sample dataset and a training pipeline with its tests).
A kit of templates that knows no store; :mod:`.project` fills and writes them.
"""
