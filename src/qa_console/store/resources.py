"""The record of what qa-console created in AWS (or the local AWS), per endpoint and run.

Deploy and expose record each resource the moment AWS confirms it, in its own committed
transaction, so a crash or Ctrl-C right after a create still leaves the record teardown needs.
Teardown deletes what the record says (newest first, in dependency order) and marks each row
deleted; rows are never removed, so `status` can tell what a run made.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from qa_console.store.store import Store


@dataclass(frozen=True)
class Resource:
    id: int
    run_id: str
    target: str
    region: str
    endpoint: str
    kind: str
    name: str
    arn: str
    created_at: str
    deleted_at: str | None
    details: Mapping[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "run_id": self.run_id,
            "target": self.target,
            "region": self.region,
            "endpoint": self.endpoint,
            "kind": self.kind,
            "name": self.name,
            "arn": self.arn,
            "created_at": self.created_at,
            "deleted_at": self.deleted_at,
            "details": dict(self.details),
        }


def new_run_id() -> str:
    return datetime.now(UTC).strftime("%Y%m%dT%H%M%S-") + uuid.uuid4().hex[:6]


def record(
    store: Store,
    *,
    run_id: str,
    target: str,
    region: str,
    endpoint: str,
    kind: str,
    name: str,
    arn: str = "",
    details: Mapping[str, Any] | None = None,
) -> int:
    """Record one created resource (committed before this returns); returns its id."""
    when = datetime.now(UTC).isoformat()
    return store.write(
        "INSERT INTO resources (run_id, target, region, endpoint, kind, name, arn, details,"
        " created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
        (run_id, target, region, endpoint, kind, name, arn, json.dumps(dict(details or {})),
         when),
    )  # fmt: skip


def mark_deleted(store: Store, resource_id: int) -> None:
    store.write(
        "UPDATE resources SET deleted_at = ? WHERE id = ? AND deleted_at IS NULL",
        (datetime.now(UTC).isoformat(), resource_id),
    )


def existing(
    store: Store,
    target: str,
    region: str,
    endpoint: str | None = None,
    run_id: str | None = None,
) -> list[Resource]:
    """Resources not yet deleted, newest first; of one endpoint and/or one run when given."""
    sql = (
        "SELECT id, run_id, target, region, endpoint, kind, name, arn, created_at, deleted_at,"
        " details FROM resources WHERE target = ? AND region = ? AND deleted_at IS NULL"
    )
    arguments: list[Any] = [target, region]
    if endpoint is not None:
        sql += " AND endpoint = ?"
        arguments.append(endpoint)
    if run_id is not None:
        sql += " AND run_id = ?"
        arguments.append(run_id)
    rows = store.read(sql + " ORDER BY id DESC", arguments)
    return [
        Resource(
            id=row[0], run_id=row[1], target=row[2], region=row[3], endpoint=row[4],
            kind=row[5], name=row[6], arn=row[7], created_at=row[8], deleted_at=row[9],
            details=json.loads(row[10]),
        )
        for row in rows
    ]  # fmt: skip


def endpoints(store: Store, target: str, region: str) -> list[str]:
    """The endpoints with recorded resources still in place."""
    rows = store.read(
        "SELECT DISTINCT endpoint FROM resources WHERE target = ? AND region = ? AND"
        " deleted_at IS NULL AND endpoint != '' ORDER BY endpoint",
        (target, region),
    )
    return [row[0] for row in rows]
