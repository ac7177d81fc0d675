"""``promote``: evaluate a candidate against a policy and move the alias only if it passes.

Every decision — passed or refused — is stored with the checks and the policy behind it,
so "why is version 4 the champion, and why was version 5 refused" has a recorded answer.
The alias moves in the same transaction that re-checks the holder the candidate was
compared with: if another promotion moved the alias meanwhile, this one is refused as a
conflict instead of silently replacing a version it was never compared against.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from loopwise.clock import now_us, to_datetime
from loopwise.errors import Conflict, NotFound
from loopwise.evaluation.gates import GateResult, evaluate_for_policy, run_gates, summarize
from loopwise.evaluation.policy import Policy
from loopwise.identity import current_user
from loopwise.ids import new_id
from loopwise.registry import models as registry
from loopwise.registry.evaluations import LenientModel, save_evaluation
from loopwise.registry.records import AliasMove
from loopwise.store import Store
from loopwise.store.tables import promotion_decisions

#: Failed checks named in a Decision's repr; the rest are counted.
REPR_CHECKS = 4


@dataclass(frozen=True)
class Decision:
    """The outcome of a promotion: ``.passed``, every check, and the alias move if any."""

    model: str
    alias: str
    candidate_version: int
    current_version: int | None
    passed: bool
    checks: list[GateResult]
    decided_at: datetime
    move: AliasMove | None = None
    reasons: list[str] = field(default_factory=list)

    @property
    def failed_checks(self) -> list[GateResult]:
        return [c for c in self.checks if not c.passed]

    def summary(self) -> str:
        head = (
            f"models:/{self.model}/{self.candidate_version} "
            + (f"promoted to @{self.alias}" if self.passed else f"refused for @{self.alias}")
            + f" ({sum(c.passed for c in self.checks)}/{len(self.checks)} checks passed"
            + (
                f"; current holder: version {self.current_version})"
                if self.current_version is not None
                else "; no current holder)"
            )
        )
        return "\n".join([head, *(f"  - {reason}" for reason in self.reasons)])

    def __repr__(self) -> str:
        # one line: the checks' figures and details stay in summary() and to_dict()
        outcome = "promoted to" if self.passed else "refused for"
        passed = f"{sum(c.passed for c in self.checks)}/{len(self.checks)} checks passed"
        failed = [c.name + (f" ({c.slice})" if c.slice else "") for c in self.failed_checks]
        if len(failed) > REPR_CHECKS:
            failed = [*failed[:REPR_CHECKS], f"and {len(failed) - REPR_CHECKS} more"]
        named = f"; failed: {', '.join(failed)}" if failed else ""
        return (
            f"Decision(models:/{self.model}/{self.candidate_version} {outcome} @{self.alias}, "
            f"{passed}{named})"
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "model": self.model,
            "alias": self.alias,
            "candidate_version": self.candidate_version,
            "current_version": self.current_version,
            "passed": self.passed,
            "reasons": list(self.reasons),
            "checks": [c.to_dict() for c in self.checks],
            "decided_at": self.decided_at.isoformat(),
            "move": self.move.to_dict() if self.move is not None else None,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Decision:
        """The decision :meth:`to_dict` described (a server's answer to a promotion). A
        check's non-finite value comes back as None, as :meth:`GateResult.to_dict` wrote it."""
        move = data.get("move")
        return cls(
            model=data["model"],
            alias=data["alias"],
            candidate_version=data["candidate_version"],
            current_version=data.get("current_version"),
            passed=data["passed"],
            checks=[GateResult(**check) for check in data.get("checks") or []],
            decided_at=datetime.fromisoformat(data["decided_at"]),
            move=None if move is None else AliasMove.from_dict(move),
            reasons=list(data.get("reasons") or []),
        )


def _policy(policy: Policy | dict[str, Any] | str | Any) -> Policy:
    if isinstance(policy, Policy):
        return policy
    if isinstance(policy, dict):
        return Policy.from_dict(policy)
    return Policy.load(policy)


def promote(
    store: Store,
    uri: str,
    alias: str,
    *,
    policy: Policy | dict[str, Any] | str,
    data: Any,
    target: str,
    load: Any,
    run_id: str | None = None,
) -> Decision:
    """Run every gate of ``policy`` for ``uri`` on ``data``; move ``alias`` if all pass.

    ``data`` is a frame, a file or a ``datasets:/`` reference; ``load`` turns a URI into a
    loaded model (the registry API's cached ``load_model``).
    """
    from loopwise.data.datasets import get_dataset_version, load_dataset

    rules = _policy(policy)
    candidate = registry.get_model_version(store, uri)
    registry.check_alias(alias)
    try:
        current = registry.get_model_version(store, f"models:/{candidate.name}@{alias}")
    except NotFound:
        current = None
    if current is not None and current.id == candidate.id:
        raise Conflict(
            f"{candidate.uri} already holds @{alias}; nothing to promote. "
            f"See `loopwise models history {candidate.name} --alias {alias}`."
        )
    dataset_id = None
    if isinstance(data, str) and data.startswith("datasets:/"):
        dataset_id = get_dataset_version(store, data).id
        data = load_dataset(store, data, as_="polars")
    cand_model = LenientModel(load(candidate.uri))
    cand_eval = evaluate_for_policy(cand_model, data, target, rules)
    save_evaluation(
        store, cand_eval, model_version_id=candidate.id, dataset_version_id=dataset_id,
        run_id=run_id,
    )  # fmt: skip
    # the current holder is evaluated by the gates, only when the policy compares with it
    # (and a holder whose labels are not the target's fails vs_current instead of stopping)
    cur_model = LenientModel(load(current.uri)) if current is not None else None
    checks = run_gates(
        rules,
        candidate=cand_model,
        candidate_eval=cand_eval,
        data=data,
        target=target,
        current=cur_model,
        size_bytes=candidate.size,
    )
    passed, reasons = summarize(checks)
    current_version = current.version if current is not None else None
    move = _record(store, candidate, alias, current_version, passed, checks, rules)
    return Decision(
        model=candidate.name,
        alias=alias,
        candidate_version=candidate.version,
        current_version=current_version,
        passed=passed,
        checks=checks,
        decided_at=move.moved_at if move is not None else to_datetime(now_us()),
        move=move,
        reasons=reasons,
    )


def _record(
    store: Store,
    candidate: Any,
    alias: str,
    current_version: int | None,
    passed: bool,
    checks: list[GateResult],
    rules: Policy,
) -> AliasMove | None:
    """Store the decision and, if it passed, move the alias — atomically."""
    with store.db.write() as conn:
        model_id = registry.resolve_model_id(conn, candidate.name, lock=True)
        holder = registry.current_holder(conn, model_id, alias)
        if passed and holder != current_version:
            raise Conflict(
                f"@{alias} of {candidate.name!r} moved from version {current_version} to "
                f"{holder} while {candidate.uri} was being evaluated; promote again to compare "
                "against the new holder."
            )
        conn.execute(
            promotion_decisions.insert().values(
                id=new_id(),
                model_id=model_id,
                alias=alias,
                candidate_version=candidate.version,
                current_version=current_version,
                passed=passed,
                checks=json.dumps([c.to_dict() for c in checks], allow_nan=False, default=str),
                policy=json.dumps(rules.to_dict(), default=str),
                decided_at=now_us(),
                decided_by=current_user(),
            )
        )
        if not passed:
            return None
        return registry.move_alias(
            conn,
            model_id,
            candidate.name,
            alias,
            candidate.version,
            kind="set",
            reason=f"promoted by policy: {len(checks)} checks passed",
        )
