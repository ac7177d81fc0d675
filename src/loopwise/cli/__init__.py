"""The ``loopwise`` command line: a thin Typer + Rich layer over the service functions.

Entry point: :data:`loopwise.cli.main.app`. Each sub-command group lives in its own small
module (``experiments``, ``runs``, ``db``); shared output helpers are in ``render``.
"""
