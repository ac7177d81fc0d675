"""Serving: a live model that follows an alias and hot-swaps versions (``live_model``), the
ASGI app that answers predictions, health and Prometheus metrics (``app``, ``metrics``), and
``serve`` to run it with uvicorn (``server``). Nothing here is imported by ``import loopwise``.
"""
