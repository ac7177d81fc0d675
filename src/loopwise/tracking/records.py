"""What the tracking API returns: experiments, runs and their statuses."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any

from loopwise.errors import InvalidInput


class RunStatus(StrEnum):
    """Lifecycle of a run. ``LOST`` means its process died without ending it."""

    RUNNING = "RUNNING"
    FINISHED = "FINISHED"
    FAILED = "FAILED"
    KILLED = "KILLED"
    LOST = "LOST"

    @property
    def is_terminal(self) -> bool:
        return self is not RunStatus.RUNNING

    @classmethod
    def final(cls, value: RunStatus | str) -> RunStatus:
        """The final status named by ``value`` (case-insensitive); RUNNING is refused."""
        try:
            status = cls(str(value).upper())
        except ValueError:
            status = None
        if status is None or status is cls.RUNNING:
            finals = ", ".join(s.value for s in cls if s is not cls.RUNNING)
            raise InvalidInput(f"A run ends with one of {finals}; got {value!r}.")
        return status


@dataclass(frozen=True)
class Experiment:
    """A named group of runs. ``deleted_at`` is set while it is deleted (a soft delete:
    its runs stay, and :func:`loopwise.tracking.runs.restore_experiment` brings it back)."""

    id: str
    name: str
    created_at: datetime
    description: str | None = None
    run_count: int | None = None
    deleted_at: datetime | None = None

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["created_at"] = self.created_at.isoformat()
        data["deleted_at"] = self.deleted_at.isoformat() if self.deleted_at else None
        return data


@dataclass(frozen=True)
class Run:
    """One execution of training or evaluation code, as stored.

    ``metrics`` holds the latest value of each metric (highest step, then latest time);
    the full series is :func:`loopwise.get_metric_history`. ``deleted_at`` is set while
    the run is deleted (a soft delete: searches leave it out, ``get_run`` still reads it).
    """

    id: str
    name: str
    experiment_id: str
    experiment: str
    status: RunStatus
    start_time: datetime
    end_time: datetime | None
    parent_run_id: str | None = None
    params: dict[str, str] = field(default_factory=dict)
    metrics: dict[str, float] = field(default_factory=dict)
    tags: dict[str, str] = field(default_factory=dict)
    environment: dict[str, Any] | None = None
    host: str | None = None
    pid: int | None = None
    user: str | None = None
    heartbeat_at: datetime | None = None
    deleted_at: datetime | None = None

    @property
    def uri(self) -> str:
        """The run's reference, ``runs:/<id>``."""
        return f"runs:/{self.id}"

    @property
    def duration_s(self) -> float | None:
        """Seconds from start to end (None while running)."""
        if self.end_time is None:
            return None
        return (self.end_time - self.start_time).total_seconds()

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["status"] = str(self.status)
        for key in ("start_time", "end_time", "heartbeat_at", "deleted_at"):
            value = data[key]
            data[key] = value.isoformat() if value is not None else None
        data["duration_s"] = self.duration_s
        return data
