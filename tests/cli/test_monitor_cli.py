"""``loopwise monitor run|watch`` through CliRunner, on SQLite and PostgreSQL: a table or JSON
of the windows on success; ``Error: ...`` and exit code 1 (never a traceback) on bad input."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import polars as pl
import pytest
from typer.testing import Result

from loopwise.clock import use_clock
from tests import helpers
from tests.helpers import MONITOR_T0, RANGE

T0 = MONITOR_T0
logged = helpers.logged  # the fixture, for the tests below
Invoke = Callable[..., Result]


def test_run_prints_a_table_of_the_windows(invoke, logged, tmp_path):
    config = tmp_path / "monitor.yaml"
    config.write_text("endpoint: ep\nreference: datasets:/ref/1\n")
    result = invoke("monitor", "run", str(config), *RANGE)
    assert result.exit_code == 0, result.output
    out = result.stdout
    assert "Monitor ep (endpoint ep)" in out
    for column in ("window (UTC)", "rows", "labelled", "drift share", "drifted", "f1", "p95 ms"):
        assert column in out
    lines = [line for line in out.splitlines() if line.startswith("2024-05-01")]
    assert [line.split()[1] for line in lines] == ["00:00", "01:00", "02:00"]
    assert "x" in lines[2].split()
    assert "x" not in lines[0].split()
    assert "3 result(s) stored" in result.stderr


def test_run_json_and_window_override(invoke, logged):
    result = invoke("monitor", "run", "--config", _yaml(invoke), *RANGE, "--json")
    assert result.exit_code == 0, result.output
    document = json.loads(result.stdout)
    assert document["alerts"] == []  # the config has no alert rules
    data = document["windows"]
    assert [d["start"] for d in data] == [(T0 + timedelta(hours=h)).isoformat() for h in range(3)]
    assert data[0]["rows"] == 1500
    assert data[0]["labelled"] == 1500
    values = {(v["slice"], v["metric"]): v["value"] for v in data[2]["values"]}
    assert values[("", "drifted.x")] == 1.0
    assert values[("", "perf.accuracy")] == 1.0
    wide = invoke("monitor", "run", "ep", *RANGE, "--window", "3h", "--json")
    assert wide.exit_code == 0, wide.output
    assert [d["rows"] for d in json.loads(wide.stdout)["windows"]] == [4500]
    counted = invoke("monitor", "run", "ep", *RANGE, "--window", "2000", "--json")
    assert [d["rows"] for d in json.loads(counted.stdout)["windows"]] == [2000, 2000]


def _yaml(invoke) -> str:
    path = Path("ep-monitor.yaml")  # the lw fixture runs in tmp_path
    path.write_text("endpoint: ep\nreference: datasets:/ref/1\nchecks: {schema: false}\n")
    return str(path.resolve())


def test_relative_times_and_an_empty_range(invoke, logged):
    # Half past an hour: within a minute after the hour, "-1m" does reach a closed window.
    hour = datetime.now(UTC).replace(minute=0, second=0, microsecond=0)
    half_past = int((hour - timedelta(minutes=30)).timestamp() * 1_000_000)
    with use_clock(lambda: half_past):
        result = invoke("monitor", "run", "ep", "--start", "-2h", "--json")
        assert result.exit_code == 0, result.output
        assert all(
            d["rows"] == 0 for d in json.loads(result.stdout)["windows"]
        )  # nothing logged lately
        empty = invoke("monitor", "run", "ep", "--start", "-1m")
    assert empty.exit_code == 0
    assert "No closed window" in empty.stderr


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("monitor", "run", "nope", *RANGE), "endpoint 'nope' has no prediction log"),
        (("monitor", "run", "ep", "--start", "yesterday"), "--start must be an ISO 8601 time"),
        (("monitor", "run", "ep", "--start", "2024-05-01T00:00:00"), "has no time zone"),
        (("monitor", "run", "ep", *RANGE, "--window", "1 week"), "window: must be a duration"),
        (("monitor", "run", *RANGE), "name an endpoint"),
        (("monitor", "run", "ep", "--config", "x.yaml", *RANGE), "not both"),
        (("monitor", "run", "missing.yaml", *RANGE), "does not exist"),
        (("monitor", "watch", "ep", "--start", "soon"), "--start must be an ISO 8601 time"),
    ],
)
def test_errors_exit_1_with_a_message(invoke, logged, args, message):
    result = invoke(*args)
    assert result.exit_code == 1, result.output
    assert result.stderr.startswith("Error: ")
    assert message in result.stderr
    assert "Traceback" not in result.output


def test_a_malformed_config_names_the_key(invoke, logged, tmp_path):
    config = tmp_path / "bad.yaml"
    config.write_text("endpoint: ep\nwindw: 1h\n")
    result = invoke("monitor", "run", str(config), *RANGE)
    assert result.exit_code == 1
    assert "windw: unknown key 'windw' — did you mean 'window'?" in result.stderr


def test_watch_prints_closed_windows_until_interrupted(invoke, logged, monkeypatch):
    from loopwise.monitoring.engine import runner as engine

    real = engine.watch_monitor

    def once_then_interrupt(*args, **kwargs):
        kwargs["clock"] = lambda: T0 + timedelta(hours=3, minutes=1)
        real(*args, **kwargs, max_ticks=1)
        raise KeyboardInterrupt

    monkeypatch.setattr(engine, "watch_monitor", once_then_interrupt)
    result = invoke("monitor", "watch", "ep", "--interval", "1", "--json")
    assert result.exit_code == 0, result.output
    lines = [json.loads(line) for line in result.stdout.splitlines()]
    assert [d["start"] for d in lines] == [(T0 + timedelta(hours=2)).isoformat()]
    assert "Watching monitor 'ep'" in result.stderr
    assert "Stopped." in result.stderr


def test_watch_takes_start_and_its_hidden_former_name_since(invoke, logged, monkeypatch):
    from loopwise.monitoring.engine import runner as engine

    seen = []

    def record(*args, **kwargs):
        seen.append(kwargs["start"])
        raise KeyboardInterrupt

    monkeypatch.setattr(engine, "watch_monitor", record)
    at = "2024-05-01T01:00:00+00:00"
    new = invoke("monitor", "watch", "ep", "--start", at)
    assert new.exit_code == 0, new.output
    assert "deprecated" not in new.stderr
    old = invoke("monitor", "watch", "ep", "--since", at)
    assert old.exit_code == 0, old.output
    assert "--since is deprecated; use --start." in old.stderr
    assert seen == [T0 + timedelta(hours=1)] * 2
    both = invoke("monitor", "watch", "ep", "--start", at, "--since", at)
    assert both.exit_code == 1
    assert "Give --start or its deprecated name --since, not both" in both.stderr
    bad = invoke("monitor", "watch", "ep", "--since", "soon")  # the error names the option used
    assert "--since must be an ISO 8601 time" in bad.stderr
    assert "--since" not in invoke("monitor", "watch", "--help").stdout


def test_alert_rules_fire_once_and_are_listed(invoke, logged, tmp_path):
    config = tmp_path / "alerting.yaml"
    config.write_text(
        "endpoint: ep\nreference: datasets:/ref/1\nchecks: {schema: false}\n"
        "alerts:\n  - {name: x-drifted, metric: drifted.x, above: 0.5}\n"
    )
    first = invoke("monitor", "run", str(config), *RANGE)
    assert first.exit_code == 0, first.output
    assert "alert fired" in first.stdout
    assert "drifted.x" in first.stdout
    again = invoke("monitor", "run", str(config), *RANGE, "--json")  # the same windows
    assert json.loads(again.stdout)["alerts"] == []  # firing already: not repeated
    listed = invoke("monitor", "alerts", "ep", "--json")
    assert listed.exit_code == 0, listed.output
    alerts = json.loads(listed.stdout)
    assert [(a["rule"], a["state"]) for a in alerts] == [("x-drifted", "firing")]
    assert alerts[0]["window_start"].startswith("2024-05-01T02:00")
    import loopwise

    assert [a.rule for a in loopwise.list_alerts(endpoint="ep", state="firing")] == ["x-drifted"]
    table = invoke("monitor", "alerts", "--state", "firing")
    assert "x-drifted" in table.stdout
    bad = invoke("monitor", "alerts", "--state", "burning")
    assert bad.exit_code == 1
    assert "firing" in bad.stderr
    typo = tmp_path / "typo.yaml"
    typo.write_text("endpoint: ep\nalerts:\n  - {name: a, metric: drift.share, abov: 1}\n")
    refused = invoke("monitor", "run", str(typo), *RANGE)
    assert refused.exit_code == 1
    assert "alerts[0]" in refused.stderr
    # the rule taken out of the config: its alert is resolved by the next run, once
    quiet = tmp_path / "quiet.yaml"
    quiet.write_text("endpoint: ep\nreference: datasets:/ref/1\nchecks: {schema: false}\n")
    removed = invoke("monitor", "run", str(quiet), *RANGE, "--json")
    assert removed.exit_code == 0, removed.output
    (event,) = json.loads(removed.stdout)["alerts"]
    assert (event["kind"], event["rule"], event["state"]) == ("resolved", "x-drifted", "resolved")
    assert "no longer in the config" in event["text"]
    assert json.loads(invoke("monitor", "run", str(quiet), *RANGE, "--json").stdout)["alerts"] == []
    assert loopwise.list_alerts(endpoint="ep", state="firing") == []


def test_alerts_show_the_value_that_fired_and_the_latest_labelled(invoke, logged, tmp_path):
    config = tmp_path / "slow.yaml"
    config.write_text(
        "endpoint: ep\nreference: datasets:/ref/1\nchecks: {schema: false}\n"
        "alerts:\n  - {name: slow, metric: latency_p95_ms, above: 1}\n"
    )
    assert invoke("monitor", "run", str(config), *RANGE).exit_code == 0
    import loopwise
    from loopwise.cli.render import number

    (alert,) = loopwise.list_alerts(endpoint="ep")
    assert alert.fired_value != alert.value  # fired in the first window, held in two more
    listed = invoke("monitor", "alerts", "ep")
    assert listed.exit_code == 0, listed.output
    header = next(line for line in listed.stdout.splitlines() if "fired value" in line)
    assert "latest value" in header
    row = next(line for line in listed.stdout.splitlines() if "slow" in line)
    fired, latest = number(alert.fired_value, 4), number(alert.value, 4)
    assert row.index(fired) < row.index(latest)  # in their columns, before the message
    assert f"rose to {fired}," in row
    assert "fired value: the figure that fired the alert" in listed.stderr
    document = json.loads(invoke("monitor", "alerts", "ep", "--json").stdout)
    assert [(a["fired_value"], a["value"]) for a in document] == [(alert.fired_value, alert.value)]


def test_feedback_in_other_labels_is_reported_not_fatal(invoke, lw, logged):
    other = logged.with_columns(pl.col("request_id").str.replace("r", "t"))
    lw.log_predictions("ep2", other, model="m/1")
    yes_no = pl.when(pl.col("prediction") == 1).then(pl.lit("Yes")).otherwise(pl.lit("No"))
    lw.log_feedback("ep2", other.select("request_id", label=yes_no))
    result = invoke("monitor", "run", "ep2", *RANGE)
    assert result.exit_code == 0, result.output
    assert "Problem in 3 window(s) of m/1: feedback labels {'No', 'Yes'} are not the labels" in (
        " ".join(result.stdout.split())
    )
    document = json.loads(invoke("monitor", "run", "ep2", *RANGE, "--json").stdout)
    assert [len(w["problems"]) for w in document["windows"]] == [1, 1, 1]
    assert all(v["metric"] != "perf.accuracy" for v in document["windows"][0]["values"])
    report = invoke("monitor", "report", "ep2")
    assert report.exit_code == 0, report.output
    assert "Problem in 3 window(s) of m/1" in report.stdout
