"""``make demo``: run the examples one after another on a store of their own, reset first.

Why a store of its own: the examples register models, log predictions and raise alerts
under fixed names, so on a store that already holds an earlier demo they report that run's
results too (monitoring windows listed twice, the first run's alerts and retrain action,
serving accuracy counted over both runs) and still exit 0. Each demo therefore starts from
an empty ``./.loopwise-demo`` and says so. The user's own store is never read, written or
deleted: the examples get the demo's store through ``LOOPWISE_STORE_URL`` and
``LOOPWISE_ARTIFACTS_URL``, which win over ``loopwise.toml`` and the ``./.loopwise``
default, and a folder is deleted only when it holds the marker file the demo wrote into
it (one that merely shares the name is refused, not deleted).

    python examples/demo.py                       # every example, as make demo runs them
    python examples/demo.py monitoring serving    # only those, on a fresh store too
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

EXAMPLES = Path(__file__).resolve().parent
SCRIPTS = (
    "quickstart",
    "data_checks",
    "model_registry",
    "serving",
    "monitoring",
    "pipelines",
    "continuous_training",
)
STORE = Path(".loopwise-demo")  # in the working directory, beside the default ./.loopwise
MARKER = "MADE-BY-LOOPWISE-DEMO.txt"
MARKER_TEXT = (
    "This folder is the store of `make demo` (examples/demo.py). Each demo deletes it and\n"
    "starts again, so every run shows its own results. Your own store is elsewhere\n"
    "(./.loopwise by default); the demo never touches it.\n"
)


def chosen(names: list[str]) -> list[str]:
    """The examples to run: all of them, or those named (with or without ``.py``)."""
    wanted = [name.removesuffix(".py") for name in names] or list(SCRIPTS)
    unknown = [name for name in wanted if name not in SCRIPTS]
    if unknown:
        raise SystemExit(
            f"demo: no example named {unknown[0]!r}; choose among {', '.join(SCRIPTS)}."
        )
    return wanted


def reset(store: Path) -> None:
    """Empty the demo's store, saying so; refuse a folder the demo did not make."""
    if store.exists() or store.is_symlink():
        if not (store / MARKER).is_file() or store.is_symlink():
            raise SystemExit(
                f"demo: ./{store} exists but was not made by the demo (no {MARKER} in it), "
                "so it is left alone. Move or delete it yourself, then run the demo again."
            )
        print(
            f"demo: resetting its own store at ./{store} (the previous demo's runs, models, "
            "predictions and alerts; your own store is not touched)",
            flush=True,
        )
        shutil.rmtree(store)
    else:
        print(
            f"demo: creating its own store at ./{store} (your own store is not touched)",
            flush=True,
        )
    store.mkdir()
    (store / MARKER).write_text(MARKER_TEXT, encoding="utf-8")


def main(names: list[str]) -> int:
    scripts = chosen(names)
    reset(STORE)
    root = STORE.resolve()
    env = os.environ | {
        "LOOPWISE_STORE_URL": f"sqlite:///{root / 'loopwise.db'}",
        "LOOPWISE_ARTIFACTS_URL": str(root / "artifacts"),
    }
    for script in scripts:
        print(f"\n== examples/{script}.py", flush=True)
        code = subprocess.run([sys.executable, str(EXAMPLES / f"{script}.py")], env=env).returncode
        if code:
            print(f"demo: examples/{script}.py failed (exit {code}); its store is ./{STORE}")
            return code
    print(
        f"\ndemo: done. Its store stays in ./{STORE} until the next demo; to look at it, "
        f"export LOOPWISE_STORE_URL=sqlite:///{STORE}/loopwise.db "
        f"LOOPWISE_ARTIFACTS_URL={STORE}/artifacts (then e.g. loopwise runs list -e breast-cancer)"
    )
    return browse(env)


def browse(env: dict[str, str]) -> int:
    """In a terminal, serve the demo's store (the web UI and the REST API) until Ctrl+C;
    elsewhere (CI, a pipe) print the command that does."""
    command = [sys.executable, "-m", "loopwise", "server", "--port", str(free_port(5000))]
    if not (sys.stdin.isatty() and sys.stdout.isatty()):
        port = command[-1]
        print(f"demo: to browse it, run: loopwise server --port {port} (with the exports above)")
        return 0
    print(f"demo: browse it at http://127.0.0.1:{command[-1]}/ (Ctrl+C stops the server)")
    try:
        return subprocess.run(command, env=env).returncode
    except KeyboardInterrupt:
        return 0


def free_port(preferred: int) -> int:
    """``preferred`` when nothing listens on it, else a free port."""
    import socket

    for port in (preferred, 0):
        with socket.socket() as sock:
            try:
                sock.bind(("127.0.0.1", port))
            except OSError:
                continue
            return sock.getsockname()[1]
    raise OSError("no free port on 127.0.0.1")


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
