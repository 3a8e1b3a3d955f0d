"""One CloudWatch log event as the rest of qa-console sees it."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

SAGEMAKER_GROUP_PREFIX = "/aws/sagemaker/Endpoints/"


def endpoint_log_group(endpoint: str) -> str:
    """The log group SageMaker writes endpoint `endpoint`'s containers to."""
    return SAGEMAKER_GROUP_PREFIX + endpoint


@dataclass(frozen=True)
class LogLine:
    """One event: when (ms since the epoch), which stream, its text and CloudWatch's id."""

    timestamp_ms: int
    stream: str
    message: str
    event_id: str

    @classmethod
    def from_event(cls, event: dict[str, Any]) -> LogLine:
        """From a FilterLogEvents or StartLiveTail event (they name the fields alike)."""
        timestamp = int(event.get("timestamp", 0))
        stream = str(event.get("logStreamName", ""))
        message = str(event.get("message", "")).rstrip("\n")
        return cls(timestamp, stream, message, str(event.get("eventId", "")))

    @property
    def key(self) -> str:
        """What identifies the event whichever API returned it: live-tail events carry no
        eventId. (Two identical lines of one stream in the same millisecond count as one.)"""
        return f"{self.timestamp_ms}:{self.stream}:{self.message}"

    @property
    def time(self) -> datetime:
        return datetime.fromtimestamp(self.timestamp_ms / 1000, tz=UTC)
