"""What the local control plane holds for API Gateway, read with plain boto3 calls and cached.

A snapshot holds every REST API (resources with their methods and integrations, stages, gateway
responses), the API keys and the usage plans. Reading one costs a handful of calls to moto, so
requests share a snapshot, refreshed in the background once older than `max_age` seconds (so a
deleted or disabled key stops working a second or two later, not at once). A request that would
be refused (no such route, unknown key) asks for a snapshot whose reading started after the
request arrived before it says no, so an API or key created just before a call is always seen.
Refreshes are single-flight: concurrent requests wait for one reading instead of each doing
their own."""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass, field
from typing import Any

from qa_console.localaws.apigateway.routing import Node, build_tree

log = logging.getLogger(__name__)

STALE_LIMIT = 10  # a snapshot older than STALE_LIMIT * max_age is never served


@dataclass(frozen=True)
class Stage:
    name: str
    deployment_id: str | None
    variables: dict[str, str]


@dataclass(frozen=True)
class RestApi:
    id: str
    name: str
    binary_media_types: tuple[str, ...]
    tree: Node
    stages: dict[str, Stage]
    gateway_responses: dict[str, dict[str, Any]]


@dataclass(frozen=True)
class ApiKey:
    id: str
    name: str
    value: str
    enabled: bool


@dataclass(frozen=True)
class UsagePlan:
    id: str
    throttle: dict[str, Any] | None
    quota: dict[str, Any] | None
    # (api id, stage) -> per-method throttles, keyed "/resource/path/METHOD"
    stages: dict[tuple[str, str], dict[str, dict[str, Any]]]
    key_ids: frozenset[str]


@dataclass
class Snapshot:
    started_at: float
    apis: dict[str, RestApi] = field(default_factory=dict)
    keys_by_value: dict[str, ApiKey] = field(default_factory=dict)
    plans: list[UsagePlan] = field(default_factory=list)

    def plan_for(self, key_id: str, api_id: str, stage: str) -> UsagePlan | None:
        """The usage plan that lets this key call this API stage (AWS allows at most one)."""
        for plan in self.plans:
            if key_id in plan.key_ids and (api_id, stage) in plan.stages:
                return plan
        return None


class Catalog:
    """Snapshots of the control plane, refreshed when stale or when a refusal needs proof."""

    def __init__(self, apigateway: Any, max_age: float = 1.0) -> None:
        self._client = apigateway
        self._max_age = max_age
        self._snapshot: Snapshot | None = None
        self._refresh_lock = threading.Lock()
        self._state_lock = threading.Lock()
        self._refreshing = False

    def current(self) -> Snapshot:
        """A recent snapshot. Past max_age it is still served while a background refresh runs
        (up to STALE_LIMIT), so requests do not wait for the control plane on the happy path."""
        snapshot = self._snapshot
        now = time.monotonic()
        if snapshot is not None and now - snapshot.started_at <= self._max_age:
            return snapshot
        if snapshot is not None and now - snapshot.started_at <= self._max_age * STALE_LIMIT:
            self._refresh_in_background()
            return snapshot
        # Any snapshot begun within max_age will do: requests that found the cache stale together
        # share the one refresh instead of queueing a refresh each.
        return self.fresh(since=now - self._max_age)

    def _refresh_in_background(self) -> None:
        with self._state_lock:
            if self._refreshing:
                return
            self._refreshing = True

        def refresh() -> None:
            try:
                self.fresh(since=time.monotonic())
            except Exception as exc:  # the next request retries, in its own thread
                log.warning("reading the API Gateway control plane failed: %s", exc)
            finally:
                with self._state_lock:
                    self._refreshing = False

        threading.Thread(target=refresh, name="gateway-catalog", daemon=True).start()

    def fresh(self, since: float) -> Snapshot:
        """A snapshot whose reading began at or after `since` (a monotonic time)."""
        with self._refresh_lock:
            snapshot = self._snapshot
            if snapshot is not None and snapshot.started_at >= since:
                return snapshot
            snapshot = read_snapshot(self._client)
            self._snapshot = snapshot
            return snapshot


def _pages(client: Any, operation: str, key: str, **kwargs: Any) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = []
    for page in client.get_paginator(operation).paginate(**kwargs):
        items.extend(page.get(key, []))
    return items


def read_snapshot(client: Any) -> Snapshot:
    snapshot = Snapshot(started_at=time.monotonic())
    for api in _pages(client, "get_rest_apis", "items"):
        snapshot.apis[api["id"]] = _read_api(client, api)
    for key in _pages(client, "get_api_keys", "items", includeValues=True):
        if key.get("value"):
            snapshot.keys_by_value[key["value"]] = ApiKey(
                key["id"], key.get("name", ""), key["value"], bool(key.get("enabled", False))
            )
    for plan in _pages(client, "get_usage_plans", "items"):
        keys = _pages(client, "get_usage_plan_keys", "items", usagePlanId=plan["id"])
        snapshot.plans.append(
            UsagePlan(
                id=plan["id"],
                throttle=plan.get("throttle"),
                quota=plan.get("quota"),
                stages={
                    (s["apiId"], s["stage"]): dict(s.get("throttle") or {})
                    for s in plan.get("apiStages", [])
                },
                key_ids=frozenset(k["id"] for k in keys if k.get("type", "API_KEY") == "API_KEY"),
            )
        )
    return snapshot


def _read_api(client: Any, api: dict[str, Any]) -> RestApi:
    api_id = api["id"]
    resources = _pages(client, "get_resources", "items", restApiId=api_id, embed=["methods"])
    stages = {
        s["stageName"]: Stage(s["stageName"], s.get("deploymentId"), dict(s.get("variables") or {}))
        for s in client.get_stages(restApiId=api_id).get("item", [])
    }
    try:
        responses = client.get_gateway_responses(restApiId=api_id).get("items", [])
    except client.exceptions.ClientError:
        responses = []
    return RestApi(
        id=api_id,
        name=api.get("name", ""),
        binary_media_types=tuple(api.get("binaryMediaTypes") or ()),
        tree=build_tree(resources),
        stages=stages,
        gateway_responses={r["responseType"]: r for r in responses if "responseType" in r},
    )
