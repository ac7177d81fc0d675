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
  local Ray (``ray.init()``) or a cluster (``address="ray://host:10001"``). A step that
  asks for more than the cluster's largest node has fails with the reason (``check()``
  refuses it before the run) instead of waiting forever, and an unreachable address is a
  :class:`ConfigurationError` within seconds. Steps go by reference as for ``processes``;
  steps defined inside a function or a notebook go by value (cloudpickle).
"""

from __future__ import annotations

import contextlib
import os
import traceback
from collections.abc import Iterable, Mapping
from concurrent.futures import (
    Executor,
    Future,
    InvalidStateError,
    ProcessPoolExecutor,
    ThreadPoolExecutor,
)
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


#: Step resources and the Ray resources they reserve.
_RAY_RESOURCES = {"cpus": "CPU", "gpus": "GPU", "memory": "memory"}
#: The address this process's Ray session was started with by a RayExecutor ("" for a
#: local Ray), None when loopwise did not start it.
_ray_session: str | None = None


def _ray_target(address: str) -> tuple[str, int] | None:
    """``(host, port)`` that ``address`` (``ray://host[:10001]`` or a GCS ``host:port``)
    connects to; None for ``auto``/``local`` and what Ray resolves itself."""
    from urllib.parse import urlsplit

    if address.startswith("ray://"):
        parts = urlsplit(address)
        try:
            return (parts.hostname or "", parts.port or 10001) if parts.hostname else None
        except ValueError as exc:
            raise ConfigurationError(f"Ray address {address!r} is not valid: {exc}.") from exc
    host, sep, port = address.rpartition(":")
    if sep and host and port.isdigit():
        return host.strip("[]"), int(port)
    return None


def _connect_ray(ray: Any, address: str | None) -> None:
    """Start a local Ray, or connect to ``address``, failing fast with a clear error when
    it cannot be reached (Ray itself retries a ``ray://`` address for 30 s, and a GCS
    ``host:port`` for minutes before exiting the process)."""
    global _ray_session
    if ray.is_initialized():
        if address and address != _ray_session:
            raise ConfigurationError(
                f"Ray is already initialized in this process, so the Ray address "
                f"{address!r} cannot be used: leave the address out to run on the Ray "
                "session already started, or call ray.shutdown() first."
            )
        return
    if address:
        target = _ray_target(address)
        if target is not None:
            import socket

            try:
                socket.create_connection(target, timeout=5).close()
            except OSError as exc:
                raise ConfigurationError(
                    f"Cannot reach the Ray cluster at {address!r} ({exc}): check that its "
                    "head node is running (`ray start --head`; a ray:// address is its Ray "
                    "Client port, 10001 by default) and reachable from this machine."
                ) from exc
    try:
        ray.init(address=address, ignore_reinit_error=True, log_to_driver=False)
    except (Exception, SystemExit) as exc:  # Ray exits the process on some failures
        where = f"the Ray cluster at {address!r}" if address else "a local Ray"
        raise ConfigurationError(f"Cannot start or connect to {where}: {exc}") from exc
    _ray_session = address or ""


def _amount(resource: str, value: float) -> str:
    if resource == "memory":
        return f"{value / 2**30:.3g} GiB of memory"
    return f"{value:g} {_RAY_RESOURCES[resource]}" + ("" if value == 1 else "s")


class RayExecutor:
    """Ray tasks, one per step call, with the step's resources (``cpus`` (default 1),
    ``gpus``, ``memory`` in bytes). ``max_workers`` does not apply: Ray schedules the
    tasks on the cluster's resources."""

    name = "ray"

    def __init__(self, address: str | None) -> None:
        try:
            import ray
        except ImportError as exc:
            raise ConfigurationError(
                "executor='ray' needs Ray: pip install 'loopwise[ray]'."
            ) from exc
        self._ray = ray
        _connect_ray(ray, address)
        self._remote = ray.remote(call_step)
        self._largest: dict[str, float] | None = None
        self._checked: dict[int, InvalidInput | None] = {}

    def _node_resources(self) -> dict[str, float]:
        """The most of each resource one live node of the cluster has (a task runs on one
        node)."""
        if self._largest is None:
            largest: dict[str, float] = {}
            for node in self._ray.nodes():
                if node.get("Alive", node.get("alive", False)):
                    for key, value in (node.get("Resources") or {}).items():
                        largest[key] = max(largest.get(key, 0.0), float(value))
            self._largest = largest
        return self._largest

    def _options(self, step: Step) -> dict[str, Any]:
        resources: Mapping[str, float] = step.options.resources
        options: dict[str, Any] = {"num_cpus": resources.get("cpus", 1), "max_retries": 0}
        if "gpus" in resources:
            options["num_gpus"] = resources["gpus"]
        if "memory" in resources:
            options["memory"] = int(resources["memory"])
        return options

    def problem(self, step: Step) -> InvalidInput | None:
        """Why no node of the cluster can ever run ``step`` (it asks for more CPUs, GPUs or
        memory than the largest node has: Ray would wait for such a node forever), else
        None."""
        if id(step) in self._checked:
            return self._checked[id(step)]
        asked = {"cpus": 1.0, **step.options.resources}
        largest = self._node_resources()
        found = None
        for resource, amount in asked.items():
            has = largest.get(_RAY_RESOURCES[resource], 0.0)
            if amount > has:
                found = InvalidInput(
                    f"Step {step.name!r} asks for {_amount(resource, amount)}, but no node "
                    f"of the Ray cluster has that many (the largest has "
                    f"{_amount(resource, has)}): ask for at most that in "
                    f"@lw.step(resources={{'{resource}': ...}}), or add a bigger node."
                )
                break
        self._checked[id(step)] = found
        return found

    def check(self, steps: Iterable[Step]) -> None:
        """Refuse, before anything runs, a step no node of the cluster can run."""
        for step in steps:
            problem = self.problem(step)
            if problem is not None:
                raise problem

    def submit(self, step: Step, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Future[Any]:
        problem = self.problem(step)
        if problem is not None:  # the step fails with the reason instead of waiting forever
            refused: Future[Any] = Future()
            refused.set_result((False, f"{type(problem).__name__}: {problem}"))
            return refused
        ref = self._remote.options(**self._options(step)).remote(step, args, kwargs)
        answer: Future[Any] = Future()

        def done(ray_future: Future[Any]) -> None:
            try:
                result = ray_future.result()
            except Exception as exc:  # the task did not run or return: its worker died,
                # its arguments did not unpickle there, it was cancelled...
                why = f"{type(exc).__name__}: {exc}"
                result = (False, f"Step {step.name!r} did not finish on Ray: {why}")
            with contextlib.suppress(InvalidStateError):  # unless the run cancelled it
                answer.set_result(result)

        def cancelled(future: Future[Any]) -> None:
            if future.cancelled():  # the run stopped: so does the task
                self._ray.cancel(ref)

        answer.add_done_callback(cancelled)
        ref.future().add_done_callback(done)
        return answer

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
