"""Registry mechanics on both databases: versions, aliases, history, version_at, rollback."""

from __future__ import annotations

import itertools
import json
import multiprocessing as mp
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from loopwise.errors import Conflict, InvalidInput, InvalidReference, NotFound
from loopwise.registry import models as registry


def fake_package(tmp_path: Path, content: bytes = b"weights") -> tuple[Path, dict]:
    """A minimal package directory: one model file and a manifest."""
    root = tmp_path / f"pkg-{time.time_ns()}"
    (root / "model").mkdir(parents=True)
    (root / "model" / "model.bin").write_bytes(content)
    manifest = {
        "format_version": 1,
        "flavor": "pyfunc",
        "files": [{"path": "model/model.bin", "size": len(content), "sha256": "x"}],
        "signature": {"inputs": [{"name": "x", "type": "float"}], "outputs": []},
    }
    (root / "loopwise_model.json").write_text(json.dumps(manifest))
    return root, manifest


def register(store, tmp_path, name="credit-risk", content=b"weights", **kw):
    root, manifest = fake_package(tmp_path, content)
    return registry.register_version(store, name, root, manifest, **kw)


def test_versions_are_numbered_per_model(store, tmp_path):
    v1 = register(store, tmp_path)
    v2 = register(store, tmp_path, content=b"other")
    other = register(store, tmp_path, name="fraud")
    assert (v1.version, v2.version, other.version) == (1, 2, 1)
    assert v1.uri == "models:/credit-risk/1"
    got = registry.get_model_version(store, "models:/credit-risk/2")
    assert got.id == v2.id
    assert got.flavor == "pyfunc"
    assert got.signature["inputs"][0]["name"] == "x"
    assert registry.get_model_version(store, "models:/credit-risk@latest").version == 2
    assert [v.version for v in registry.list_versions(store, "credit-risk")] == [1, 2]
    summary = {m.name: m.versions for m in registry.list_models(store)}
    assert summary == {"credit-risk": 2, "fraud": 1}
    files = registry.package_files(store, v1.id)
    assert [p for p, _ in files] == ["loopwise_model.json", "model/model.bin"]


def test_model_and_version_descriptions_can_be_set(store, tmp_path):
    register(store, tmp_path)
    model = registry.update_model(store, "credit-risk", description="Scores loan applications.")
    assert model.description == "Scores loan applications."
    assert registry.list_models(store)[0].description == "Scores loan applications."
    assert registry.update_model(store, "credit-risk", description=None).description is None
    version = registry.update_version(
        store, "models:/credit-risk/1", description="baseline", tags={"team": "risk"}
    )
    assert (version.description, version.tags) == ("baseline", {"team": "risk"})
    with pytest.raises(NotFound, match="fraud"):
        registry.update_model(store, "fraud", description="x")
    with pytest.raises(InvalidInput, match="description"):
        registry.update_model(store, "credit-risk", description=3)


def test_models_and_versions_take_tags_merged_and_deleted(store, tmp_path):
    register(store, tmp_path)
    model = registry.get_model(store, "credit-risk")
    assert (model.tags, model.updated_at) == ({}, None)
    model = registry.update_model(store, "credit-risk", tags={"team": "risk", "tier": 1})
    assert model.tags == {"team": "risk", "tier": "1"}
    assert model.updated_at is not None
    assert model.updated_at >= model.created_at
    # a tag change leaves the description as it is; None still clears it
    registry.update_model(store, "credit-risk", description="Scores loans.")
    model = registry.update_model(store, "credit-risk", tags={"tier": 2}, delete_tags=["team"])
    assert (model.tags, model.description) == ({"tier": "2"}, "Scores loans.")
    assert registry.list_models(store)[0].tags == {"tier": "2"}
    # deleting a key that is not there changes nothing and is no error
    assert registry.update_model(store, "credit-risk", delete_tags=["absent"]).tags == {"tier": "2"}

    version = registry.update_version(store, "models:/credit-risk/1", tags={"a": "1", "b": "2"})
    assert version.updated_at is not None
    version = registry.update_version(
        store, "models:/credit-risk/1", tags={"c": 3}, delete_tags=["a"]
    )
    assert (version.tags, version.description) == ({"b": "2", "c": "3"}, None)
    assert registry.get_model_version(store, "models:/credit-risk@latest").tags == version.tags


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"tags": {"": "x"}}, "1 to 250"),
        ({"tags": {"k" * 251: "x"}}, "1 to 250"),
        ({"tags": {"k": "x" * 10_001}}, "10,000"),
        ({"tags": {"k": "a\x00b"}}, "NUL"),
        ({"tags": {"k": None}}, "delete_tags"),
        ({"tags": {"k": {"nested": 1}}}, "text value"),
        ({"tags": ["k"]}, "dict of key"),
        ({"tags": {i: "x" for i in range(3)}}, "Tag key"),
        ({"tags": {f"k{i}": "x" for i in range(1001)}}, "at most 1,000"),
        ({"delete_tags": "team"}, "list of tag keys"),
        ({"delete_tags": [3]}, "list of tag keys"),
    ],
)
def test_tag_mistakes_name_the_tag_and_change_nothing(store, tmp_path, changes, message):
    register(store, tmp_path)
    registry.update_model(store, "credit-risk", tags={"team": "risk"})
    with pytest.raises(InvalidInput, match=message):
        registry.update_model(store, "credit-risk", **changes)
    with pytest.raises(InvalidInput, match=message):
        registry.update_version(store, "models:/credit-risk/1", **changes)
    assert registry.get_model(store, "credit-risk").tags == {"team": "risk"}
    assert registry.get_model_version(store, "models:/credit-risk/1").tags == {}


def test_a_model_holds_at_most_a_thousand_tags(store, tmp_path):
    register(store, tmp_path)
    registry.update_model(store, "credit-risk", tags={"team": "risk"})
    with pytest.raises(InvalidInput, match="would have 1,001 tags"):
        registry.update_model(store, "credit-risk", tags={f"k{i}": "x" for i in range(1000)})
    assert registry.create_model(store, "fraud", tags={f"k{i}": "x" for i in range(1000)})
    with pytest.raises(InvalidInput, match="at most 1,000"):
        registry.create_model(store, "churn", tags={f"k{i}": "x" for i in range(1001)})
    assert registry.get_model(store, "churn") is None


def _tag_many(url: str, artifacts: str, prefix: str, count: int) -> None:
    from loopwise.config import load_settings
    from loopwise.store import Store

    store = Store(settings=load_settings(store_url=url, artifacts_url=artifacts))
    for i in range(count):
        registry.update_model(store, "credit-risk", tags={f"{prefix}{i}": str(i)})
        registry.update_version(store, "models:/credit-risk/1", tags={f"{prefix}{i}": str(i)})
    store.db.engine.dispose()


def test_concurrent_taggers_keep_every_tag(store, store_url, tmp_path):
    register(store, tmp_path)
    ctx = mp.get_context("spawn")
    artifacts = str(tmp_path / "artifacts")
    procs = [ctx.Process(target=_tag_many, args=(store_url, artifacts, p, 25)) for p in "ab"]
    for proc in procs:
        proc.start()
    for proc in procs:
        proc.join(120)
        assert proc.exitcode == 0
    expected = {f"{p}{i}": str(i) for p in "ab" for i in range(25)}
    assert registry.get_model(store, "credit-risk").tags == expected
    assert registry.get_model_version(store, "models:/credit-risk/1").tags == expected


def test_aliases_move_and_history_is_recorded(store, tmp_path):
    for i in range(3):
        register(store, tmp_path, content=bytes([i]))
    registry.set_alias(store, "credit-risk", "champion", 1, reason="first")
    registry.set_alias(store, "credit-risk", "champion", 2, reason="better auc")
    registry.set_alias(store, "credit-risk", "challenger", 3)
    champion = registry.get_model_version(store, "models:/credit-risk@champion")
    assert champion.version == 2
    assert champion.aliases == ["champion"]
    history = registry.alias_history(store, "credit-risk", "champion")
    assert [(h.from_version, h.to_version, h.reason) for h in history] == [
        (None, 1, "first"),
        (1, 2, "better auc"),
    ]
    assert history[0].moved_by
    assert {m.name: m.aliases for m in registry.list_models(store)} == {
        "credit-risk": {"champion": 2, "challenger": 3}
    }
    registry.delete_alias(store, "credit-risk", "challenger")
    with pytest.raises(NotFound, match="has no alias 'challenger'; its aliases: champion"):
        registry.get_model_version(store, "models:/credit-risk@challenger")


def test_version_at_boundaries(store, tmp_path):
    register(store, tmp_path)
    register(store, tmp_path, content=b"2")
    before = datetime.now(UTC) - timedelta(seconds=1)
    first = registry.set_alias(store, "credit-risk", "champion", 1)
    second = registry.set_alias(store, "credit-risk", "champion", 2)
    assert registry.version_at(store, "credit-risk", "champion", before) is None
    assert registry.version_at(store, "credit-risk", "champion", first.moved_at) == 1
    assert registry.version_at(store, "credit-risk", "champion", second.moved_at) == 2
    between = first.moved_at + (second.moved_at - first.moved_at) / 2
    if second.moved_at > first.moved_at:
        assert registry.version_at(store, "credit-risk", "champion", between) == 1
    assert registry.version_at(store, "credit-risk", "champion", datetime.now(UTC)) == 2


def test_rollback_walks_back_through_holders(store, tmp_path):
    for i in range(3):
        register(store, tmp_path, content=bytes([i]))
    for version in (1, 2, 3):
        registry.set_alias(store, "credit-risk", "champion", version)
    move = registry.rollback(store, "credit-risk", "champion")
    assert (move.from_version, move.to_version, move.kind) == (3, 2, "rollback")
    registry.rollback(store, "credit-risk", "champion")
    assert registry.get_model_version(store, "models:/credit-risk@champion").version == 1
    with pytest.raises(Conflict, match="no earlier holder"):
        registry.rollback(store, "credit-risk", "champion")


def test_registry_errors(store, tmp_path):
    with pytest.raises(InvalidInput, match="Model name 'Credit Risk'"):
        register(store, tmp_path, name="Credit Risk")
    register(store, tmp_path)
    with pytest.raises(InvalidInput, match="Alias 'Champion!'"):
        registry.set_alias(store, "credit-risk", "Champion!", 1)
    with pytest.raises(InvalidInput, match="reserved"):
        registry.set_alias(store, "credit-risk", "latest", 1)
    with pytest.raises(NotFound, match="has no version 7"):
        registry.set_alias(store, "credit-risk", "champion", 7)
    with pytest.raises(NotFound, match="No model named 'nope'"):
        registry.get_model_version(store, "models:/nope/1")
    with pytest.raises(InvalidReference):
        registry.get_model_version(store, "credit-risk")


def _promote(args: tuple[str, str, int, int]) -> int:
    from loopwise.config import load_settings
    from loopwise.store import Store

    url, artifacts, version, rounds = args
    store = Store(settings=load_settings(store_url=url, artifacts_url=artifacts))
    for _ in range(rounds):
        registry.set_alias(store, "credit-risk", "champion", version)
    return version


def test_concurrent_promotions_keep_history_consistent(store, store_url, tmp_path):
    for i in range(4):
        register(store, tmp_path, content=bytes([i]))
    ctx = mp.get_context("spawn")
    with ctx.Pool(4) as pool:
        pool.map(_promote, [(store_url, str(tmp_path / "artifacts"), v, 10) for v in (1, 2, 3, 4)])
    history = registry.alias_history(store, "credit-risk", "champion")
    assert len(history) == 40
    # Each move replaced exactly the version the previous move installed.
    for earlier, later in itertools.pairwise(history):
        assert later.from_version == earlier.to_version
    final = registry.get_model_version(store, "models:/credit-risk@champion").version
    assert final == history[-1].to_version
