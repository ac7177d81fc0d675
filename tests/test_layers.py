"""The layering rules of docs/architecture.md, held by reading every module's imports.

Each rule is checked over every ``import`` statement of every module under src/loopwise,
including imports inside functions (a lazy import is still a dependency) and under
``TYPE_CHECKING``. A rule that must bend names the exact (importer, imported) pair in
:data:`EXCEPTIONS` with the reason, which docs/architecture.md repeats.
"""

from __future__ import annotations

import ast
from dataclasses import dataclass
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[1] / "src"
PACKAGE = SRC / "loopwise"

#: The loop, bottom first: a module may import from its own layer and the layers before it.
#: "core" is the top-level modules every layer may use (settings, errors, time, ids,
#: references); "reports" and "auth" are kits that know no domain.
LAYERS = (
    "core",
    "store",
    "reports",
    "auth",
    "scaffold",
    "tracking",
    "data",
    "evaluation",
    "registry",
    "predictions",
    "serving",
    "batch",
    "loadtest",
    "monitoring",
    "pipelines",
    "interop",
    "client",
    "server",
    "cli",
)

#: Top-level modules that are core; ``context`` binds the default store (a facade).
CORE = {
    "_version",
    "config",
    "errors",
    "clock",
    "ids",
    "identity",
    "refs",
    "documents",
    "param_errors",
}

#: The public facades: they bind the default store (``context.get_store()``) and the
#: active run for the module-level API. Only they and the CLI may import ``context``, the
#: root package or one another.
FACADES = {
    "loopwise",
    "loopwise.__main__",
    "loopwise.context",
    "loopwise.tracking.fluent",
    "loopwise.data.api",
    "loopwise.registry.api",
    "loopwise.registry.autolog",
    "loopwise.predictions.api",
    "loopwise.batch.api",
    "loopwise.monitoring.api",
    "loopwise.pipelines.api",
}

#: (importer, imported) pairs allowed to break a rule, with the reason.
EXCEPTIONS: dict[tuple[str, str], str] = {}


@dataclass(frozen=True)
class Import:
    importer: str
    imported: str
    line: int

    def __str__(self) -> str:
        path = self.importer.replace(".", "/")
        return f"{path}.py:{self.line} imports {self.imported}"


def module_name(path: Path) -> str:
    parts = list(path.relative_to(SRC).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def imports_of(path: Path, importer: str | None = None) -> list[Import]:
    """Every loopwise module ``path`` (the module ``importer``) imports: ``from a import b``
    counts ``a.b`` when ``b`` is a module, else ``a``."""
    importer = importer or module_name(path)
    is_package = path.name == "__init__.py"
    found = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found += [Import(importer, a.name, node.lineno) for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:  # relative: resolve against the importer's package
                anchor = importer.split(".")
                anchor = anchor[: len(anchor) - node.level + (1 if is_package else 0)]
                base = ".".join([*anchor, base] if base else anchor)
            for alias in node.names:
                candidate = f"{base}.{alias.name}"
                found.append(
                    Import(importer, candidate if is_module(candidate) else base, node.lineno)
                )
    return [i for i in found if i.imported == "loopwise" or i.imported.startswith("loopwise.")]


def is_module(dotted: str) -> bool:
    path = SRC / dotted.replace(".", "/")
    return path.with_suffix(".py").exists() or (path / "__init__.py").exists()


def layer(module: str) -> str:
    parts = module.split(".")
    if len(parts) == 1:
        return "facade"
    top = parts[1]
    if top in CORE:
        return "core"
    if top in ("context", "__main__"):
        return "facade"
    if top not in LAYERS:
        raise AssertionError(f"{module}: no layer for package {top!r}; add it to LAYERS")
    return top


def all_imports() -> list[Import]:
    return [i for path in sorted(PACKAGE.rglob("*.py")) for i in imports_of(path)]


def violations(imports: list[Import]) -> list[str]:
    """Every import that breaks a rule, as text naming the file, line and rule."""
    found = []
    for imp in imports:
        if (imp.importer, imp.imported) in EXCEPTIONS:
            continue
        source, target = layer(imp.importer), layer(imp.imported)
        if imp.importer in FACADES or source == "cli":
            if target == "cli" and source != "cli" and imp.importer != "loopwise.__main__":
                found.append(f"{imp}: only the CLI imports the CLI")
            continue
        if imp.imported in FACADES:
            found.append(
                f"{imp}: a service takes the Store it works on; only the facades and the "
                "CLI bind the default store (context) or call the module-level API"
            )
        elif target == "facade":
            found.append(f"{imp}: only the facades and the CLI import {imp.imported}")
        elif source == "store" and target != "core" and target != "store":
            found.append(f"{imp}: the store imports no domain module")
        elif LAYERS.index(target) > LAYERS.index(source):
            found.append(
                f"{imp}: {source} sits before {target} in the loop "
                f"({' < '.join(LAYERS[1:-1])}); move the shared piece down"
            )
    return found


def test_every_package_has_a_layer_and_states_its_job() -> None:
    for init in sorted(PACKAGE.glob("*/__init__.py")):
        name = module_name(init)
        if name.endswith("migrations"):
            continue
        layer(name)
        doc = ast.get_docstring(ast.parse(init.read_text(encoding="utf-8")))
        assert doc, f"{init.relative_to(SRC)} has no docstring saying what the package is for"


def test_the_tree_keeps_the_layering_rules() -> None:
    assert violations(all_imports()) == []


def test_the_exceptions_are_still_needed() -> None:
    present = {(i.importer, i.imported) for i in all_imports()}
    stale = [pair for pair in EXCEPTIONS if pair not in present]
    assert not stale, f"remove these exceptions, the imports are gone: {stale}"


@pytest.mark.parametrize(
    ("importer", "imported", "rule"),
    [
        ("loopwise.store.tables", "loopwise.tracking.records", "store imports no domain"),
        ("loopwise.tracking.runs", "loopwise.registry.models", "sits before"),
        ("loopwise.serving.live_model", "loopwise.context", "takes the Store"),
        ("loopwise.batch.scoring", "loopwise.registry.api", "takes the Store"),
        ("loopwise.monitoring.engine.runner", "loopwise.cli.main", "sits before"),
        ("loopwise.registry.models", "loopwise", "only the facades"),
        ("loopwise.data.api", "loopwise.cli.render", "only the CLI imports the CLI"),
    ],
)
def test_a_wrong_import_is_caught(importer: str, imported: str, rule: str) -> None:
    (found,) = violations([Import(importer, imported, 1)])
    assert rule in found


def test_allowed_imports_pass() -> None:
    allowed = [
        Import("loopwise.monitoring.engine.runner", "loopwise.registry.models", 1),
        Import("loopwise.registry.api", "loopwise.context", 1),
        Import("loopwise.cli.main", "loopwise.context", 1),
        Import("loopwise.store.database", "loopwise.config", 1),
        Import("loopwise.serving.app", "loopwise.auth.tokens", 1),
    ]
    assert violations(allowed) == []


def test_imports_are_read_from_function_bodies_too(tmp_path: Path) -> None:
    code = "def f():\n    from loopwise.registry import api\n    return api\n"
    target = tmp_path / "probe.py"
    target.write_text(code, encoding="utf-8")
    found = imports_of(target, "loopwise.serving.probe")
    assert [i.imported for i in found] == ["loopwise.registry.api"]
    assert "takes the Store" in violations(found)[0]
