"""The Logs screen and its LogPane: following an endpoint's log from the embedded local AWS,
pausing when the user scrolls up (and counting what arrives meanwhile), filtering, tracebacks
in red, a bounded buffer, and a missing endpoint as a notification."""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from pathlib import Path

import pytest
from textual.app import App, ComposeResult
from textual.pilot import Pilot
from textual.widgets import Input, Select

from fixtures_localaws import LocalAws
from fixtures_runtime import SERVING_IMAGE
from qa_console.ops.logs.fold import LogEntry, fold
from qa_console.ops.logs.lines import LogLine, endpoint_log_group
from qa_console.tui.app import QAConsoleApp
from qa_console.tui.screens.logs import LogsScreen
from qa_console.tui.widgets.log_pane import LogPane, LogView, record_of
from tui_helpers import SMALL, Notifications, wait_until
from tui_ops_helpers import DECLARED_BACKEND, declare_one_backend

# Screens default to ./artifacts/model: run where there is none, as a fresh checkout would.
pytestmark = pytest.mark.usefixtures("empty_workdir")

TRACEBACK = [
    "Traceback (most recent call last):",
    '  File "/opt/ml/code/inference.py", line 12, in model_fn',
    "ValueError: config.json is missing",
]


@pytest.fixture(autouse=True)
def _one_backend(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    declare_one_backend(tmp_path, monkeypatch)


def _now_ms() -> int:
    return int(time.time() * 1000)


def _log_group(local_aws: LocalAws, lines: list[str]) -> tuple[str, Callable[[list[str]], None]]:
    """A fresh endpoint name whose log holds `lines`, and a function that writes more."""
    name = f"tui-logs-{uuid.uuid4().hex[:8]}"
    logs = local_aws.client("logs")
    group = endpoint_log_group(name)
    logs.create_log_group(logGroupName=group)
    logs.create_log_stream(logGroupName=group, logStreamName="AllTraffic/i-0abc")

    def write(texts: list[str]) -> None:
        start = _now_ms()
        logs.put_log_events(
            logGroupName=group,
            logStreamName="AllTraffic/i-0abc",
            logEvents=[{"timestamp": start + n, "message": text} for n, text in enumerate(texts)],
        )

    if lines:
        write(lines)
    return name, write


def logs_app(local_aws: LocalAws) -> QAConsoleApp:
    return QAConsoleApp(
        backend=DECLARED_BACKEND, settings={"target": "local", "region": local_aws.region}
    )


async def open_logs(pilot: Pilot[None], endpoint: str) -> LogPane:
    await pilot.press("f6")
    app = pilot.app
    await wait_until(pilot, lambda: isinstance(app.screen, LogsScreen))
    field = app.screen.query_one("#logs-endpoint", Input)
    field.value = endpoint
    field.focus()
    await pilot.press("enter")
    return app.screen.query_one(LogPane)


def status_of(pane: LogPane) -> str:
    return str(pane.query_one("#log-status").render())


@pytest.mark.asyncio
async def test_follow_pauses_on_scroll_up_counts_new_lines_and_end_follows_again(
    local_aws: LocalAws,
) -> None:
    name, write = _log_group(local_aws, [f"loading shard {n}" for n in range(40)])
    app = logs_app(local_aws)
    async with app.run_test(size=SMALL) as pilot:
        pane = await open_logs(pilot, name)
        await wait_until(pilot, lambda: "loading shard 39" in pane.shown_text)
        view = pane.query_one(LogView)
        await wait_until(pilot, lambda: view.scroll_y == view.max_scroll_y > 0)
        view.focus()
        await pilot.press("up")
        assert not view.following
        write(["model loaded", "listening on 8080", "first request"])
        await wait_until(pilot, lambda: "first request" in pane.shown_text)
        await wait_until(pilot, lambda: "3 new lines - press End to follow" in status_of(pane))
        assert view.scroll_y < view.max_scroll_y  # the view stayed where the user put it
        await pilot.press("end")
        await wait_until(pilot, lambda: view.following and pane.new_lines == 0)
        await wait_until(pilot, lambda: view.scroll_y == view.max_scroll_y)
        assert "new lines" not in status_of(pane)
        write(["second request"])  # following again: the view moves with it
        await wait_until(pilot, lambda: "second request" in pane.shown_text)
        await wait_until(pilot, lambda: view.scroll_y == view.max_scroll_y)
        assert pane.new_lines == 0


@pytest.mark.asyncio
async def test_the_filter_shows_only_matching_lines_and_tracebacks_are_red(
    local_aws: LocalAws,
) -> None:
    name, _write = _log_group(local_aws, ["GET /ping 200", "model loaded", *TRACEBACK, "ready"])
    app = logs_app(local_aws)
    async with app.run_test(size=SMALL) as pilot:
        pane = await open_logs(pilot, name)
        await wait_until(pilot, lambda: "ready" in pane.shown_text)
        assert "(1 health check)" in pane.shown_text
        [traceback] = [record for record in pane.records if "Traceback" in record.plain]
        assert traceback.rows == 3
        assert any("red" in str(span.style) for span in traceback.text.spans)
        pane.query_one("#log-filter", Input).focus()
        await pilot.press(*"LOADED")
        await wait_until(pilot, lambda: pane.needle == "LOADED")
        assert pane.shown_text.endswith("model loaded")
        assert "ready" not in pane.shown_text and "Traceback" not in pane.shown_text
        assert "1 of 4 lines match" in status_of(pane)
        await pilot.press(*["backspace"] * 6)
        await wait_until(pilot, lambda: "ready" in pane.shown_text)


@pytest.mark.asyncio
async def test_a_missing_endpoint_is_a_notification_and_the_app_keeps_running(
    local_aws: LocalAws,
) -> None:
    app = logs_app(local_aws)
    notes = Notifications()
    async with app.run_test(size=SMALL, notifications=True, message_hook=notes.hook) as pilot:
        await open_logs(pilot, f"tui-nowhere-{uuid.uuid4().hex[:6]}")
        await wait_until(pilot, lambda: any("tui-nowhere" in note for note in notes))
        assert app.is_running and isinstance(app.screen, LogsScreen)
        assert "stopped following" in status_of(app.screen.query_one(LogPane))


# ---------------------------------------------------------------------------- the widget alone


class PaneApp(App[None]):
    def __init__(self, max_lines: int) -> None:
        super().__init__()
        self.max_lines = max_lines

    def compose(self) -> ComposeResult:
        yield LogPane(max_lines=self.max_lines)


def _entries(count: int) -> list[LogEntry]:
    base = _now_ms()
    return list(
        fold(LogLine(base + n, "AllTraffic/i-1", f"line {n}", str(n)) for n in range(count))
    )


@pytest.mark.asyncio
async def test_the_buffer_keeps_the_last_lines_and_a_flood_is_written_in_batches() -> None:
    app = PaneApp(max_lines=100)
    async with app.run_test(size=SMALL) as pilot:
        pane = app.query_one(LogPane)
        for start in range(0, 2500, 250):  # a flood: ten posts between two flushes at most
            pane.add_entries(_entries(2500)[start : start + 250])
        await wait_until(pilot, lambda: len(pane.records) == 100)
        assert pane.records[0].plain.endswith("line 2400")
        assert pane.records[-1].plain.endswith("line 2499")
        assert len(pane.query_one(LogView).lines) <= 100
        assert "100 lines" in status_of(pane)


def test_a_record_shows_time_instance_and_text() -> None:
    line = LogLine(0, "AllTraffic/i-0abc", "hello", "1")
    record = record_of(LogEntry("line", line, [line]))
    assert record.plain == "00:00:00 i-0abc hello"
    assert record.matches("HELLO") and not record.matches("bye")


# ---------------------------------------------------------------------------- snapshots (UX spec)

# 2026-12-07 09:20:00 UTC: fixed times, so the filled snapshot is the same every run.
SNAPSHOT_MS = 1_796_635_200_000


def _fixed_entries(texts: list[str], first: int = 0) -> list[LogEntry]:
    return list(
        fold(
            LogLine(SNAPSHOT_MS + (first + n) * 1000, "AllTraffic/i-0abc1234", text, str(n))
            for n, text in enumerate(texts)
        )
    )


def test_snapshot_logs_at_80x24_before_following(snap_compare: Callable[..., bool]) -> None:
    async def open_screen(pilot: Pilot[None]) -> None:
        await pilot.press("f6")
        await wait_until(pilot, lambda: isinstance(pilot.app.screen, LogsScreen))
        pilot.app.screen.query_one(LogView).focus()  # no text cursor: it blinks
        await pilot.pause()

    app = QAConsoleApp(
        backend=DECLARED_BACKEND, settings={"target": "local", "endpoint_name": "biography-bot"}
    )
    assert snap_compare(app, terminal_size=SMALL, run_before=open_screen)


def test_snapshot_logs_at_80x24_paused_with_new_lines_and_a_traceback(
    snap_compare: Callable[..., bool],
) -> None:
    """The pane as a user sees it after scrolling up: a traceback in red, folded health
    checks, and the count of lines that arrived since."""

    async def fill(pilot: Pilot[None]) -> None:
        await pilot.press("f6")
        await wait_until(pilot, lambda: isinstance(pilot.app.screen, LogsScreen))
        pane = pilot.app.screen.query_one(LogPane)
        lines = [f"loading shard {n}" for n in range(24)]
        lines += ["GET /ping 200", "GET /ping 200", *TRACEBACK, "restarting worker"]
        pane.add_entries(_fixed_entries(lines))
        await wait_until(pilot, lambda: len(pane.records) == 27)
        view = pane.query_one(LogView)
        view.focus()
        await wait_until(pilot, lambda: view.scroll_y == view.max_scroll_y > 0)
        await pilot.press("up", "up")
        pane.add_entries(_fixed_entries(["model loaded", "listening"], first=60))
        await wait_until(pilot, lambda: pane.new_lines == 2)
        await pilot.pause()

    app = QAConsoleApp(
        backend=DECLARED_BACKEND, settings={"target": "local", "endpoint_name": "biography-bot"}
    )
    assert snap_compare(app, terminal_size=SMALL, run_before=fill)


@pytest.mark.asyncio
async def test_the_endpoint_list_is_read_when_first_focused(local_aws: LocalAws) -> None:
    name = f"tui-listed-{uuid.uuid4().hex[:6]}"
    sagemaker = local_aws.client("sagemaker")
    sagemaker.create_model(
        ModelName=name,
        ExecutionRoleArn="arn:aws:iam::123456789012:role/any",
        PrimaryContainer={"Image": SERVING_IMAGE, "ModelDataUrl": "s3://tui-nowhere/m.tar.gz"},
    )
    variant = {"VariantName": "AllTraffic", "ModelName": name}
    serverless = {"MemorySizeInMB": 1024, "MaxConcurrency": 1}
    sagemaker.create_endpoint_config(
        EndpointConfigName=name, ProductionVariants=[{**variant, "ServerlessConfig": serverless}]
    )
    sagemaker.create_endpoint(EndpointName=name, EndpointConfigName=name)  # it fails: no model
    app = logs_app(local_aws)
    async with app.run_test(size=SMALL) as pilot:
        await pilot.press("f6")
        await wait_until(pilot, lambda: isinstance(app.screen, LogsScreen))
        screen = app.screen
        assert isinstance(screen, LogsScreen)
        await pilot.pause(0.3)
        assert screen.endpoint_names == []  # opening the screen reaches no AWS
        screen.query_one("#logs-endpoints", Select).focus()
        await wait_until(pilot, lambda: name in screen.endpoint_names)
