"""Schema upgrades of the store (questions asked, resources created in AWS), in order. Never edit
a released step: add a new one.

The database's schema version is SQLite's `PRAGMA user_version`: 0 for a new file, else the
number of steps applied. Each step runs in its own transaction together with the version bump,
so a crash mid-upgrade leaves the database at the previous version, never half-changed.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from dataclasses import dataclass


@dataclass(frozen=True)
class Upgrade:
    version: int  # user_version after this step
    description: str
    apply: Callable[[sqlite3.Connection], None]


def _v1_questions(db: sqlite3.Connection) -> None:
    db.execute(
        """
        CREATE TABLE questions (
            id          INTEGER PRIMARY KEY,
            question    TEXT NOT NULL,
            answer      TEXT NOT NULL,
            backend     TEXT NOT NULL,
            latency_ms  REAL,
            created_at  TEXT NOT NULL  -- ISO 8601, UTC
        )
        """
    )


def _v2_parameters_and_time_index(db: sqlite3.Connection) -> None:
    # The generation parameters explain an answer (`--param max_new_tokens=5`); the index keeps
    # `history` fast once thousands of questions are logged.
    db.execute("ALTER TABLE questions ADD COLUMN parameters TEXT NOT NULL DEFAULT '{}'")
    db.execute("CREATE INDEX questions_created_at ON questions (created_at)")


def _v3_resources(db: sqlite3.Connection) -> None:
    # What qa-console created in an AWS account (or the local one), so teardown deletes exactly
    # that and a failed deploy rolls back only what its own run made.
    db.execute(
        """
        CREATE TABLE resources (
            id          INTEGER PRIMARY KEY,
            run_id      TEXT NOT NULL,   -- one deploy/expose/create-role run
            target      TEXT NOT NULL,   -- 'local' or the AWS profile
            region      TEXT NOT NULL,
            endpoint    TEXT NOT NULL,   -- the endpoint the resource serves ('' if none)
            kind        TEXT NOT NULL,   -- sagemaker-model, sagemaker-endpoint-config, ...
            name        TEXT NOT NULL,   -- the name or id AWS knows it by
            arn         TEXT NOT NULL DEFAULT '',
            details     TEXT NOT NULL DEFAULT '{}',  -- JSON: what deleting it needs
            created_at  TEXT NOT NULL,
            deleted_at  TEXT            -- NULL while it exists
        )
        """
    )
    db.execute("CREATE INDEX resources_endpoint ON resources (target, region, endpoint)")


def _v4_flow_steps(db: sqlite3.Connection) -> None:
    # What each step of `qa-console up` last produced and from what (a content hash of its
    # inputs), so a second run skips every step whose inputs did not change.
    db.execute(
        """
        CREATE TABLE flow_steps (
            flow         TEXT NOT NULL,  -- one flow per output folder and endpoint
            step         TEXT NOT NULL,  -- train, package, deploy, expose
            inputs_hash  TEXT NOT NULL,
            outputs      TEXT NOT NULL DEFAULT '{}',  -- JSON: what later steps need
            finished_at  TEXT NOT NULL,
            PRIMARY KEY (flow, step)
        )
        """
    )


UPGRADES: tuple[Upgrade, ...] = (
    Upgrade(1, "questions table", _v1_questions),
    Upgrade(2, "parameters column and created_at index", _v2_parameters_and_time_index),
    Upgrade(3, "resources created in AWS", _v3_resources),
    Upgrade(4, "steps of qa-console up", _v4_flow_steps),
)

LATEST_VERSION = UPGRADES[-1].version
