"""Usage-plan limits per API key: a token bucket per throttle, a counter per quota period.

API Gateway throttles with a token bucket: `burstLimit` tokens at most, refilled at `rateLimit`
per second; a request takes one token or gets 429 "Too Many Requests". A quota counts requests
per DAY / WEEK / MONTH (UTC) and gives 429 "Limit Exceeded" past `limit`. Counters live in memory:
they restart with the gateway, which is fine for a local stand-in.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal

Verdict = Literal["ok", "throttled", "quota"]


@dataclass
class _Bucket:
    tokens: float
    updated: float


class UsageLimiter:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._buckets: dict[tuple[str, ...], _Bucket] = {}
        self._quota_counts: dict[tuple[str, str, str], int] = {}

    def check(
        self,
        plan_id: str,
        key_id: str,
        throttle: dict[str, Any] | None,
        method_throttle: dict[str, Any] | None,
        quota: dict[str, Any] | None,
        method_key: str,
    ) -> Verdict:
        """Take one request from the key's buckets and quota, or say which limit refuses it."""
        with self._lock:
            limits = [
                ((plan_id, key_id), throttle),
                ((plan_id, key_id, method_key), method_throttle),
            ]
            now = time.monotonic()
            buckets = []
            for bucket_key, limit in limits:
                if not limit:
                    continue
                bucket = self._refill(bucket_key, limit, now)
                if bucket.tokens < 1.0:
                    return "throttled"
                buckets.append(bucket)
            quota_key = None
            if quota and quota.get("limit") is not None:
                quota_key = (plan_id, key_id, _period(str(quota.get("period", "DAY"))))
                if self._quota_counts.get(quota_key, 0) >= int(quota["limit"]):
                    return "quota"
            for bucket in buckets:
                bucket.tokens -= 1.0
            if quota_key is not None:
                self._quota_counts[quota_key] = self._quota_counts.get(quota_key, 0) + 1
            return "ok"

    def _refill(self, key: tuple[str, ...], limit: dict[str, Any], now: float) -> _Bucket:
        rate = float(limit.get("rateLimit") or 0.0)
        burst = limit.get("burstLimit")
        capacity = float(burst) if burst is not None else max(1.0, rate)
        bucket = self._buckets.get(key)
        if bucket is None:
            bucket = self._buckets[key] = _Bucket(capacity, now)
        else:
            bucket.tokens = min(capacity, bucket.tokens + (now - bucket.updated) * rate)
            bucket.updated = now
        return bucket


def _period(period: str) -> str:
    now = datetime.now(UTC)
    if period == "MONTH":
        return now.strftime("%Y-%m")
    if period == "WEEK":
        year, week, _ = now.isocalendar()
        return f"{year}-W{week}"
    return now.strftime("%Y-%m-%d")
