"""What the run page shows of each artifact: text and JSON inline, images as images, HTML
reports in a sandboxed frame, anything else as a download link.

Previews read at most :data:`MAX_PREVIEW_BYTES` of a file, and at most
:data:`MAX_PREVIEWS` files are read per page, so a run with a large log or thousands of
files still opens at once. The file itself is served by the UI's file route with
``Content-Security-Policy: sandbox``; the frame around an HTML report is sandboxed too
(no scripts, no same-origin access), so a report cannot act as the UI.
"""

from __future__ import annotations

import json
import mimetypes
from dataclasses import dataclass
from urllib.parse import quote

from loopwise.store import Store
from loopwise.tracking import run_artifacts
from loopwise.tracking.run_artifacts import ArtifactInfo

#: Bytes of a text or JSON file shown inline.
MAX_PREVIEW_BYTES = 64 * 1024
#: Files previewed on one page (the rest are listed with a link).
MAX_PREVIEWS = 20
_TEXT_SUFFIXES = frozenset(
    {".txt", ".log", ".md", ".csv", ".tsv", ".yaml", ".yml", ".toml", ".py", ".cfg", ".ini"}
)
_IMAGE_SUFFIXES = frozenset({".png", ".jpg", ".jpeg", ".gif", ".webp", ".svg"})


@dataclass(frozen=True)
class Preview:
    """One artifact as listed: ``kind`` is text, json, image, html or file; ``text`` the
    shown part of a text or JSON file; ``truncated`` when the file was longer."""

    path: str
    size: int
    url: str
    kind: str
    text: str | None = None
    truncated: bool = False


def file_url(run_id: str, path: str) -> str:
    """The UI's URL of a run's file."""
    return f"/runs/{quote(run_id, safe='')}/files/{quote(path)}"


def kind_of(path: str) -> str:
    """How a file is previewed, from its name."""
    lower = path.lower()
    suffix = lower[lower.rfind(".") :] if "." in lower.rsplit("/", 1)[-1] else ""
    if suffix == ".json":
        return "json"
    if suffix in {".html", ".htm"}:
        return "html"
    if suffix in _IMAGE_SUFFIXES:
        return "image"
    if suffix in _TEXT_SUFFIXES or (mimetypes.guess_type(path)[0] or "").startswith("text/"):
        return "text"
    return "file"


def _head(store: Store, run_id: str, path: str) -> tuple[bytes, bool]:
    _, stream = run_artifacts.open_artifact(store, run_id, path)
    with stream:
        data = stream.read(MAX_PREVIEW_BYTES + 1)
    return data[:MAX_PREVIEW_BYTES], len(data) > MAX_PREVIEW_BYTES


def _shown_text(kind: str, data: bytes, truncated: bool) -> str:
    text = data.decode("utf-8", "replace")
    if kind == "json" and not truncated:
        try:
            return json.dumps(json.loads(text), indent=2, ensure_ascii=False)
        except ValueError:
            return text
    return text


def previews(store: Store, run_id: str, files: list[ArtifactInfo]) -> list[Preview]:
    """The artifacts of a run with their previews (the first :data:`MAX_PREVIEWS` read)."""
    shown: list[Preview] = []
    read = 0
    for info in files:
        kind = kind_of(info.path)
        url = file_url(run_id, info.path)
        if kind in {"text", "json"} and read < MAX_PREVIEWS:
            read += 1
            data, truncated = _head(store, run_id, info.path)
            text = _shown_text(kind, data, truncated)
            shown.append(Preview(info.path, info.size, url, kind, text, truncated))
        else:
            shown.append(Preview(info.path, info.size, url, kind))
    return shown
