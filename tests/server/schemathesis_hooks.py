"""Schemathesis hooks for the server's fuzz run (loaded through ``SCHEMATHESIS_HOOKS``).

The upload routes declare their bodies honestly (a dataset version and a frame of
predictions as Parquet, a model package as a tar archive); schemathesis has no serializer
for those media types, so their generated bodies go on the wire as raw bytes, as the
``application/octet-stream`` serializer sends them. The server must answer each with a 4xx.
"""

from __future__ import annotations

import schemathesis

for media_type in ("application/vnd.apache.parquet", "application/x-tar"):
    schemathesis.serializer.alias(media_type, "application/octet-stream")
