"""Settings come from arguments, environment, loopwise.toml and defaults, in that order."""

from __future__ import annotations

import pytest

from loopwise.config import DEFAULT_STORE_URL, load_settings
from loopwise.errors import ConfigurationError


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch, tmp_path):
    for name in ("LOOPWISE_STORE_URL", "LOOPWISE_ARTIFACTS_URL", "LOOPWISE_CONFIG"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.chdir(tmp_path)


def test_defaults():
    settings = load_settings()
    assert settings.store_url == DEFAULT_STORE_URL
    assert settings.artifacts_url == "./.loopwise/artifacts"
    assert settings.key_rule == "printable"


def test_precedence(monkeypatch, tmp_path):
    (tmp_path / "loopwise.toml").write_text(
        'store_url = "sqlite:///from-file.db"\nflush_interval = 2.5\nkey_rule = "any"\n'
    )
    assert load_settings().store_url == "sqlite:///from-file.db"
    assert load_settings().flush_interval == 2.5
    monkeypatch.setenv("LOOPWISE_STORE_URL", "sqlite:///from-env.db")
    assert load_settings().store_url == "sqlite:///from-env.db"
    assert load_settings(store_url="sqlite:///arg.db").store_url == "sqlite:///arg.db"
    assert load_settings().key_rule == "any"


def test_loopwise_table_and_explicit_file(monkeypatch, tmp_path):
    path = tmp_path / "conf" / "settings.toml"
    path.parent.mkdir()
    path.write_text('[loopwise]\nartifacts_url = "s3://bucket/x"\ns3_endpoint_url = "http://h"\n')
    monkeypatch.setenv("LOOPWISE_CONFIG", str(path))
    settings = load_settings()
    assert settings.artifacts_url == "s3://bucket/x"
    assert settings.storage_options()["endpoint_url"] == "http://h"


def test_typo_in_file_is_an_error(tmp_path):
    (tmp_path / "loopwise.toml").write_text('store_ulr = "sqlite:///x.db"\n')
    with pytest.raises(ConfigurationError, match=r"Unknown setting 'store_ulr'.*'store_url'"):
        load_settings()


def test_bad_values_are_errors(monkeypatch, tmp_path):
    monkeypatch.setenv("LOOPWISE_FLUSH_INTERVAL", "soon")
    with pytest.raises(ConfigurationError, match=r"LOOPWISE_FLUSH_INTERVAL.*float"):
        load_settings()
    monkeypatch.setenv("LOOPWISE_FLUSH_INTERVAL", "-1")
    with pytest.raises(ConfigurationError, match="greater than 0"):
        load_settings()
    monkeypatch.delenv("LOOPWISE_FLUSH_INTERVAL")
    (tmp_path / "loopwise.toml").write_text("store_url = [1\n")
    with pytest.raises(ConfigurationError, match="not valid TOML"):
        load_settings()
    monkeypatch.setenv("LOOPWISE_CONFIG", str(tmp_path / "nope.toml"))
    with pytest.raises(ConfigurationError, match="LOOPWISE_CONFIG names"):
        load_settings()


def test_unknown_configure_argument():
    with pytest.raises(ConfigurationError, match=r"Did you mean 'store_url'"):
        load_settings(store_uri="x")


def test_custom_key_rule_applies(lw, monkeypatch):
    from loopwise import context

    lw.configure(store_url=context.get_store().settings.store_url, key_rule="any")
    with lw.start_run(experiment="rules"):
        lw.log_metric("Val Loss (avg)", 1.0)
    lw.configure(store_url=context.get_store().settings.store_url, key_rule=r"[a-z]+")
    with lw.start_run(experiment="rules"), pytest.raises(lw.InvalidInput, match=r"\[a-z\]\+"):
        lw.log_metric("val_loss", 1.0)


def test_a_sqlite_store_under_a_file_is_a_configuration_error(tmp_path):
    import loopwise
    from loopwise import context

    blocker = tmp_path / "notes.txt"
    blocker.write_text("a file where a folder would go")
    for url in (f"sqlite:///{blocker}/loopwise.db", f"sqlite:///{blocker}/deeper/loopwise.db"):
        try:
            with pytest.raises(ConfigurationError, match=r"notes.txt is a file, not a folder"):
                loopwise.configure(store_url=url, artifacts_url=str(tmp_path / "artifacts"))
        finally:
            context.reset()
    assert blocker.read_text() == "a file where a folder would go"
