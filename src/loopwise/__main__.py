"""``python -m loopwise``: the same as the ``loopwise`` command."""

from loopwise.cli.main import app

app(prog_name="loopwise")
