"""Steps and pipelines in plain Python: ``@step`` functions, ``@pipeline`` graphs.

A step is an ordinary function. Called outside a pipeline it runs as that function;
called while a pipeline is being *built* it runs nothing and answers a :class:`Node`, a
promise of its output that later steps take as an input. A pipeline function is called
once, with the run's parameters, to build the graph; its return value (nodes, or
containers of them) names what ``run.output()`` answers.

Arguments that are nodes (also inside lists, tuples and dicts) are a step's *inputs*;
everything else is a *parameter*. Both feed the step's cache key, along with the code.
"""

from __future__ import annotations

import contextvars
import functools
import hashlib
import inspect
import re
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, overload

from loopwise.errors import InvalidInput, LoopwiseError

#: The module names :func:`load_file` gives the files it loads.
_FILE_MODULE = "loopwise_pipeline_"
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.\-]{0,99}$")

#: The graph being built, when a pipeline function is running.
_building: contextvars.ContextVar[Graph | None] = contextvars.ContextVar(
    "loopwise_pipeline_graph", default=None
)


def check_name(name: str, what: str) -> str:
    """A step or pipeline name: letters, digits, ``_ . -``, at most 100 characters (it names
    runs, dataset versions and model versions)."""
    if not isinstance(name, str) or not _NAME.match(name):
        raise InvalidInput(
            f"{what} name {name!r} is not valid: use letters, digits, '_', '.' and '-', "
            "starting with a letter or digit, at most 100 characters."
        )
    return name


def code_hash(fn: Callable[..., Any], version: str | None) -> str:
    """SHA-256 of a step's source (its bytecode and constants when the source is not on
    disk, as in a REPL) and the user's ``version``: what a cache key calls its code."""
    digest = hashlib.sha256()
    try:
        digest.update(inspect.getsource(fn).encode())
    except (OSError, TypeError):
        code = fn.__code__
        digest.update(code.co_code)
        digest.update(repr(code.co_consts).encode())
    digest.update(b"\0" + (version or "").encode())
    return digest.hexdigest()


@dataclass(frozen=True)
class StepOptions:
    """What ``@step(...)`` configures: ``version`` (bump it to invalidate the cache when
    the step's behaviour changes outside its source), ``cache``, ``retries``,
    ``resources`` (``cpus``, ``gpus``, ``memory`` in bytes: what the Ray executor
    reserves) and ``output`` (the dataset or model name its output is stored under;
    default ``<pipeline>.<step>``; ``{param}`` in it is filled from the call's parameters,
    as ``output="{model}"``)."""

    version: str | None = None
    cache: bool = True
    retries: int = 0
    resources: Mapping[str, float] = field(default_factory=dict)
    output: str | None = None


#: ``@step(...)`` and ``@pipeline(...)`` with options answer a decorator.
StepDecorator = Callable[[Callable[..., Any]], "Step"]
PipelineDecorator = Callable[[Callable[..., Any]], "Pipeline"]


class Step:
    """A function made a pipeline step by :func:`step`."""

    def __init__(self, fn: Callable[..., Any], name: str, options: StepOptions) -> None:
        self.fn = fn
        self.name = check_name(name, "Step")
        self.options = options
        self.signature = inspect.signature(fn)
        kinds = {n: _special(p.annotation) for n, p in self.signature.parameters.items()}
        #: parameters the runner fills with the pipeline's store (annotated ``Store``)
        self.injected = {n for n, kind in kinds.items() if kind == "Store"}
        #: parameters that take an upstream output's record, not its value (annotated
        #: ``ModelVersion`` or ``DatasetVersion``)
        self.references = {
            n: k for n, k in kinds.items() if k in ("ModelVersion", "DatasetVersion")
        }
        #: what a call inside a pipeline binds: every parameter but the injected ones
        self.call_signature = self.signature.replace(
            parameters=[p for n, p in self.signature.parameters.items() if n not in self.injected]
        )
        functools.update_wrapper(self, fn)

    def call_arguments(
        self, arguments: Mapping[str, Any], injected: Any
    ) -> tuple[tuple[Any, ...], dict[str, Any]]:
        """``(args, kwargs)`` that call the function with the bound ``arguments`` (nodes
        replaced by values) and ``injected`` for the injected parameters."""
        args: list[Any] = []
        kwargs: dict[str, Any] = {}
        for name, parameter in self.signature.parameters.items():
            if name in self.injected:
                kwargs[name] = injected
            elif name not in arguments:
                continue
            elif parameter.kind is parameter.POSITIONAL_ONLY:
                args.append(arguments[name])
            elif parameter.kind is parameter.VAR_POSITIONAL:
                args.extend(arguments[name])
            elif parameter.kind is parameter.VAR_KEYWORD:
                kwargs.update(arguments[name])
            else:
                kwargs[name] = arguments[name]
        return tuple(args), kwargs

    @functools.cached_property
    def code_hash(self) -> str:
        return code_hash(self.fn, self.options.version)

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        graph = _building.get()
        if graph is None:
            return self.fn(*args, **kwargs)
        return graph.add(self, args, kwargs)

    def __repr__(self) -> str:
        return f"Step({self.name!r})"

    def __reduce__(self) -> Any:
        # By reference: a worker process imports the step's module (or loads its file).
        # A step that cannot be found again by name (defined in a function, or in a
        # notebook, whose "file" is not on disk) goes by value: cloudpickle (Ray) ships
        # the function itself; the standard pickle (local processes) refuses it clearly.
        fn = self.fn
        path = _file_of(fn)
        if "<locals>" in fn.__qualname__ or (
            fn.__module__ == "__main__" and (path is None or not Path(path).is_file())
        ):
            return (Step, (fn, self.name, self.options))
        return (_import_step, (fn.__module__, fn.__qualname__, path, _root_of(fn)))


def _special(annotation: Any) -> str | None:
    """``"Store"``, ``"ModelVersion"`` or ``"DatasetVersion"`` when a parameter is annotated
    with that loopwise class (also as text, ``lw.Store`` or ``Store | None``), else None."""
    if annotation is inspect.Parameter.empty:
        return None
    if isinstance(annotation, str):
        text = annotation.replace("Optional[", "").replace("]", "")
        names = {part.strip().rsplit(".", 1)[-1] for part in text.split("|")} - {"None"}
        name = names.pop() if len(names) == 1 else None
    else:
        module = getattr(annotation, "__module__", "") or ""
        name = getattr(annotation, "__name__", None) if module.startswith("loopwise") else None
    return name if name in ("Store", "ModelVersion", "DatasetVersion") else None


def _file_of(fn: Callable[..., Any]) -> str | None:
    """The file of a function whose module cannot be imported by name (a script, or a file
    loaded by :func:`load_pipeline`), else None."""
    if fn.__module__ == "__main__" or fn.__module__.startswith(_FILE_MODULE):
        try:
            return str(Path(inspect.getfile(fn)).resolve())
        except (OSError, TypeError):
            return None
    return None


def _root_of(fn: Callable[..., Any]) -> str | None:
    """The folder a worker must have on ``sys.path`` to import ``fn``'s module (``/repo``
    for ``tests.pipelines.steps`` in ``/repo/tests/pipelines/steps.py``), else None."""
    import sys

    file = getattr(sys.modules.get(fn.__module__), "__file__", None)
    if not file:
        return None
    where = Path(file).absolute()
    depth = fn.__module__.count(".") + (where.name == "__init__.py")
    return str(where.parents[depth]) if depth < len(where.parents) else None


def _import_step(
    module: str, qualname: str, path: str | None = None, root: str | None = None
) -> Step:
    import importlib
    import sys

    loaded = sys.modules.get(module)
    if path is not None and not (
        loaded is not None
        and getattr(loaded, "__file__", None)
        and Path(loaded.__file__).resolve() == Path(path)
    ):
        # a script: this process's __main__ is another program (a Ray worker's is Ray's)
        found: Any = load_file(Path(path))
    elif loaded is not None:
        found = loaded
    else:
        try:
            found = importlib.import_module(module)
        except ModuleNotFoundError:
            # the caller imported it from a folder this worker does not have on sys.path
            # (pytest's rootdir, a notebook's sys.path.append): add it and try again
            if root is None or root in sys.path:
                raise
            sys.path.append(root)
            found = importlib.import_module(module)
    for part in qualname.split("."):
        found = getattr(found, part)
    if not isinstance(found, Step):
        raise InvalidInput(f"{module}.{qualname} is not a step (decorate it with @lw.step).")
    return found


@overload
def step(fn: Callable[..., Any], /) -> Step: ...


@overload
def step(
    *,
    name: str | None = None,
    version: str | None = None,
    cache: bool = True,
    retries: int = 0,
    resources: Mapping[str, float] | None = None,
    output: str | None = None,
) -> Callable[[Callable[..., Any]], Step]: ...


def step(
    fn: Callable[..., Any] | None = None,
    /,
    *,
    name: str | None = None,
    version: str | None = None,
    cache: bool = True,
    retries: int = 0,
    resources: Mapping[str, float] | None = None,
    output: str | None = None,
) -> Step | StepDecorator:
    """Make ``fn`` a pipeline step: ``@lw.step`` or ``@lw.step(retries=1, ...)``.

    Inside a pipeline a call builds the graph; outside one it runs ``fn``. See
    :class:`StepOptions` for the options.
    """
    if not isinstance(retries, int) or isinstance(retries, bool) or not 0 <= retries <= 100:
        raise InvalidInput(f"retries must be an integer from 0 to 100, got {retries!r}.")
    if version is not None and not isinstance(version, str):
        version = str(version)
    resources = dict(resources or {})
    for key, amount in resources.items():
        if key not in ("cpus", "gpus", "memory"):
            raise InvalidInput(
                f"Unknown resource {key!r}: a step may ask for 'cpus', 'gpus' and 'memory'."
            )
        if isinstance(amount, bool) or not isinstance(amount, int | float) or not amount >= 0:
            raise InvalidInput(f"Resource {key!r} must be a number >= 0, got {amount!r}.")
    if output is not None and "{" not in output:
        check_name(output, "Output")
    options = StepOptions(version, bool(cache), retries, resources, output)

    def wrap(function: Callable[..., Any]) -> Step:
        if not callable(function):
            raise InvalidInput(f"@step decorates a function, got {function!r}.")
        return Step(function, name or function.__name__, options)

    return wrap(fn) if fn is not None else wrap


@dataclass(eq=False)
class Node:
    """A step call in a graph: the promise of its output.

    ``key`` is unique in the graph (the step's name, then ``name-2``, ``name-3`` for more
    calls of the same step); ``args`` and ``kwargs`` are as bound, nodes included.
    """

    key: str
    step: Step
    args: tuple[Any, ...]
    kwargs: dict[str, Any]
    arguments: dict[str, Any]  # parameter name -> value (nodes included), defaults applied

    def __repr__(self) -> str:
        return f"<output of step {self.key!r}>"

    def __bool__(self) -> bool:
        raise InvalidInput(
            f"The output of step {self.key!r} is not known while the pipeline is built: "
            "branch inside a step, not in the pipeline function."
        )

    def __iter__(self) -> Iterator[Any]:
        raise InvalidInput(
            f"The output of step {self.key!r} is not known while the pipeline is built: "
            "return several values as one (a tuple or dict) and take it apart in a step."
        )

    @property
    def upstream(self) -> list[Node]:
        """The nodes this one takes as inputs, in argument order, without repeats."""
        found: dict[int, Node] = {}
        for value in self.arguments.values():
            for node in nodes_in(value):
                found.setdefault(id(node), node)
        return list(found.values())


def nodes_in(value: Any) -> Iterator[Node]:
    """Every node in ``value``, looking inside lists, tuples, sets and dict values."""
    if isinstance(value, Node):
        yield value
    elif isinstance(value, list | tuple | set | frozenset):
        for item in value:
            yield from nodes_in(item)
    elif isinstance(value, dict):
        for item in value.values():
            yield from nodes_in(item)


def substitute(value: Any, values: Mapping[str, Any]) -> Any:
    """``value`` with every node replaced by ``values[node.key]``."""
    if isinstance(value, Node):
        return values[value.key]
    if isinstance(value, list | tuple | set | frozenset):
        items = [substitute(item, values) for item in value]
        if isinstance(value, tuple) and hasattr(value, "_fields"):  # a namedtuple
            return type(value)(*items)
        return type(value)(items)
    if isinstance(value, dict):
        return type(value)((k, substitute(v, values)) for k, v in value.items())
    return value


class Graph:
    """The steps of one pipeline run, in the order they were called (which is a
    topological order: a node can only take nodes made before it)."""

    def __init__(self) -> None:
        self.nodes: dict[str, Node] = {}
        self._counts: dict[str, int] = {}

    def add(self, step: Step, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Node:
        try:
            bound = step.call_signature.bind(*args, **kwargs)
        except TypeError as exc:
            raise InvalidInput(f"Step {step.name!r} called with wrong arguments: {exc}") from exc
        bound.apply_defaults()
        arguments = dict(bound.arguments)
        for value in arguments.values():
            for node in nodes_in(value):
                if self.nodes.get(node.key) is not node:
                    raise InvalidInput(
                        f"Step {step.name!r} takes the output of step {node.key!r} from "
                        "another pipeline: a pipeline's steps take only its own outputs."
                    )
        count = self._counts.get(step.name, 0) + 1
        self._counts[step.name] = count
        key = step.name if count == 1 else f"{step.name}-{count}"
        node = Node(key, step, args, kwargs, arguments)
        self.nodes[key] = node
        return node

    def downstream(self) -> dict[str, list[str]]:
        """Node key -> the keys of the nodes that take its output."""
        found: dict[str, list[str]] = {key: [] for key in self.nodes}
        for node in self.nodes.values():
            for up in node.upstream:
                found[up.key].append(node.key)
        return found


@contextmanager
def building(graph: Graph) -> Iterator[Graph]:
    """Step calls inside the block add nodes to ``graph`` instead of running."""
    token = _building.set(graph)
    try:
        yield graph
    finally:
        _building.reset(token)


class Pipeline:
    """A function made a pipeline by :func:`pipeline`: calling it builds its graph."""

    def __init__(self, fn: Callable[..., Any], name: str) -> None:
        self.fn = fn
        self.name = check_name(name, "Pipeline")
        self.signature = inspect.signature(fn)
        functools.update_wrapper(self, fn)

    @property
    def entrypoint(self) -> str:
        """``module:qualname``, how a later process (resume, the scheduler, the CLI) finds
        this pipeline again."""
        path = _file_of(self.fn)
        module = path if path is not None else self.fn.__module__
        return f"{module}:{self.fn.__qualname__}"

    def parameters(self, params: Mapping[str, Any] | None) -> dict[str, Any]:
        """``params`` checked against the function's signature, defaults filled in."""
        params = dict(params or {})
        try:
            bound = self.signature.bind(**params)
        except TypeError as exc:
            expected = ", ".join(self.signature.parameters) or "none"
            raise InvalidInput(
                f"Pipeline {self.name!r} got wrong parameters ({exc}); its parameters: {expected}."
            ) from exc
        bound.apply_defaults()
        return dict(bound.arguments)

    def build(self, params: Mapping[str, Any]) -> tuple[Graph, Any]:
        """The graph and the return value (with nodes) of the pipeline for ``params``."""
        if _building.get() is not None:
            raise InvalidInput(
                f"Pipeline {self.name!r} called while another pipeline is built: call its "
                "steps instead, or run it with lw.run_pipeline."
            )
        graph = Graph()
        with building(graph):
            try:
                result = self.fn(**params)
            except LoopwiseError:
                raise
            except Exception as exc:  # the user's code, not a step: no run exists yet
                raise InvalidInput(
                    f"Pipeline {self.name!r} failed while building its graph (the pipeline "
                    f"function runs with the parameters before any step): "
                    f"{type(exc).__name__}: {exc}"
                ) from exc
        if not graph.nodes:
            raise InvalidInput(
                f"Pipeline {self.name!r} calls no step: decorate the functions it calls "
                "with @lw.step."
            )
        return graph, result

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        raise InvalidInput(
            f"Run pipeline {self.name!r} with lw.run_pipeline({self.fn.__name__}, "
            "params={...}): calling it directly would run nothing."
        )

    def __repr__(self) -> str:
        return f"Pipeline({self.name!r})"


def pipeline(
    fn: Callable[..., Any] | None = None, /, *, name: str | None = None
) -> Pipeline | PipelineDecorator:
    """Make ``fn`` a pipeline: ``@lw.pipeline`` or ``@lw.pipeline(name="churn-train")``.

    Run it with :func:`loopwise.run_pipeline`; its parameters are ``fn``'s parameters.
    """

    def wrap(function: Callable[..., Any]) -> Pipeline:
        if not callable(function):
            raise InvalidInput(f"@pipeline decorates a function, got {function!r}.")
        return Pipeline(function, name or function.__name__.replace("_", "-"))

    return wrap(fn) if fn is not None else wrap


def load_file(path: Path) -> Any:
    """The module of the Python file ``path``, loaded once per process under a name
    derived from its path (so steps pickled by reference find it again in a worker)."""
    import importlib.util
    import sys

    path = path.resolve()
    if not path.is_file():
        raise InvalidInput(f"Pipeline file {str(path)!r} does not exist.")
    name = f"{_FILE_MODULE}{hashlib.sha256(str(path).encode()).hexdigest()[:12]}"
    module = sys.modules.get(name)
    if module is None:
        if str(path.parent) not in sys.path:
            sys.path.insert(0, str(path.parent))  # its own imports, as `python file.py` has
        spec = importlib.util.spec_from_file_location(name, path)
        if spec is None or spec.loader is None:
            raise InvalidInput(f"Cannot load {str(path)!r} as Python.")
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        try:
            spec.loader.exec_module(module)
        except BaseException:
            del sys.modules[name]
            raise
    return module


def load_pipeline(entrypoint: str) -> Pipeline:
    """The pipeline at ``module:qualname`` or ``path/to/file.py:qualname``."""
    import importlib

    module_name, sep, qualname = entrypoint.rpartition(":")
    if not sep or not module_name or not qualname:
        raise InvalidInput(
            f"Pipeline {entrypoint!r} is not 'module:function' or 'file.py:function'."
        )
    try:
        if module_name.endswith(".py"):
            module = load_file(Path(module_name))
        else:
            module = importlib.import_module(module_name)
    except ImportError as exc:
        raise InvalidInput(f"Cannot import pipeline {entrypoint!r}: {exc}") from exc
    found: Any = module
    for part in qualname.split("."):
        found = getattr(found, part, None)
        if found is None:
            raise InvalidInput(f"{module_name} has no {qualname!r}.")
    if not isinstance(found, Pipeline):
        raise InvalidInput(
            f"{entrypoint} is not a pipeline: decorate the function with @lw.pipeline."
        )
    return found
