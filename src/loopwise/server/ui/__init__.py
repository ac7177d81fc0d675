"""The web UI at ``/``: server-rendered pages (Jinja2) over the tracking services, with
htmx for partial swaps and uPlot for metric charts, both vendored under ``static/``.

:mod:`.pages` holds the routes, :mod:`.session` the token cookie, :mod:`.assets` the
static files (served under a content hash with long cache headers), :mod:`.render` the
templates, :mod:`.runs_table` and :mod:`.previews` the data the pages show.
"""
