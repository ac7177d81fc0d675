"""The remote client: the tracking API through a ``loopwise server`` instead of the store.

Set ``tracking_url`` (``LOOPWISE_TRACKING_URL``, ``loopwise.toml`` or
``lw.configure(tracking_url=...)``) and the module-level tracking functions call
:class:`~loopwise.client.tracking.RemoteTracking` (one keep-alive connection, errors mapped
back to the local classes, metric points sent in batches by a background thread). It
imports no server code: it speaks only the REST API of docs/server.md.
"""
