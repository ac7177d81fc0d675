"""The promotion decisions stored for a model: what gates each candidate went through.

:func:`~loopwise.registry.promotion.promote` stores every decision, passed or refused, with
its checks and policy; this reads them back, so a trace of a prediction (or a person) can
say why the version that answered was allowed in, and which candidates were kept out.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import select

from loopwise.clock import EPOCH
from loopwise.store import Store
from loopwise.store.tables import promotion_decisions, registered_models


@dataclass(frozen=True)
class PromotionRecord:
    """A stored promotion decision for a version: the gates it was put through, passed or
    not, the policy behind them, and who decided when."""

    model: str
    alias: str
    candidate_version: int
    current_version: int | None
    passed: bool
    checks: tuple[dict[str, Any], ...]
    policy: dict[str, Any]
    decided_at: datetime
    decided_by: str | None

    @property
    def reasons(self) -> list[str]:
        """The message of each failed check (empty when the decision passed)."""
        return [str(c.get("message")) for c in self.failed_checks]

    @property
    def failed_checks(self) -> list[dict[str, Any]]:
        """The checks that refused the candidate, each with its gate ``name`` (such as
        ``threshold:roc_auc``), the observed ``value``, the ``limit``, the ``slice``
        concerned and the ``message`` that says by how much it failed."""
        return [dict(c) for c in self.checks if not c.get("passed")]

    def summary(self) -> str:
        passed = sum(bool(c.get("passed")) for c in self.checks)
        verdict = "promoted to" if self.passed else "refused for"
        holder = f"version {self.current_version}" if self.current_version is not None else "none"
        return (
            f"{verdict} @{self.alias} at {_iso(self.decided_at)} by {self.decided_by or '?'} "
            f"({passed}/{len(self.checks)} checks passed; holder before: {holder})"
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "model": self.model,
            "alias": self.alias,
            "candidate_version": self.candidate_version,
            "current_version": self.current_version,
            "passed": self.passed,
            "reasons": self.reasons,
            "failed_checks": self.failed_checks,
            "checks": [dict(c) for c in self.checks],
            "policy": self.policy,
            "decided_at": self.decided_at.isoformat(),
            "decided_by": self.decided_by,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> PromotionRecord:
        """The record :meth:`to_dict` wrote (a server's answer); the failed checks and
        reasons derive from ``checks``."""
        return cls(
            model=data["model"],
            alias=data["alias"],
            candidate_version=int(data["candidate_version"]),
            current_version=data.get("current_version"),
            passed=bool(data["passed"]),
            checks=tuple(dict(c) for c in data.get("checks") or ()),
            policy=dict(data.get("policy") or {}),
            decided_at=datetime.fromisoformat(data["decided_at"]),
            decided_by=data.get("decided_by"),
        )


def promotion_history(
    store: Store, name: str, *, version: int | None = None, alias: str | None = None
) -> list[PromotionRecord]:
    """The promotion decisions stored for model ``name`` (for candidate ``version`` and
    ``alias`` only, when given), oldest first; empty for a model never put through a
    policy."""
    d = promotion_decisions.c
    query = (
        select(promotion_decisions)
        .join(registered_models, registered_models.c.id == d.model_id)
        .where(registered_models.c.name == name)
        .order_by(d.decided_at, d.id)
    )
    if version is not None:
        query = query.where(d.candidate_version == version)
    if alias is not None:
        query = query.where(d.alias == alias)
    with store.db.read() as conn:
        rows = conn.execute(query).all()
    return [
        PromotionRecord(
            model=name,
            alias=r.alias,
            candidate_version=r.candidate_version,
            current_version=r.current_version,
            passed=bool(r.passed),
            checks=tuple(json.loads(r.checks)),
            policy=json.loads(r.policy),
            decided_at=EPOCH + timedelta(microseconds=r.decided_at),
            decided_by=r.decided_by,
        )
        for r in rows
    ]


def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat(timespec="milliseconds")
