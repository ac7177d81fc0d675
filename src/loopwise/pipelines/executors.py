"""Where step functions run: threads of this process, local processes, or Ray.

An executor only *calls* step functions; the runner (one thread of the calling process)
decides what runs, checks the cache and records everything, so a worker never opens the
store. Each executor answers a :class:`concurrent.futures.Future` per call, whose result
is ``(True, value)`` or ``(False, traceback text)``: a step's failure is data, recorded
with its traceback, not an exception that stops the run.

- ``inprocess`` (default): a thread pool; steps share memory, nothing is pickled.
- ``processes``: a pool of local processes started with ``spawn`` (no forked copies of
  this process's threads and connections); steps and their inputs are pickled by
  reference, so steps must be importable (defined at module level).
- ``ray``: Ray tasks with each step's ``resources`` (``cpus``, ``gpus``, ``memory``), on a
  local Ray (``ray.init()``) or a cluster (``address="ray://host:10001"``).
"""

from __future__ import annotations

import os
import traceback
from collections.abc import Mapping
from concurrent.futures import Executor, Future, ProcessPoolExecutor, ThreadPoolExecutor
from typing import Any, Protocol

from loopwise.errors import ConfigurationError, InvalidInput
from loopwise.pipelines.definition import Step

EXECUTORS = ("inprocess", "processes", "ray")


def call_step(step: Step, args: tuple[Any, ...], kwargs: dict[str, Any]) -> tuple[bool, Any]:
    """Run one step function; ``(True, value)`` or ``(False, traceback text)``."""
    try:
        return True, step.fn(*args, **kwargs)
    except Exception:
        return False, traceback.format_exc()


class StepExecutor(Protocol):
    name: str

    def submit(self, step: Step, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Future[Any]:
        """Start a step function; its future."""

    def close(self) -> None:
        """Release the workers."""


class PoolExecutor:
    """Threads or processes of a :mod:`concurrent.futures` pool."""

    def __init__(self, name: str, pool: Executor) -> None:
        self.name = name
        self._pool = pool

    def submit(self, step: Step, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Future[Any]:
        return self._pool.submit(call_step, step, args, kwargs)

    def close(self) -> None:
        self._pool.shutdown(wait=True, cancel_futures=True)


class RayExecutor:
    """Ray tasks, one per step call, with the step's resources."""

    name = "ray"

    def __init__(self, address: str | None) -> None:
        try:
            import ray
        except ImportError as exc:
            raise ConfigurationError(
                "executor='ray' needs Ray: pip install 'loopwise[ray]'."
            ) from exc
        self._ray = ray
        if not ray.is_initialized():
            ray.init(address=address, ignore_reinit_error=True, log_to_driver=False)
        self._remote = ray.remote(call_step)

    def submit(self, step: Step, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Future[Any]:
        resources: Mapping[str, float] = step.options.resources
        options: dict[str, Any] = {"num_cpus": resources.get("cpus", 1), "max_retries": 0}
        if "gpus" in resources:
            options["num_gpus"] = resources["gpus"]
        if "memory" in resources:
            options["memory"] = int(resources["memory"])
        return self._remote.options(**options).remote(step, args, kwargs).future()

    def close(self) -> None:
        pass  # the Ray session stays up for the next run, as ray.init() users expect


def open_executor(
    executor: str, *, max_workers: int | None = None, address: str | None = None
) -> StepExecutor:
    """The executor called ``executor`` (one of :data:`EXECUTORS`)."""
    if max_workers is not None and (
        isinstance(max_workers, bool) or not isinstance(max_workers, int) or max_workers < 1
    ):
        raise InvalidInput(f"max_workers must be a positive integer, got {max_workers!r}.")
    if executor == "inprocess":
        return PoolExecutor(
            executor, ThreadPoolExecutor(max_workers or 4, thread_name_prefix="loopwise-step")
        )
    if executor == "processes":
        import multiprocessing

        workers = max_workers or os.cpu_count() or 2
        context = multiprocessing.get_context("spawn")
        return PoolExecutor(executor, ProcessPoolExecutor(workers, mp_context=context))
    if executor == "ray":
        return RayExecutor(address)
    raise InvalidInput(f"Unknown executor {executor!r}; choose one of {', '.join(EXECUTORS)}.")
