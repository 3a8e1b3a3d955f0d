"""The IAM screen against the embedded local AWS: the preflight's rows coloured by state, the
fix policy in a read-only pane that one key copies, a missing role as a notification, and the
screen at 80x24 (snapshots)."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest
from textual.pilot import Pilot
from textual.widgets import DataTable, TextArea

from fixtures_localaws import LocalAws
from qa_console.settings import load_settings
from qa_console.tui.app import QAConsoleApp
from qa_console.tui.screens.iam import IamScreen
from tui_helpers import SMALL, Notifications, wait_until
from tui_ops_helpers import DECLARED_BACKEND, SNAPSHOT_ROLE, bare_role, declare_one_backend

# Screens default to ./artifacts/model: run where there is none, as a fresh checkout would.
pytestmark = pytest.mark.usefixtures("empty_workdir")


@pytest.fixture(autouse=True)
def _one_backend(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    declare_one_backend(tmp_path, monkeypatch)


def iam_app(local_aws: LocalAws, role: str | None) -> QAConsoleApp:
    settings = {"target": "local", "region": local_aws.region, "endpoint_name": "tui-iam-bot"}
    if role:
        settings["execution_role"] = role
    return QAConsoleApp(backend=DECLARED_BACKEND, settings=settings)


def table_rows(screen: IamScreen) -> list[list[str]]:
    table = screen.query_one("#iam-rows", DataTable)
    return [[str(cell) for cell in table.get_row_at(n)] for n in range(table.row_count)]


async def run_check(pilot: Pilot[None]) -> IamScreen:
    app = pilot.app
    await pilot.press("f4")
    await wait_until(pilot, lambda: isinstance(app.screen, IamScreen))
    screen = app.screen
    assert isinstance(screen, IamScreen)
    await pilot.press("ctrl+r")
    await wait_until(pilot, lambda: screen.query_one("#iam-rows", DataTable).row_count > 0, 30)
    return screen


@pytest.mark.asyncio
async def test_the_check_shows_denied_rows_first_and_the_fix_policy_to_copy(
    local_aws: LocalAws,
) -> None:
    role = bare_role(local_aws)
    app = iam_app(local_aws, role)
    async with app.run_test(size=SMALL) as pilot:
        screen = await run_check(pilot)
        rows = table_rows(screen)
        states = [row[2] for row in rows]
        assert "denied" in states and "allowed" in states
        assert states == sorted(states, key=("denied", "unknown", "allowed").index)
        assert rows[0][:3] == ["role", "s3:GetObject", "denied"]
        assert any(row[0] == "caller" and row[2] == "allowed" for row in rows)
        summary = str(screen.query_one("#iam-summary").render())
        assert "denied" in summary and "role tui-iam-bare" in summary
        fix = screen.query_one("#iam-fix", TextArea)
        assert fix.read_only
        assert fix.text.startswith("# qa-console-execution.json: grants what the execution role")
        assert f"# apply: aws iam put-role-policy --role-name {SNAPSHOT_ROLE}" in fix.text
        await pilot.press("ctrl+y")
        assert app.clipboard == fix.text
        document = json.loads(fix.text.split("\n", 1)[1].split("\n# apply", 1)[0])
        assert "s3:GetObject" in json.dumps([s["Action"] for s in document["Statement"]])


@pytest.mark.asyncio
async def test_without_an_execution_role_the_check_is_a_notification(local_aws: LocalAws) -> None:
    app = iam_app(local_aws, None)
    notes = Notifications()
    async with app.run_test(size=SMALL, notifications=True, message_hook=notes.hook) as pilot:
        await pilot.press("f4")
        await wait_until(pilot, lambda: isinstance(app.screen, IamScreen))
        await pilot.press("ctrl+r")
        await wait_until(pilot, lambda: any("no SageMaker execution role" in n for n in notes))
        assert any("iam create-role" in note for note in notes)  # the hint comes along
        assert app.is_running and not app.screen.query_one("#iam-check").disabled


@pytest.mark.asyncio
async def test_ctrl_n_creates_the_execution_role_saves_it_and_checks_again(
    local_aws: LocalAws,
) -> None:
    app = iam_app(local_aws, None)
    notes = Notifications()
    async with app.run_test(size=SMALL, notifications=True, message_hook=notes.hook) as pilot:
        await pilot.press("f4")
        await wait_until(pilot, lambda: isinstance(app.screen, IamScreen))
        screen = app.screen
        assert isinstance(screen, IamScreen)
        await pilot.press("ctrl+n")
        await wait_until(pilot, lambda: screen.query_one("#iam-rows", DataTable).row_count > 0, 30)
        arn = screen.value("role")
        assert arn.endswith(":role/qa-console-tui-iam-bot")
        assert app.backend_defaults["execution_role"] == arn  # what the Deploy screen reads
        assert any(f"{arn} (execution_role saved to" in note for note in notes)
        rows = table_rows(screen)
        assert any(row[0] == "role" for row in rows)
        assert all(row[2] == "allowed" for row in rows if row[0] == "role")
    role = local_aws.client("iam").get_role(RoleName="qa-console-tui-iam-bot")["Role"]
    assert role["Arn"] == arn
    assert load_settings().execution_role == arn  # kept for later runs and the CLI


# ---------------------------------------------------------------------------- snapshots (UX spec)


def test_snapshot_iam_at_80x24_before_a_check(
    local_aws: LocalAws, snap_compare: Callable[..., bool]
) -> None:
    async def open_screen(pilot: Pilot[None]) -> None:
        await pilot.press("f4")
        await wait_until(pilot, lambda: isinstance(pilot.app.screen, IamScreen))
        pilot.app.screen.query_one("#iam-rows", DataTable).focus()  # no text cursor: it blinks
        await pilot.pause()

    app = iam_app(local_aws, "arn:aws:iam::123456789012:role/qa-console-exec")
    assert snap_compare(app, terminal_size=SMALL, run_before=open_screen)


def test_snapshot_iam_at_80x24_with_denied_rows_and_the_fix(
    local_aws: LocalAws, snap_compare: Callable[..., bool]
) -> None:
    role = bare_role(local_aws)

    async def check(pilot: Pilot[None]) -> None:
        screen = await run_check(pilot)
        screen.query_one("#iam-rows", DataTable).focus()  # no text cursor: it blinks
        await pilot.pause()

    assert snap_compare(iam_app(local_aws, role), terminal_size=SMALL, run_before=check)
