"""What ``serve`` writes, piece by piece: the log level rule, the log format, the banner, the
access log on both routes, and a store outage reported once (end to end, with the real
CLI process: tests/cli/test_cli_serve.py)."""

from __future__ import annotations

import logging
import re

import httpx
import pytest

from loopwise.errors import InvalidInput, StoreUnavailable
from loopwise.serving.endpoint import FlagState
from loopwise.serving.endpoint_config import EndpointConfig
from loopwise.serving.live_model import LiveModel
from loopwise.serving.server_output import UTCFormatter, banner, check_log_level, log_config

AB = {
    "name": "credit-risk",
    "variants": [
        {"name": "control", "model": "models:/credit-risk@champion", "weight": 90},
        {"name": "treatment", "model": "models:/credit-risk@challenger", "weight": 10},
    ],
    "shadows": [{"name": "candidate", "model": "models:/credit-risk/7"}],
    "fallback": 0,
}
ABOUT = {
    "version": "9.9.9",
    "store": "postgresql://lw:***@db/lw",
    "address": "http://127.0.0.1:8000",
    "docs_url": "http://127.0.0.1:8000/docs",
}


def test_log_level_must_be_a_known_level():
    assert check_log_level("WARNING") == "warning"
    with pytest.raises(InvalidInput) as e:
        check_log_level("loud")
    assert str(e.value) == (
        "The 'log_level' parameter of serve must be one of 'debug', 'info', 'warning', "
        "'error'. Got 'loud' instead."
    )


@pytest.mark.parametrize(
    ("level", "uvicorn"),
    [("debug", "DEBUG"), ("info", "WARNING"), ("warning", "WARNING"), ("error", "ERROR")],
)
def test_uvicorns_info_lines_show_at_debug_only(level, uvicorn):
    loggers = log_config(level)["loggers"]
    assert loggers["loopwise"]["level"] == level.upper()
    assert loggers["uvicorn"]["level"] == loggers["uvicorn.error"]["level"] == uvicorn
    assert loggers["uvicorn.access"]["handlers"] == []


def test_lines_are_utc_and_name_the_process_with_workers():
    record = logging.LogRecord("loopwise.serve", logging.INFO, __file__, 1, "hello", None, None)
    record.created, record.msecs = 0.25, 250.0  # 1970-01-01 00:00:00.250 UTC
    lines = []
    for workers in (1, 2):
        formatter = log_config("info", workers=workers)["formatters"]["loopwise"]
        lines.append(UTCFormatter(fmt=formatter["fmt"]).format(record))
    assert lines[0] == "1970-01-01T00:00:00.250Z INFO    hello"
    assert lines[1] == f"1970-01-01T00:00:00.250Z INFO    [pid {record.process}] hello"


def test_banner_names_every_variant_shadow_and_the_address():
    config = EndpointConfig.from_dict(AB)
    labels = {"models:/credit-risk@champion": "credit-risk/3", "models:/credit-risk/7": None}
    lines = banner(config, labels=labels, workers=4, docs_needs_token=True, **ABOUT)
    assert lines == [
        "loopwise 9.9.9: endpoint 'credit-risk' from store postgresql://lw:***@db/lw",
        "credit-risk: variant control serves models:/credit-risk@champion = credit-risk/3 "
        "(weight 90)",
        "credit-risk: variant treatment serves models:/credit-risk@challenger (not loaded yet) "
        "(weight 10)",
        "credit-risk: shadow candidate mirrors models:/credit-risk/7 (not loaded yet)",
        "credit-risk: listening on http://127.0.0.1:8000 with 4 worker processes",
        "credit-risk: API docs at http://127.0.0.1:8000/docs (with a read token)",
    ]


def test_banner_says_when_the_fallback_answers():
    off = FlagState(enabled=False, reason="incident 42")
    config = EndpointConfig.from_dict(AB)
    lines = banner(config, labels={}, flag=off, access_log=True, **ABOUT | {"docs_url": None})
    flag_line = (
        "credit-risk: the model flag is off (incident 42): every answer is the fallback 0 "
        "until it is turned on"
    )
    assert flag_line in lines
    assert lines[-2:] == [
        "credit-risk: API docs off",
        "credit-risk: access log on: one line per request",
    ]
    skeleton = banner(EndpointConfig.skeleton(0.5), labels={}, **ABOUT)
    assert "skeleton: no model; every answer is the fallback 0.5" in skeleton


def test_access_log_sees_the_direct_route_and_the_routed_ones(lw, caplog):
    from loopwise.serving.access_log import AccessLog
    from loopwise.serving.app import create_app
    from loopwise.serving.server import ServerThread, build_endpoint
    from tests.helpers import register_credit_risk, training_data

    register_credit_risk(lw)
    rows = training_data()[0][:2].to_dict("records")
    config = EndpointConfig.single("models:/credit-risk@champion")
    endpoint = build_endpoint(config, lw.get_store(), access_log=True).start()
    caplog.set_level(logging.INFO, logger="loopwise.access")
    try:
        app = create_app(endpoint)
        assert not app.user_middleware  # so POST /predict takes the direct route
        with ServerThread(AccessLog(app)) as server, httpx.Client(base_url=server.url) as c:
            assert c.post("/predict", json={"inputs": rows}).status_code == 200
            assert c.get("/health").status_code == 200
    finally:
        endpoint.stop()
    lines = [r.getMessage() for r in caplog.records if r.name == "loopwise.access"]
    assert len(lines) == 2
    assert re.fullmatch(r"POST /predict 200 \d+\.\d\d ms default credit-risk/\d+", lines[0])
    assert re.fullmatch(r"GET /health 200 \d+\.\d\d ms", lines[1])


def test_a_store_outage_is_one_warning_not_one_per_poll(lw, caplog, monkeypatch):
    from tests.helpers import register_credit_risk

    register_credit_risk(lw)
    live = LiveModel("models:/credit-risk@champion", store=lw.get_store(), poll_interval=60)
    live.log_name = "credit-risk: default"
    live.start()
    caplog.set_level(logging.INFO, logger="loopwise.serving.live_model")
    try:
        import loopwise.serving.live_model as live_model

        def down(*args):
            raise StoreUnavailable("Cannot connect to the metadata store.")

        with monkeypatch.context() as patched:
            patched.setattr(live_model, "version_id", down)
            assert [live.check() for _ in range(3)] == [False] * 3
        assert live.check() is False
    finally:
        live.stop()
    lines = [(r.levelname, r.getMessage()) for r in caplog.records if r.name == live_model.__name__]
    assert lines == [
        (
            "WARNING",
            "credit-risk: default cannot resolve models:/credit-risk@champion: "
            "StoreUnavailable: Cannot connect to the metadata store.",
        ),
        ("INFO", "credit-risk: default resolves models:/credit-risk@champion again"),
    ]
