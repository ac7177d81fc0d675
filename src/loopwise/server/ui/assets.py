"""The UI's static files: served under their content hash, cached for a year.

Why a hash in the URL: a browser may keep a file forever (``immutable``) only if a new
version gets a new URL. Each file's URL is ``/static/<first 12 hex of its sha256>/<name>``;
a URL with another hash (an older release, a typo) is a 404, never a stale file. The
hashes are computed once per process from the files shipped in the package.

The vendored libraries (htmx, uPlot) are listed in ``static/MANIFEST.json`` with their
version, npm tarball, sha256 and license; ``tests/server/test_ui_assets.py`` checks the sums.
"""

from __future__ import annotations

import hashlib
from functools import cache
from pathlib import Path
from typing import Any

from starlette.exceptions import HTTPException
from starlette.responses import Response
from starlette.staticfiles import StaticFiles

#: The folder of the UI's static files (package data).
STATIC_DIR = Path(__file__).resolve().parent / "static"
#: Where the app mounts :class:`HashedStaticFiles`.
STATIC_PREFIX = "/static"
#: A year: the longest lifetime browsers honour.
CACHE_CONTROL = "public, max-age=31536000, immutable"
_DIGEST_CHARS = 12


@cache
def digests() -> dict[str, str]:
    """The short content hash of each static file, by its path relative to ``static/``."""
    return {
        path.relative_to(STATIC_DIR).as_posix(): hashlib.sha256(path.read_bytes()).hexdigest()[
            :_DIGEST_CHARS
        ]
        for path in sorted(STATIC_DIR.rglob("*"))
        if path.is_file()
    }


def asset_url(name: str) -> str:
    """The URL of static file ``name`` with its content hash (KeyError for an unknown file,
    so a template naming a missing file fails in tests, not in a browser)."""
    return f"{STATIC_PREFIX}/{digests()[name]}/{name}"


class HashedStaticFiles(StaticFiles):
    """Static files at ``<hash>/<name>``: the hash must be the file's current one."""

    def __init__(self) -> None:
        super().__init__(directory=STATIC_DIR)

    async def get_response(self, path: str, scope: Any) -> Response:
        """The file, with long cache headers, when ``path`` carries its current hash."""
        digest, _, name = path.partition("/")
        if not name or digests().get(name) != digest:
            raise HTTPException(404, f"No static file {path!r} in this release.")
        response = await super().get_response(name, scope)
        if response.status_code == 200:
            response.headers["cache-control"] = CACHE_CONTROL
            response.headers["x-content-type-options"] = "nosniff"
        return response
