"""Schemathesis hooks for the prediction app's conformance run (loaded through
``SCHEMATHESIS_HOOKS``): what the OpenAPI document cannot say, told to the generator.

JSON Schema cannot require the columns of ``{"inputs": {"col": [...], ...}}`` to have one
length, so the generator would build columns of different lengths as "valid" bodies, which
the app rightly refuses. Those bodies are left out (in every phase: ``filter_case`` applies
to the coverage phase's cases too); everything else is generated freely.
"""

from __future__ import annotations

from typing import Any

import schemathesis


@schemathesis.hook
def filter_case(context: Any, case: Any) -> bool:
    body = case.body
    inputs = body.get("inputs") if isinstance(body, dict) else None
    if not isinstance(inputs, dict):
        return True
    lengths = {len(v) if isinstance(v, list) else 1 for v in inputs.values()}
    return len(lengths) <= 1
