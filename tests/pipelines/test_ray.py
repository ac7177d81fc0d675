"""The Ray executor on a real local Ray: one session for the module (``ray.init`` takes
seconds), each test on SQLite and on PostgreSQL.

The session is started from a folder that is not the repository, so Ray's workers do not
have it on their ``sys.path`` (Ray gives them the driver's working folder): steps of this
module and of ``steps.py`` are found there all the same. Without Ray installed these tests
skip, except under CI (``CI=true``), where that is a failure.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

import loopwise as lw_module
from loopwise.errors import ConfigurationError, InvalidInput
from tests.helpers import free_port
from tests.pipelines import steps

ROOT = Path(__file__).resolve().parents[2]
IN_CI = os.environ.get("CI", "").lower() == "true"
CLUSTER_CPUS = 2


@pytest.fixture(scope="module")
def ray_session(tmp_path_factory: pytest.TempPathFactory):
    try:
        import ray
    except ImportError:
        message = "Ray is not installed (pip install -e '.[dev]' installs the [ray] extra)"
        if IN_CI:
            pytest.fail(f"{message}; under CI it must be there.")
        pytest.skip(message)
    if ray.is_initialized():
        ray.shutdown()
    here = Path.cwd()
    os.chdir(tmp_path_factory.mktemp("ray-driver"))  # workers get this folder, not the repo
    try:
        ray.init(num_cpus=CLUSTER_CPUS, include_dashboard=False, log_to_driver=False)
    finally:
        os.chdir(here)
    yield ray
    ray.shutdown()


# Steps of this module: the workers import it by name, as they import steps.py.


@lw_module.step
def assigned() -> dict:
    """The resources Ray reserved for the task this step ran in."""
    import ray

    return dict(ray.get_runtime_context().get_assigned_resources())


one_cpu = lw_module.step(name="one-cpu")(assigned.fn)
two_cpus = lw_module.step(name="two-cpus", resources={"cpus": 2})(assigned.fn)
half_cpu = lw_module.step(name="half-cpu", resources={"cpus": 0.5})(assigned.fn)
greedy = lw_module.step(name="greedy", resources={"cpus": 3})(assigned.fn)
gpu = lw_module.step(name="gpu", resources={"gpus": 1})(assigned.fn)
huge = lw_module.step(name="huge", resources={"memory": 2**60})(assigned.fn)


@lw_module.pipeline
def reservations():
    return {"one": one_cpu(), "two": two_cpus(), "half": half_cpu()}


@lw_module.step
def size(found: dict) -> int:
    return len(found)


@lw_module.pipeline
def too_greedy():
    return size(greedy())


@lw_module.step
def crash(x: int) -> int:
    os._exit(3)  # the worker process dies: no exception, no traceback from the step


@lw_module.pipeline
def crashing():
    return steps.inc(crash(steps.inc(0)))


def test_outputs_equal_the_in_process_run(lw, ray_session):
    chain = lw.run_pipeline(steps.chain, params={"length": 30}, cache=False)
    on_ray = lw.run_pipeline(steps.chain, params={"length": 30}, executor="ray", cache=False)
    assert on_ray.status.value == "FINISHED"
    assert on_ray.output() == chain.output() == 30
    assert lw.get_run(on_ray.id).tags["loopwise.executor"] == "ray"
    assert [s.status for s in on_ray.steps] == ["SUCCEEDED"] * 30

    # frames and a model go to the workers and back
    local = lw.run_pipeline(steps.churn, params={"rows": 150}, cache=False)
    remote = lw.run_pipeline(steps.churn, params={"rows": 150}, executor="ray", cache=False)
    assert remote.status.value == "FINISHED"
    assert remote.output()["scores"] == local.output()["scores"]
    assert remote.output()["model"].coef_.tolist() == local.output()["model"].coef_.tolist()
    assert remote.step("load").outputs["kind"] == "dataset:pandas"
    # the same content, the same fingerprints (a model's is the hash of its saved files,
    # whose pickled bytes differ once the model has crossed processes)
    for name in ("load", "score"):
        assert remote.step(name).fingerprint == local.step(name).fingerprint


def test_steps_run_in_ray_worker_processes(lw, ray_session):
    run = lw.run_pipeline(steps.pids, executor="ray", cache=False)
    assert run.status.value == "FINISHED"
    pids = run.output()
    assert os.getpid() not in pids
    assert all(isinstance(pid, int) and pid > 0 for pid in pids)


def test_step_resources_are_reserved(lw, ray_session):
    run = lw.run_pipeline(reservations, executor="ray", cache=False)
    assert run.status.value == "FINISHED", [s.error for s in run.steps]
    out = run.output()
    assert out["one"]["CPU"] == 1  # the default
    assert out["two"]["CPU"] == 2
    assert out["half"]["CPU"] == 0.5


def test_a_step_the_cluster_cannot_run_is_refused_not_left_waiting(lw, ray_session):
    from loopwise.pipelines.executors import open_executor

    executor = open_executor("ray")
    with pytest.raises(InvalidInput, match=r"Step 'greedy' asks for 3 CPUs.*largest has 2 CPUs"):
        executor.check([steps.inc, greedy])
    with pytest.raises(InvalidInput, match=r"Step 'gpu' asks for 1 GPU\b.*has 0 GPUs"):
        executor.check([gpu])
    with pytest.raises(InvalidInput, match=r"Step 'huge' asks for .* GiB of memory"):
        executor.check([huge])
    executor.check([steps.inc, two_cpus, half_cpu])  # what fits passes

    started = time.monotonic()
    try:
        run = lw.run_pipeline(too_greedy, executor="ray")
    except InvalidInput as exc:  # refused before the run (when the runner calls check())
        message = str(exc)
    else:  # or the step fails with the reason, and what needs it is skipped
        assert run.status.value == "FAILED"
        assert {s.name: s.status for s in run.steps} == {"greedy": "FAILED", "size": "SKIPPED"}
        message = run.step("greedy").error
    assert time.monotonic() - started < 60
    assert "Step 'greedy' asks for 3 CPUs" in message
    assert f"the largest has {CLUSTER_CPUS} CPUs" in message


def test_a_failing_step_records_its_traceback_and_resumes(lw, ray_session, tmp_path):
    flag = tmp_path / "broken"
    flag.write_text("up")
    failed = lw.run_pipeline(
        steps.breakable, params={"flag": str(flag)}, executor="ray", cache=False
    )
    assert failed.status.value == "FAILED"
    status = {s.name: s.status for s in failed.steps}
    assert status == {
        "divide": "SUCCEEDED",
        "fragile": "FAILED",
        "divide-2": "SUCCEEDED",
        "add": "SKIPPED",
    }
    error = failed.step("fragile").error
    assert "Traceback" in error
    assert "RuntimeError: flag" in error
    assert "steps.py" in error  # the frame of the step, as the worker saw it
    assert (
        lw.get_run(failed.step("fragile").run_id).tags["loopwise.error"].startswith("RuntimeError")
    )

    flag.unlink()
    resumed = lw.resume_pipeline(failed.id)  # on Ray again: the executor is recorded
    assert resumed.status.value == "FINISHED"
    assert resumed.output() == (4.25, 0.25)
    assert {s.name for s in resumed.steps if s.cached} == {"divide", "divide-2"}


def test_a_worker_that_dies_fails_its_step(lw, ray_session):
    started = time.monotonic()
    run = lw.run_pipeline(crashing, executor="ray", cache=False)
    assert time.monotonic() - started < 120
    assert run.status.value == "FAILED"
    assert {s.name: s.status for s in run.steps} == {
        "inc": "SUCCEEDED",
        "crash": "FAILED",
        "inc-2": "SKIPPED",
    }
    error = run.step("crash").error
    assert error.startswith("Step 'crash' did not finish on Ray: WorkerCrashedError: ")
    assert "worker died" in error
    assert run.step("crash").attempts == 1  # Ray does not retry it behind loopwise's back


def test_the_cache_works_as_in_process(lw, ray_session):
    first = lw.run_pipeline(steps.churn, params={"rows": 120})  # in process
    second = lw.run_pipeline(steps.churn, params={"rows": 120}, executor="ray")
    assert [s.cached for s in second.steps] == [True, True, True]
    assert [s.cached_from for s in second.steps] == [s.run_id for s in first.steps]
    assert second.output()["scores"] == first.output()["scores"]

    fresh = lw.run_pipeline(steps.chain, params={"length": 10, "start": 5}, executor="ray")
    assert not any(s.cached for s in fresh.steps)
    cached = lw.run_pipeline(steps.chain, params={"length": 10, "start": 5}, executor="ray")
    assert all(s.cached for s in cached.steps)
    assert cached.output() == fresh.output() == 15
    changed = lw.run_pipeline(steps.churn, params={"rows": 120, "C": 0.1}, executor="ray")
    assert [s.cached for s in changed.steps] == [True, False, False]
    uncached = lw.run_pipeline(
        steps.chain, params={"length": 10, "start": 5}, executor="ray", cache=False
    )
    assert not any(s.cached for s in uncached.steps)


def test_steps_defined_in_a_function_go_by_value(lw, ray_session):
    offset = 100

    @lw.step
    def shifted(x: int) -> int:
        return x + offset  # a closure: only by value can a worker run it

    @lw.pipeline
    def local():
        return shifted(steps.inc(1))

    run = lw.run_pipeline(local, executor="ray", cache=False)
    assert run.status.value == "FINISHED", [s.error for s in run.steps]
    assert run.output() == 102


def test_another_address_than_the_running_session_is_refused(lw, ray_session):
    with pytest.raises(ConfigurationError, match="already initialized"):
        lw.run_pipeline(steps.chain, params={"length": 2}, executor="ray://127.0.0.1:1")
    with pytest.raises(ConfigurationError, match=r"ray\.shutdown\(\)"):
        lw.run_pipeline(steps.chain, params={"length": 2}, executor="ray", address="10.0.0.1:1")


def test_an_unreachable_ray_address_is_a_clear_error(ray_session, tmp_path):
    """In a process of its own, where Ray is not initialized yet: no hang, no exit."""
    port = free_port()  # nothing listens there
    script = textwrap.dedent(
        f"""
        import time
        import loopwise as lw
        from loopwise.errors import ConfigurationError
        from tests.pipelines import steps

        lw.configure(store_url="sqlite:///{tmp_path}/s.db", artifacts_url="{tmp_path}/a")
        for executor, address in (("ray://127.0.0.1:{port}", None), ("ray", "127.0.0.1:{port}")):
            started = time.monotonic()
            try:
                lw.run_pipeline(
                    steps.chain, params={{"length": 2}}, executor=executor, address=address
                )
            except ConfigurationError as exc:
                print("ConfigurationError", round(time.monotonic() - started, 1), exc)
            else:
                print("no error")
        """
    )
    done = subprocess.run(
        [sys.executable, "-c", script],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=240,
    )
    assert done.returncode == 0, done.stderr
    lines = [line for line in done.stdout.splitlines() if line.startswith(("Config", "no"))]
    assert len(lines) == 2, done.stdout + done.stderr
    for line, address in zip(lines, (f"ray://127.0.0.1:{port}", f"127.0.0.1:{port}"), strict=True):
        kind, seconds, message = line.split(" ", 2)
        assert kind == "ConfigurationError"
        assert float(seconds) < 30
        assert f"Cannot reach the Ray cluster at '{address}'" in message
        assert "ray start --head" in message
