"""Running a pipeline: build its graph, then run each step when its inputs are ready.

One thread (the caller's) drives the run: it checks each ready step's cache key, records
the step, hands the call to the executor, stores what comes back and releases the steps
that waited for it. Independent steps therefore run in parallel on the executor, while
every write to the store happens in one place, in order.

A failed step (after its retries) records its traceback; the steps that depend on it,
directly or not, are recorded as SKIPPED and the run FAILED. :func:`resume_pipeline`
runs it again, taking every step that succeeded from the earlier run.
"""

from __future__ import annotations

import inspect
import json
import logging
import threading
import time
from collections.abc import Callable, Mapping
from concurrent.futures import FIRST_COMPLETED, Future, wait
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from loopwise.clock import now_us
from loopwise.errors import InvalidInput
from loopwise.ids import new_id
from loopwise.pipelines import records
from loopwise.pipelines.definition import Graph, Node, Pipeline, load_pipeline, nodes_in, substitute
from loopwise.pipelines.executors import StepExecutor, open_executor
from loopwise.pipelines.fingerprint import cache_key, is_json_exact
from loopwise.pipelines.outputs import (
    DATASET,
    MODEL,
    VALUE,
    is_inline,
    link_inputs,
    load_output,
    numbers_of,
    store_output,
)
from loopwise.pipelines.records import PipelineRun, StepRun, StepStart
from loopwise.store import Store
from loopwise.tracking import runs as run_service
from loopwise.tracking.environment import capture_environment
from loopwise.tracking.log_batch import series_of
from loopwise.tracking.records import RunStatus

log = logging.getLogger(__name__)

#: A step still running this long after it started gets its RUNNING record; a faster one
#: is written once, when it ends (half the writes of a chain of quick steps).
RECORD_AFTER_S = 0.2

#: ``progress(done, total, step key, status)``, called as each step ends.
Progress = Callable[[int, int, str, str], None]


def _param_text(value: Any) -> Any:
    """A parameter as a run param: itself when short and simple, else a short description
    (a frame's shape, an object's type): params are for reading and filtering."""
    if is_json_exact(value):
        text = json.dumps(value, default=str)
        if len(text) <= 500:
            return value
    shape = getattr(value, "shape", None)
    described = f"<{type(value).__module__}.{type(value).__qualname__}"
    return described + (f" shape={tuple(shape)}>" if shape is not None else ">")


@dataclass
class _Slot:
    """The runner's state of one node."""

    node: Node
    start: StepStart | None = None
    run_id: str | None = None
    attempts: int = 0
    waiting: int = 0  # upstream nodes not done yet
    consumers: int = 0  # downstream nodes that still need the value
    fingerprint: str | None = None
    output: tuple[str, str] | None = None  # (kind, ref)
    started_at: int = 0  # µs
    recorded: bool = False  # its RUNNING record is written (see _record_start)
    deadline: float = 0.0  # monotonic time after which a running step gets that record
    has_value: bool = False
    value: Any = None
    failed: bool = False


class _Run:
    def __init__(
        self,
        store: Store,
        pipeline: Pipeline,
        graph: Graph,
        *,
        run_id: str,
        experiment_id: str,
        cache: bool,
        reuse: Mapping[str, StepRun],
        keep: set[str],
        progress: Progress | None,
    ) -> None:
        self.store = store
        self.pipeline = pipeline
        self.graph = graph
        self.run_id = run_id
        self.experiment_id = experiment_id
        self.cache = cache
        self.reuse = reuse
        self.keep = keep  # node keys whose values the pipeline returns
        self.progress = progress
        self.slots = {key: _Slot(node) for key, node in graph.nodes.items()}
        self.downstream = graph.downstream()
        for slot in self.slots.values():
            slot.waiting = len(slot.node.upstream)
            slot.consumers = len(self.downstream[slot.node.key])
        self.done = 0
        self.points: list[tuple[str, str, float, int]] = []  # (run, key, value, time)
        # the records of the steps taken from the cache in one pass of the loop, written in
        # one transaction before the runner waits (see records.record_cached)
        self.later: records.Later = []

    # -- one step ---------------------------------------------------------------------------

    def _start_of(self, slot: _Slot) -> StepStart:
        node = slot.node
        step = node.step
        fingerprints = {up.key: self.slots[up.key].fingerprint or "" for up in node.upstream}
        key: str | None
        try:
            key = cache_key(step.name, step.code_hash, node.arguments, fingerprints)
        except InvalidInput:
            if step.options.cache and self.cache:
                raise
            key = None  # no cache for it, so no key is needed
        inputs = {
            name: [n.key for n in nodes_in(value)]
            for name, value in node.arguments.items()
            if any(True for _ in nodes_in(value))
        }
        params = {
            name: _param_text(value) for name, value in node.arguments.items() if name not in inputs
        }
        return StepStart(
            pipeline_run_id=self.run_id,
            experiment_id=self.experiment_id,
            key=node.key,
            step=step.name,
            code_hash=step.code_hash,
            cache_key=key,
            inputs=inputs,
            params=params,
        )

    def _from_cache(self, slot: _Slot) -> bool:
        """Take the step's output from an earlier run when allowed and found."""
        key = slot.start.cache_key if slot.start else None
        if key is None:
            return False
        earlier = self.reuse.get(key)
        if earlier is None and self.cache and slot.node.step.options.cache:
            with self.store.db.read() as conn:
                earlier = records.cached_step(conn, key)
        if earlier is None or not earlier.outputs:
            return False
        slot.run_id = records.record_cached(self.store, slot.start, earlier, self.later)
        slot.fingerprint = earlier.fingerprint
        slot.output = (earlier.outputs["kind"], earlier.outputs["ref"])
        if slot.output[0] == VALUE:  # its numbers are metrics of this run too
            self._metrics(slot, self._value(slot.node.key))
        return True

    def _metrics(self, slot: _Slot, value: Any) -> None:
        """The numbers of an output as metrics of the step's run (``value`` or the dict's
        keys) and of the pipeline run (``<step>`` or ``<step>.<key>``), written with the
        run's end, all steps in one transaction."""
        numbers = numbers_of("value", value)
        if not numbers:
            return
        now = now_us()
        key = slot.node.key
        self.points.extend((slot.run_id, k, v, now) for k, v in numbers.items())
        names = {"value": key} if type(value) is not dict else {}
        self.points.extend(
            (self.run_id, names.get(k, f"{key}.{k}"), v, now) for k, v in numbers.items()
        )

    def _value(self, key: str) -> Any:
        slot = self.slots[key]
        if not slot.has_value:
            assert slot.output is not None
            slot.value = load_output(self.store, *slot.output)
            slot.has_value = True
        return slot.value

    def _argument(self, node: Node, name: str, value: Any) -> Any:
        """An argument's value: upstream outputs in place of their nodes, or their records
        for a parameter annotated ``ModelVersion`` / ``DatasetVersion``."""
        wanted = node.step.references.get(name)
        if wanted is None or not isinstance(value, Node):
            values = {up.key: self._value(up.key) for up in nodes_in(value)}
            return substitute(value, values)
        kind, ref = self.slots[value.key].output or ("", "")
        if wanted == "ModelVersion" and kind == MODEL:
            from loopwise.registry import models as registry

            return registry.get_model_version(self.store, ref)
        if wanted == "DatasetVersion" and kind.startswith(DATASET + ":"):
            from loopwise.data.datasets import get_dataset_version

            return get_dataset_version(self.store, ref)
        raise InvalidInput(
            f"Parameter {name!r} of step {node.step.name!r} takes a {wanted}, but step "
            f"{value.key!r} answered a {kind or 'nothing'} output."
        )

    def _call(self, slot: _Slot, executor: StepExecutor) -> Future[Any]:
        node = slot.node
        arguments = {name: self._argument(node, name, v) for name, v in node.arguments.items()}
        args, kwargs = node.step.call_arguments(arguments, self.store)
        slot.attempts += 1
        return executor.submit(node.step, args, kwargs)

    def _output_name(self, node: Node) -> str | None:
        """The step's ``output=`` name, ``{param}`` filled from the call's parameters."""
        name = node.step.options.output
        if name is None or "{" not in name:
            return name
        params = {k: v for k, v in node.arguments.items() if not any(True for _ in nodes_in(v))}
        try:
            return name.format_map(params)
        except (KeyError, IndexError, ValueError) as exc:
            raise InvalidInput(
                f"Output name {name!r} of step {node.step.name!r} names no parameter of the "
                f"call ({exc}); its parameters: {', '.join(params) or 'none'}."
            ) from exc

    def _record_start(self, slot: _Slot) -> None:
        """Write a step's RUNNING record (once): for a step still running after
        :data:`RECORD_AFTER_S`, or one that stores what must name an existing run."""
        if not slot.recorded:
            assert slot.start is not None
            assert slot.run_id is not None
            records.start_step(self.store, slot.start, slot.run_id, slot.started_at)
            slot.recorded = True

    def _finish(self, slot: _Slot, output: Any = None, error: str | None = None) -> None:
        assert slot.start is not None
        assert slot.run_id is not None
        records.finish_step(
            self.store,
            slot.start,
            slot.run_id,
            started_at=slot.started_at,
            recorded=slot.recorded,
            output=output,
            attempts=slot.attempts,
            error=error,
        )

    def _succeeded(self, slot: _Slot, value: Any) -> None:
        node = slot.node
        assert slot.start is not None
        assert slot.run_id is not None
        if not is_inline(value):
            self._record_start(slot)  # a dataset, model or artifact names its run
        # the inputs at hand (a model's input example comes from a frame among them)
        inputs = [self.slots[up.key].value for up in node.upstream if self.slots[up.key].has_value]
        stored = store_output(
            self.store,
            value,
            pipeline=self.pipeline.name,
            key=node.key,
            name=self._output_name(node),
            step_run_id=slot.run_id,
            input_values=inputs,
        )
        self._finish(slot, output=stored)
        self._metrics(slot, value)
        slot.fingerprint = stored.fingerprint
        slot.output = (stored.kind, stored.ref)
        slot.value, slot.has_value = value, True

    def write_metrics(self) -> None:
        """The numbers the steps answered, as metrics of their runs and of the pipeline run
        (``<step>`` or ``<step>.<key>``), in one transaction."""
        by_run: dict[str, list[tuple[str, float, int, int]]] = {}
        for run_id, key, value, at in self.points:
            by_run.setdefault(run_id, []).append((key, value, 0, at))
        series: dict[Any, Any] = {}
        for run_id, points in by_run.items():
            series.update(series_of(self.store, run_id, points))
        if series:
            from loopwise.tracking.metric_store import write_points

            with self.store.db.write() as conn:
                write_points(conn, series, {})
        self.points.clear()

    # -- the loop ---------------------------------------------------------------------------

    def _release(self, slot: _Slot, ready: list[_Slot]) -> None:
        """Upstream values no one needs any more are dropped; waiting steps become ready."""
        for up in slot.node.upstream:
            upstream = self.slots[up.key]
            upstream.consumers -= 1
            if upstream.consumers == 0 and up.key not in self.keep:
                upstream.value, upstream.has_value = None, False
        for key in self.downstream[slot.node.key]:
            waiting = self.slots[key]
            waiting.waiting -= 1
            if waiting.waiting == 0:
                ready.append(waiting)

    def _start(self, slot: _Slot, executor: StepExecutor) -> Future[Any] | None:
        """Hand the step to the executor; None when it could not even start (an argument
        it cannot take, a step the executor refuses): then it is FAILED like a step that
        raised, with the reason, and what needs it is skipped."""
        try:
            return self._call(slot, executor)
        except Exception:
            import traceback

            self._fail(slot, traceback.format_exc())
            return None

    def _fail(self, slot: _Slot, error: str) -> None:
        """Record a failed step and skip every step that needs it."""
        slot.failed = True
        self._finish(slot, error=error)
        self._tick(slot, records.FAILED)
        self._skip_downstream(slot)

    def _skip_downstream(self, slot: _Slot) -> None:
        """Record every step that depends on ``slot`` (directly or not) as skipped."""
        todo = list(self.downstream[slot.node.key])
        seen: set[str] = set()
        while todo:
            key = todo.pop(0)
            if key in seen:
                continue
            seen.add(key)
            skipped = self.slots[key]
            if skipped.failed:  # already recorded: skipped after another failed step
                continue
            skipped.failed = True
            records.record_skipped(self.store, self._start_of_skipped(skipped), slot.node.key)
            self._tick(skipped, records.SKIPPED)
            todo.extend(self.downstream[key])

    def _start_of_skipped(self, slot: _Slot) -> StepStart:
        node = slot.node
        return StepStart(
            pipeline_run_id=self.run_id,
            experiment_id=self.experiment_id,
            key=node.key,
            step=node.step.name,
            code_hash=node.step.code_hash,
            cache_key=None,
            inputs={
                n: [x.key for x in nodes_in(v)]
                for n, v in node.arguments.items()
                if any(True for _ in nodes_in(v))
            },
            params={},
        )

    def _flush(self) -> None:
        """Write the cached steps' records gathered since the last flush, in one
        transaction."""
        if self.later:
            writes, self.later = self.later, []
            with self.store.db.write() as conn:
                for write in writes:
                    write(conn)

    def _tick(self, slot: _Slot, status: str) -> None:
        self.done += 1
        if self.progress is not None:
            self.progress(self.done, len(self.slots), slot.node.key, status)

    def execute(self, executor: StepExecutor) -> bool:
        """Run every step; True when all succeeded."""
        ready = [slot for slot in self.slots.values() if slot.waiting == 0]
        running: dict[Future[Any], _Slot] = {}
        ok = True
        try:
            while ready or running:
                while ready:
                    slot = ready.pop(0)
                    slot.start = self._start_of(slot)
                    if self._from_cache(slot):
                        self._tick(slot, "CACHED")
                        self._release(slot, ready)
                        continue
                    slot.run_id, slot.started_at = new_id(), now_us()
                    refs = [self.slots[up.key].output for up in slot.node.upstream]
                    refs = [r for r in refs if r is not None and r[0] != VALUE]
                    if refs:  # edges to the dataset and model versions it takes
                        self._record_start(slot)
                        link_inputs(self.store, slot.run_id, refs)
                    slot.deadline = time.monotonic() + RECORD_AFTER_S
                    started = self._start(slot, executor)
                    if started is None:
                        ok = False
                        continue
                    running[started] = slot
                self._flush()
                if not running:
                    break
                # with a timeout: a signal (SIGINT from the scheduler's shutdown) reaches this
                # thread as KeyboardInterrupt, and slow steps get their RUNNING record
                unrecorded = [x.deadline for x in running.values() if not x.recorded]
                timeout = 1.0
                if unrecorded:
                    timeout = min(max(0.0, min(unrecorded) - time.monotonic()), 1.0)
                finished, _ = wait(list(running), timeout=timeout, return_when=FIRST_COMPLETED)
                now = time.monotonic()
                for future, waiting in running.items():
                    if future not in finished and not waiting.recorded and waiting.deadline <= now:
                        self._record_start(waiting)
                for future in finished:
                    slot = running.pop(future)
                    try:
                        succeeded, result = future.result()
                    except Exception as exc:  # the executor could not run or return it
                        import traceback

                        succeeded = False
                        result = "".join(traceback.format_exception(exc))
                    if not succeeded and slot.attempts <= slot.node.step.options.retries:
                        retried = self._start(slot, executor)
                        if retried is not None:
                            running[retried] = slot
                        else:
                            ok = False
                        continue
                    if succeeded:
                        try:
                            self._succeeded(slot, result)
                        except Exception:
                            import traceback

                            succeeded, result = False, traceback.format_exc()
                    if not succeeded:
                        ok = False
                        self._fail(slot, str(result))
                        continue
                    self._tick(slot, records.SUCCEEDED)
                    self._release(slot, ready)
        except BaseException:
            try:
                self._flush()
            except Exception as exc:  # the run is being stopped: say so, and go on
                log.warning("could not record the cached steps of run %s: %s", self.run_id, exc)
            for future, slot in running.items():
                future.cancel()
                if slot.start is not None and slot.run_id is not None:
                    self._finish(slot, error="interrupted: the pipeline run stopped")
            raise
        return ok


def _record_environment(store: Store, run_id: str, pipeline: Pipeline) -> threading.Thread | None:
    """Capture the environment (git commit of the pipeline's code, Python, packages, host)
    beside the run, as ``lw.start_run`` does: ``runs reproduce`` checks that commit out."""
    if not store.settings.capture_environment:
        return None

    def capture() -> None:
        try:
            folder = Path(inspect.getfile(pipeline.fn)).resolve().parent
        except (OSError, TypeError):
            folder = None
        try:
            run_service.set_environment(store, run_id, capture_environment(folder))
        except Exception as exc:  # a capture problem never breaks a run
            log.warning("could not record the environment of run %s: %s", run_id, exc)

    thread = threading.Thread(target=capture, name="loopwise-environment", daemon=True)
    thread.start()
    return thread


def run_pipeline(
    store: Store,
    pipeline: Pipeline | str,
    params: Mapping[str, Any] | None = None,
    *,
    executor: str = "inprocess",
    max_workers: int | None = None,
    address: str | None = None,
    cache: bool = True,
    experiment: str | None = None,
    trigger: str | None = None,
    progress: Progress | None = None,
    resumed_from: str | None = None,
    reuse: Mapping[str, StepRun] | None = None,
) -> PipelineRun:
    """Run ``pipeline`` (a :class:`Pipeline`, or an entrypoint ``module:function`` /
    ``file.py:function``) with ``params`` in ``store``; the finished run.

    ``executor`` is ``inprocess`` (threads, default), ``processes`` or ``ray`` (``address``
    for a cluster; ``executor="ray://host:10001"`` works too); ``max_workers`` bounds the
    parallel steps. ``cache=False`` runs every step. The run is a tracking run in
    ``experiment`` (default: the pipeline's name), each step a child run.
    """
    if isinstance(pipeline, str):
        pipeline = load_pipeline(pipeline)
    if not isinstance(pipeline, Pipeline):
        raise InvalidInput(
            f"run_pipeline takes a pipeline (a function decorated with @lw.pipeline), got "
            f"{type(pipeline).__name__}."
        )
    if executor.startswith("ray://"):
        executor, address = "ray", executor
    values = pipeline.parameters(params)
    graph, result = pipeline.build(values)
    spec = records.encode_output(result)
    keep = {node.key for node in nodes_in(result)}
    step_executor = open_executor(executor, max_workers=max_workers, address=address)
    try:
        check = getattr(step_executor, "check", None)
        if check is not None:  # Ray: refuse a step no node can run, before recording anything
            check({id(node.step): node.step for node in graph.nodes.values()}.values())
        pipeline_id = records.register_pipeline(store, pipeline.name, pipeline.entrypoint)
        run_id = run_service.create_run(
            store,
            experiment or pipeline.name,
            tags={records.PIPELINE_TAG: pipeline.name, "loopwise.executor": executor},
        )
        run_service.log_params(store, run_id, {k: _param_text(v) for k, v in values.items()})
        encoded = records.encode_params(store, run_id, values)
        with store.db.write() as conn:
            records.insert_pipeline_run(
                conn,
                run_id=run_id,
                pipeline_id=pipeline_id,
                entrypoint=pipeline.entrypoint,
                params=encoded,
                output=json.dumps(spec),
                executor=executor,
                trigger=trigger,
                resumed_from=resumed_from,
            )
        environment = _record_environment(store, run_id, pipeline)
        experiment_id = run_service.get_run(store, run_id).experiment_id
        state = _Run(
            store,
            pipeline,
            graph,
            run_id=run_id,
            experiment_id=experiment_id,
            cache=cache,
            reuse=reuse or {},
            keep=keep,
            progress=progress,
        )
        try:
            ok = state.execute(step_executor)
        except BaseException:
            state.write_metrics()
            run_service.end_run(store, run_id, RunStatus.KILLED)
            raise
        state.write_metrics()
        if environment is not None:
            environment.join(timeout=60)
        run_service.end_run(store, run_id, RunStatus.FINISHED if ok else RunStatus.FAILED)
    finally:
        step_executor.close()
    finished = records.get_pipeline_run(store, run_id)
    for key, slot in state.slots.items():
        if slot.has_value:
            finished._values[key] = slot.value
    return finished


def resume_pipeline(
    store: Store,
    run_id: str,
    *,
    executor: str | None = None,
    max_workers: int | None = None,
    address: str | None = None,
    progress: Progress | None = None,
) -> PipelineRun:
    """Run a failed (or stopped) pipeline run again with its parameters, taking each step
    that succeeded in it (same code, parameters and inputs) from it instead of running it.
    A new pipeline run, which names the old one in ``resumed_from``."""
    earlier = records.get_pipeline_run(store, run_id)
    if earlier.status is RunStatus.FINISHED:
        raise InvalidInput(
            f"Pipeline run {earlier.id} finished: there is nothing to resume. Run the "
            f"pipeline again (loopwise pipelines run {earlier.pipeline})."
        )
    if earlier.status is RunStatus.RUNNING:
        raise InvalidInput(
            f"Pipeline run {earlier.id} is still RUNNING; resume it once it has failed or "
            "been stopped."
        )
    pipeline = load_pipeline(earlier.entrypoint)
    reuse = {
        s.cache_key: s
        for s in earlier.steps
        if s.status == records.SUCCEEDED and s.cache_key is not None and s.outputs
    }
    experiment = run_service.get_run(store, earlier.id).experiment
    return run_pipeline(
        store,
        pipeline,
        earlier.params,
        executor=executor or earlier.executor,
        max_workers=max_workers,
        address=address,
        experiment=experiment,
        trigger=earlier.trigger,
        progress=progress,
        resumed_from=earlier.id,
        reuse=reuse,
    )
