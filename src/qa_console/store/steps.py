"""The finished steps of `qa-console up`: each step's inputs hash and outputs, per flow.

A step is written only once it finished, in its own committed transaction, so an interrupted
run resumes at the first step that has no record (or whose inputs changed since).
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

from qa_console.store.store import Store


def finished(store: Store, flow: str, step: str, inputs_hash: str) -> dict[str, Any] | None:
    """The outputs of `step` when it last finished with these inputs, else None."""
    rows = store.read(
        "SELECT outputs FROM flow_steps WHERE flow = ? AND step = ? AND inputs_hash = ?",
        (flow, step, inputs_hash),
    )
    return json.loads(rows[0][0]) if rows else None


def mark_finished(
    store: Store, flow: str, step: str, inputs_hash: str, outputs: dict[str, Any]
) -> None:
    store.write(
        "INSERT OR REPLACE INTO flow_steps (flow, step, inputs_hash, outputs, finished_at) "
        "VALUES (?, ?, ?, ?, ?)",
        (flow, step, inputs_hash, json.dumps(outputs), datetime.now(UTC).isoformat()),
    )
