"""The chat screen driven with Textual's Pilot against real HTTP backends on 127.0.0.1."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler
from pathlib import Path

import pytest
from textual.pilot import Pilot
from textual.widgets import Markdown, Select

from fixtures_foundation import FakeApi, Recorded, write_plugins
from qa_console.store import open_store
from qa_console.tui.app import QAConsoleApp
from qa_console.tui.transcript import CANCELLED, DONE
from qa_console.tui.widgets.exchange import ExchangeView
from qa_console.tui.widgets.history import HistoryPanel
from tui_helpers import SIZE, SMALL, Notifications, wait_until


class TrackingApi(FakeApi):
    """A FakeApi that also counts replies sent, to know when a slow answer has come back."""

    def __init__(self) -> None:
        self.replied: Counter[str] = Counter()
        super().__init__()

    def handle(self, handler: BaseHTTPRequestHandler, record: Recorded, hit: int) -> None:
        super().handle(handler, record, hit)
        self.replied[record.path] += 1


@pytest.fixture
def second_api() -> Iterator[TrackingApi]:
    api = TrackingApi()
    try:
        yield api
    finally:
        api.stop()


@pytest.fixture
def tui_plugins(
    fake_api: FakeApi, second_api: TrackingApi, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Path:
    """`one` and `two` answer from two different servers; `broken` gets a 500; `slow` (on the
    second server) answers after 1.5 s."""
    path = write_plugins(
        tmp_path / "plugins.toml",
        {
            "one": {"kind": "http", "url": fake_api.url("/ask")},
            "two": {"kind": "http", "url": second_api.url("/ask")},
            "broken": {"kind": "http", "url": fake_api.url("/status/500"), "retries": 0},
            "slow": {"kind": "http", "url": second_api.url("/slow/1.5"), "timeout_s": 10},
        },
    )
    monkeypatch.setenv("QA_CONSOLE_PLUGINS", str(path))
    return path


async def ask(pilot: Pilot[None], question: str) -> None:
    await pilot.click("#question")
    await pilot.press(*question, "enter")


def answer_text(app: QAConsoleApp, exchange_id: int) -> str:
    view = app.screen.query_one(f"#exchange-{exchange_id}", ExchangeView)
    return view.query_one(Markdown).source


@pytest.mark.asyncio
async def test_enter_shows_the_servers_answer_and_records_it(
    fake_api: FakeApi, tui_plugins: Path
) -> None:
    app = QAConsoleApp(backend="one")
    async with app.run_test(size=SIZE, notifications=True) as pilot:
        await ask(pilot, "Who is Ada?")
        await wait_until(pilot, lambda: bool(app.exchanges) and app.exchanges[0].status == DONE)
        assert answer_text(app, 1) == "answer to: Who is Ada?"
        status = app.screen.query_one("#exchange-1 .status").render()
        assert "one ·" in str(status) and "ms" in str(status)
        history = app.screen.query_one(HistoryPanel)
        await wait_until(pilot, lambda: history.row_count == 1)
        assert history.get_row_at(0)[:2] == ["Who is Ada?", "one"]
    assert fake_api.hits["/ask"] == 1
    with open_store() as store:
        [entry] = store.recent()
    assert (entry.question, entry.answer, entry.backend) == (
        "Who is Ada?",
        "answer to: Who is Ada?",
        "one",
    )
    assert entry.latency_ms is not None and entry.latency_ms > 0


@pytest.mark.asyncio
async def test_a_failing_backend_is_a_notification_and_the_app_keeps_running(
    fake_api: FakeApi, tui_plugins: Path
) -> None:
    app = QAConsoleApp(backend="broken")
    notes = Notifications()
    async with app.run_test(size=SIZE, notifications=True, message_hook=notes.hook) as pilot:
        await ask(pilot, "Who?")
        await wait_until(pilot, lambda: any("500" in text for text in notes))
        assert app.is_running
        assert "server says 500" in " ".join(notes)
        assert "error:" in str(app.screen.query_one("#exchange-1 .status").render())
        # the same session still answers from a working backend
        app.screen.query_one("#backend", Select).value = "one"
        await ask(pilot, "Again?")
        await wait_until(pilot, lambda: app.exchanges[-1].status == DONE)
        assert answer_text(app, 2) == "answer to: Again?"
    with open_store() as store:
        assert [entry.backend for entry in store.recent()] == ["one"]  # failures are not history


@pytest.mark.asyncio
async def test_switching_backend_in_the_selector_changes_which_server_answers(
    fake_api: FakeApi, second_api: TrackingApi, tui_plugins: Path
) -> None:
    app = QAConsoleApp(backend="one")
    async with app.run_test(size=SIZE, notifications=True) as pilot:
        select = app.screen.query_one("#backend", Select)
        assert select.value == "one"
        await pilot.click("#backend")  # open the overlay, move to "two", choose it
        await pilot.press("down", "enter")
        await wait_until(pilot, lambda: select.value == "two")
        await ask(pilot, "Which server?")
        await wait_until(pilot, lambda: bool(app.exchanges) and app.exchanges[0].status == DONE)
    assert (fake_api.hits["/ask"], second_api.hits["/ask"]) == (0, 1)
    with open_store() as store:
        assert [entry.backend for entry in store.recent()] == ["two"]


@pytest.mark.asyncio
async def test_export_from_the_command_palette_writes_the_chat_as_markdown(
    fake_api: FakeApi, tui_plugins: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    workdir = tmp_path / "work"
    workdir.mkdir()
    monkeypatch.chdir(workdir)
    app = QAConsoleApp(backend="one")
    notes = Notifications()
    async with app.run_test(size=SIZE, notifications=True, message_hook=notes.hook) as pilot:
        await ask(pilot, "Who is Ada?")
        await wait_until(pilot, lambda: bool(app.exchanges) and app.exchanges[0].status == DONE)
        await pilot.press("ctrl+p")
        await pilot.press(*"export chat", "enter")
        await wait_until(pilot, lambda: any(workdir.glob("*.md")))
        [path] = workdir.glob("qa-console-chat-*.md")
        await wait_until(pilot, lambda: any(str(path) in text for text in notes))
        assert app.is_running
    text = path.read_text(encoding="utf-8")
    assert "## Q: Who is Ada?" in text
    assert "answer to: Who is Ada?" in text
    assert text.index("## Q: Who is Ada?") < text.index("answer to: Who is Ada?")


@pytest.mark.asyncio
async def test_escape_cancels_a_running_answer(second_api: TrackingApi, tui_plugins: Path) -> None:
    app = QAConsoleApp(backend="slow")
    notes = Notifications()
    async with app.run_test(size=SIZE, notifications=True, message_hook=notes.hook) as pilot:
        await ask(pilot, "Slow?")
        await wait_until(pilot, lambda: second_api.hits["/slow/1.5"] == 1)
        await pilot.press("escape")
        assert app.exchanges[0].status == CANCELLED
        assert "cancelled" in str(app.screen.query_one("#exchange-1 .status").render())
        # the server still replies; the cancelled worker must neither show nor record it
        await wait_until(pilot, lambda: second_api.replied["/slow/1.5"] == 1)
        await pilot.pause(0.3)  # time for the worker thread to read the reply and return
        assert answer_text(app, 1) == ""
        assert app.exchanges[0].status == CANCELLED
        assert notes == ["answer cancelled"]  # the late reply raised no error either
    with open_store() as store:
        assert store.count() == 0


# ---------------------------------------------------------------------------- snapshots (UX spec)


def test_snapshot_chat_at_80x24_after_one_answer(
    fake_api: FakeApi, tui_plugins: Path, snap_compare: Callable[..., bool]
) -> None:
    async def ask_once(pilot: Pilot[None]) -> None:
        app = pilot.app
        assert isinstance(app, QAConsoleApp)
        await ask(pilot, "Who is Ada?")
        await wait_until(pilot, lambda: bool(app.exchanges) and app.exchanges[0].status == DONE)
        exchange = app.exchanges[0]
        exchange.latency_ms = 12.0  # the one number that varies between runs
        view = app.chat.exchange_view(exchange.id)
        assert view is not None
        view.show_status()
        app.screen.query_one(HistoryPanel).clear()  # rows carry the real latency too
        await pilot.pause()

    assert snap_compare(QAConsoleApp(backend="one"), terminal_size=SMALL, run_before=ask_once)
