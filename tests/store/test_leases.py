"""Leases: one holder at a time, across threads and processes, on each backend."""

from __future__ import annotations

import itertools
import multiprocessing as mp
import threading
import time

import pytest

from loopwise.errors import InvalidInput
from loopwise.store import Store
from loopwise.store.leases import give_back, held, take
from loopwise.store.tables import leases


def test_one_holder_at_a_time_and_renewing(store):
    assert take(store, "job", "a", ttl_s=60)
    assert not take(store, "job", "b", ttl_s=60)
    assert take(store, "job", "a", ttl_s=60)  # renewed by its holder
    give_back(store, "job", "b")  # not b's to give back: a keeps it
    assert not take(store, "job", "b", ttl_s=60)
    give_back(store, "job", "a")
    assert take(store, "job", "b", ttl_s=60)
    assert take(store, "other job", "a", ttl_s=60)  # names are independent


def test_an_expired_lease_is_taken_by_another(store):
    store.db.ensure_schema()
    assert take(store, "job", "dead holder", ttl_s=0.5)
    assert not take(store, "job", "b", ttl_s=60)
    time.sleep(0.6)
    assert take(store, "job", "b", ttl_s=60)
    give_back(store, "job", "dead holder")  # it lost the lease: b keeps it
    assert not take(store, "job", "c", ttl_s=60)


def test_held_yields_none_when_busy_and_gives_back_on_leaving(store):
    with held(store, "job", ttl_s=60) as first:
        assert first is not None
        assert first.renew()
        with held(store, "job", ttl_s=60) as second:
            assert second is None
    with held(store, "job", ttl_s=60) as again:
        assert again is not None


def test_held_gives_back_when_the_block_raises(store):
    with pytest.raises(RuntimeError), held(store, "job", ttl_s=60):
        raise RuntimeError("work failed (test)")
    assert take(store, "job", "b", ttl_s=60)


def test_held_waits_for_the_holder_to_give_back(store):
    assert take(store, "job", "a", ttl_s=60)
    threading.Timer(0.3, give_back, (store, "job", "a")).start()
    start = time.monotonic()
    with held(store, "job", ttl_s=60, wait_s=5) as lease:
        assert lease is not None
    assert 0.2 < time.monotonic() - start < 4


def test_bad_names_and_ttls_are_clear_errors(store):
    with pytest.raises(InvalidInput, match="lease name"):
        take(store, "", "a", ttl_s=1)
    with pytest.raises(InvalidInput, match="lease name"):
        take(store, "x" * 256, "a", ttl_s=1)
    with pytest.raises(InvalidInput, match="ttl_s"):
        take(store, "job", "a", ttl_s=0)
    with pytest.raises(InvalidInput, match="ttl_s"):
        take(store, "job", "a", ttl_s=True)


def _race(args: tuple[str, str, str]) -> list[tuple[float, float]]:
    """Try the lease many times as ``holder``; when it held it (wall-clock intervals)."""
    store_url, artifacts, holder = args
    from loopwise.config import load_settings

    store = Store(settings=load_settings(store_url=store_url, artifacts_url=artifacts))
    won = []
    for _ in range(40):
        if take(store, "contended", holder, ttl_s=30):
            start = time.time()
            time.sleep(0.005)
            won.append((start, time.time()))
            give_back(store, "contended", holder)
    store.db.engine.dispose()
    return won


def test_processes_racing_for_a_lease_never_hold_it_together(store, tmp_path):
    store.db.ensure_schema()
    ctx = mp.get_context("spawn")
    args = [(store.settings.store_url, str(tmp_path / "a"), f"holder-{i}") for i in range(4)]
    with ctx.Pool(4) as pool:
        won = pool.map(_race, args)
    held_at = sorted((start, end, i) for i, w in enumerate(won) for start, end in w)
    assert len(held_at) > 4
    for (_, end, i), (start, _, j) in itertools.pairwise(held_at):
        assert end <= start or i == j, "two processes held the lease at once"
    with store.db.read() as conn:
        rows = conn.execute(leases.select()).fetchall()
    assert rows == []  # every holder gave it back


def test_no_two_threads_hold_a_lease_at_once(store):
    store.db.ensure_schema()
    inside, overlaps, wins = [0], [0], [0]
    lock = threading.Lock()

    def worker(holder: str) -> None:
        for _ in range(15):
            if take(store, "shared", holder, ttl_s=30):
                with lock:
                    inside[0] += 1
                    overlaps[0] += inside[0] > 1
                    wins[0] += 1
                time.sleep(0.002)
                with lock:
                    inside[0] -= 1
                give_back(store, "shared", holder)

    threads = [threading.Thread(target=worker, args=(f"t{i}",)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert wins[0] > 0
    assert overlaps[0] == 0
