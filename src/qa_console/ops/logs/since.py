"""`--since 10m`: a duration back from now, as CloudWatch's startTime (ms since the epoch)."""

from __future__ import annotations

import re
import time

from qa_console.errors import UsageError

UNIT_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400}
_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([smhd])\s*$", re.I)


def parse_duration_s(text: str) -> float:
    """Seconds in "30s", "10m", "2h" or "1d"; UsageError for anything else."""
    match = _DURATION.match(text)
    if match is None:
        raise UsageError(
            f"cannot read {text!r} as a duration",
            hint="use a number and a unit: 30s, 10m, 2h or 1d",
        )
    amount, unit = match.groups()
    return float(amount) * UNIT_SECONDS[unit.lower()]


def start_time_ms(since: str | None, now_s: float | None = None) -> int | None:
    """The startTime for `since` back from `now_s` (default: now); None reads from the start."""
    if since is None:
        return None
    now = time.time() if now_s is None else now_s
    return int((now - parse_duration_s(since)) * 1000)
