"""Version numbering and the store's locks and dialect expressions, on SQLite and PostgreSQL.

Why: "number the next version of a parent" must give distinct, consecutive numbers when
several writers add versions of one parent at the same moment, on both databases; the
helpers that make it so (row locks, advisory locks) must refuse to run where they would
hold nothing.
"""

from __future__ import annotations

import json
import threading
import time

import pytest
from sqlalchemy import literal, select

from loopwise.ids import new_id
from loopwise.store.expressions import json_field, number_in_text
from loopwise.store.locks import advisory_lock, lock_key, lock_rows
from loopwise.store.numbering import next_version
from loopwise.store.tables import (
    alerts,
    dataset_versions,
    datasets,
    model_versions,
    registered_models,
)

WRITERS = 6
VERSIONS_EACH = 3


def _add_model(store, name: str) -> str:
    model_id = new_id()
    with store.db.write() as conn:
        conn.execute(registered_models.insert().values(id=model_id, name=name, created_at=0))
    return model_id


def _add_model_version(store, model_id: str, pause: float) -> int:
    with store.db.write() as conn:
        number = next_version(conn, model_versions.c.version, model_versions.c.model_id, model_id)
        time.sleep(pause)  # widen the window a racing writer would need
        conn.execute(
            model_versions.insert().values(
                id=new_id(),
                model_id=model_id,
                version=number,
                flavor="python",
                manifest="{}",
                size=0,
                created_at=0,
            )
        )
    return number


def _run_writers(work) -> list[int]:
    """Run ``work()`` VERSIONS_EACH times in each of WRITERS threads started together."""
    start = threading.Barrier(WRITERS)
    numbers: list[int] = []
    errors: list[BaseException] = []
    guard = threading.Lock()

    def writer() -> None:
        try:
            start.wait()
            for _ in range(VERSIONS_EACH):
                number = work()
                with guard:
                    numbers.append(number)
        except BaseException as e:  # surfaced below, in the test's thread
            errors.append(e)

    threads = [threading.Thread(target=writer) for _ in range(WRITERS)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert not errors, errors
    return numbers


def test_concurrent_writers_get_distinct_consecutive_numbers(store):
    model_id = _add_model(store, "racy")
    other_id = _add_model(store, "other")
    _add_model_version(store, other_id, 0)  # another parent's numbers do not count

    numbers = _run_writers(lambda: _add_model_version(store, model_id, 0.005))

    assert sorted(numbers) == list(range(1, WRITERS * VERSIONS_EACH + 1))
    with store.db.read() as conn:
        stored = conn.execute(
            select(model_versions.c.version)
            .where(model_versions.c.model_id == model_id)
            .order_by(model_versions.c.version)
        ).scalars()
        assert list(stored) == sorted(numbers)


def test_concurrent_dataset_versions_through_the_same_helper(store):
    dataset_id = new_id()
    with store.db.write() as conn:
        conn.execute(datasets.insert().values(id=dataset_id, name="racy", created_at=0))

    def add() -> int:
        with store.db.write() as conn:
            number = next_version(
                conn, dataset_versions.c.version, dataset_versions.c.dataset_id, dataset_id
            )
            time.sleep(0.005)
            conn.execute(
                dataset_versions.insert().values(
                    id=new_id(),
                    dataset_id=dataset_id,
                    version=number,
                    sha256=new_id(),
                    size=0,
                    rows=0,
                    columns=0,
                    format="parquet",
                    column_types="{}",
                    created_at=0,
                )
            )
        return number

    assert sorted(_run_writers(add)) == list(range(1, WRITERS * VERSIONS_EACH + 1))


def test_first_version_is_one(store):
    model_id = _add_model(store, "fresh")
    with store.db.write() as conn:
        assert (
            next_version(conn, model_versions.c.version, model_versions.c.model_id, model_id) == 1
        )


def test_next_version_needs_the_foreign_key_to_the_parent(store):
    with store.db.write() as conn, pytest.raises(ValueError, match="foreign key"):
        next_version(conn, model_versions.c.version, model_versions.c.flavor, "x")


@pytest.mark.parametrize("store_url", ["sqlite"], indirect=True)
def test_locks_refuse_a_read_transaction_on_sqlite(store):
    """(PostgreSQL's locks hold in any transaction; on SQLite only the write lock holds.)"""
    model_id = _add_model(store, "m")
    query = select(registered_models.c.id).where(registered_models.c.id == model_id)
    with store.db.read() as conn:
        with pytest.raises(RuntimeError, match="write transaction"):
            lock_rows(conn, query)
        with pytest.raises(RuntimeError, match="write transaction"):
            advisory_lock(conn, "tests", "m")
        with pytest.raises(RuntimeError, match="write transaction"):
            next_version(conn, model_versions.c.version, model_versions.c.model_id, model_id)


def test_advisory_lock_serializes_writers(store):
    inside = 0
    most_inside = 0
    guard = threading.Lock()

    def work() -> int:
        nonlocal inside, most_inside
        with store.db.write() as conn:
            advisory_lock(conn, "tests", "section")
            with guard:
                inside += 1
                most_inside = max(most_inside, inside)
            time.sleep(0.005)
            with guard:
                inside -= 1
        return 0

    _run_writers(work)
    assert most_inside == 1


def test_lock_keys_differ_by_scope_and_name():
    assert lock_key("alerts", "m") == lock_key("alerts", "m")
    assert len({lock_key("alerts", "m"), lock_key("alerts", "n"), lock_key("leases", "m")}) == 3
    assert -(2**63) <= lock_key("alerts", "m") < 2**63


def test_json_field_and_number_in_text_on_both_databases(store):
    rows = [
        {"status": "running", "timeout": 30, "started_at": "2024-01-01T00:00:00+00:00"},
        {"status": "queued"},
    ]
    with store.db.write() as conn:
        for i, action in enumerate(rows):
            conn.execute(
                alerts.insert().values(
                    id=f"a{i}",
                    monitor="m",
                    endpoint="e",
                    rule="r",
                    slice="overall",
                    metric="x",
                    state="firing",
                    severity="warning",
                    message="x",
                    window_start=0,
                    model="m/1",
                    fired_at=0,
                    last_seen_at=0,
                    action=json.dumps(action),
                )
            )
    status, timeout = json_field(alerts.c.action, "status"), json_field(alerts.c.action, "timeout")
    with store.db.read() as conn:
        found = conn.execute(
            select(alerts.c.id, status, timeout)
            .where(status.in_(["running", "queued"]))
            .order_by(alerts.c.id)
        ).all()
        # the same statement shape with another key is not served from the cache
        started = conn.execute(
            select(json_field(alerts.c.action, "started_at")).order_by(alerts.c.id)
        ).scalars()
        assert list(started) == ["2024-01-01T00:00:00+00:00", None]
        numbers = conn.execute(
            select(alerts.c.id, number_in_text(alerts.c.monitor)).order_by(alerts.c.id)
        ).all()
    assert [(r[0], r[1]) for r in found] == [("a0", "running"), ("a1", "queued")]
    assert float(found[0][2]) == 30
    assert found[1][2] is None
    assert [n for _, n in numbers] == [None, None]  # "m" is no number


@pytest.mark.parametrize(
    ("text", "number"),
    [("1", 1.0), (" -2.5e3 ", -2500.0), (".5", 0.5), ("abc", None), ("", None)],
)
def test_number_in_text(store, text, number):
    with store.db.read() as conn:
        got = conn.execute(select(number_in_text(literal(text)))).scalar()
    assert got == number


def test_json_field_takes_plain_keys_only():
    with pytest.raises(ValueError, match="plain key"):
        json_field(alerts.c.action, "a'); drop table x; --")
