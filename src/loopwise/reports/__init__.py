"""One page kit for every HTML report: Jinja2 templates (autoescaped) and SVG charts.

Every report is one self-contained file (styles and charts inline, no script, no network
fetch), readable offline and attachable to a ticket. :mod:`~loopwise.reports.page` renders
a page template into the shared layout and writes the file; :mod:`~loopwise.reports.charts`
draws every chart; ``templates/`` holds all the markup, one page template per report. The kit
knows no domain: each result type (drift, data quality, validation, evaluation, monitor
report) gathers what its page shows in its own package and renders its template here.
"""
