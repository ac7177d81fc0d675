"""Reading the declarative documents people write by hand: policies, schemas, endpoint
and monitor configs.

One reader, so every such file fails the same way: a missing file, invalid YAML, or a
document its checker refuses each name the file, and the checker's key-path message
(``variants[1].weight: ...``) is kept whole.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

from loopwise.errors import InvalidInput, LoopwiseError

T = TypeVar("T")


def load_document(
    path: str | os.PathLike[str],
    what: str,
    build: Callable[[Any], T],
    *,
    missing: type[LoopwiseError] = InvalidInput,
    hint: str = "check the path",
) -> T:
    """Parse the YAML (or JSON) file at ``path`` and give the document to ``build``.

    ``what`` names the kind of file in messages ("monitor config"); a missing file raises
    ``missing`` with ``hint``; an empty file is an empty mapping.
    """
    import yaml

    source = Path(path)
    if not source.is_file():
        raise missing(f"{what} {str(source)!r} does not exist; {hint}.")
    try:
        document = yaml.safe_load(source.read_text(encoding="utf-8"))
    except yaml.YAMLError as e:
        raise InvalidInput(f"{what} {str(source)!r} is not valid YAML: {e}") from e
    try:
        return build({} if document is None else document)
    except InvalidInput as e:
        raise InvalidInput(f"{what} {str(source)!r}: {e}") from e
