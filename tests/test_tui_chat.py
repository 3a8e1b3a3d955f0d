"""The chat screen driven with Textual's Pilot against real HTTP backends on 127.0.0.1."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler
from pathlib import Path

import pytest
from textual.pilot import Pilot
from textual.widgets import DataTable, Markdown, Select, Static

from fixtures_foundation import FakeApi, Recorded, write_plugins
from qa_console.store import open_store
from qa_console.tui.app import QAConsoleApp
from qa_console.tui.screens.chat import ChatScreen
from qa_console.tui.screens.compare_dialog import CompareDialog
from qa_console.tui.screens.switch_backend import BackendSwitcher
from qa_console.tui.transcript import CANCELLED, DONE
from qa_console.tui.widgets.comparison import ComparisonView
from qa_console.tui.widgets.exchange import ExchangeView
from qa_console.tui.widgets.history import COLUMNS as HISTORY_COLUMNS
from qa_console.tui.widgets.history import HistoryPanel
from qa_console.tui.widgets.question_input import QuestionInput
from tui_helpers import SIZE, SMALL, Notifications, steady_cursors, wait_until

# Screens default to ./artifacts/model: run where there is none, as a fresh checkout would.
pytestmark = pytest.mark.usefixtures("empty_workdir")


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


async def blank_history(pilot: Pilot[None], rows: int) -> None:
    """Wait for the history panel's reload (a worker), then empty it, columns and all: its rows
    carry real latencies, and their widths would size the columns differently each run."""
    panel = pilot.app.screen.query_one(HistoryPanel)
    await wait_until(pilot, lambda: panel.row_count == rows)
    panel.clear(columns=True)
    panel.add_columns(*HISTORY_COLUMNS)


def test_snapshot_chat_at_80x24_after_one_answer(
    fake_api: FakeApi, tui_plugins: Path, snap_compare: Callable[..., bool]
) -> None:
    async def ask_once(pilot: Pilot[None]) -> None:
        app = pilot.app
        assert isinstance(app, QAConsoleApp)
        await ask(pilot, "Who is Ada?")
        await wait_until(pilot, lambda: bool(app.exchanges) and app.exchanges[0].status == DONE)
        steady_cursors(pilot)
        exchange = app.exchanges[0]
        exchange.latency_ms = 12.0  # the one number that varies between runs
        view = app.chat.exchange_view(exchange.id)
        assert view is not None
        view.show_status()
        await blank_history(pilot, rows=1)
        await pilot.pause()

    assert snap_compare(QAConsoleApp(backend="one"), terminal_size=SMALL, run_before=ask_once)


# ------------------------------------------------------------------ history, switcher, compare


@pytest.mark.asyncio
async def test_up_and_down_recall_earlier_questions_and_the_draft(
    fake_api: FakeApi, tui_plugins: Path
) -> None:
    app = QAConsoleApp(backend="one")
    async with app.run_test(size=SIZE) as pilot:
        for question in ("Who is Ada?", "Where was Ada born?"):
            await ask(pilot, question)
            await wait_until(pilot, lambda: app.exchanges[-1].status == DONE)
        box = app.screen.query_one("#question", QuestionInput)
        await pilot.press(*"half typed")
        await pilot.press("up")
        assert box.value == "Where was Ada born?"
        await pilot.press("up", "up")  # the oldest stays put
        assert box.value == "Who is Ada?"
        await pilot.press("down")
        assert box.value == "Where was Ada born?"
        await pilot.press("down")
        assert box.value == "half typed"


@pytest.mark.asyncio
async def test_a_new_app_recalls_questions_from_the_history_store(
    fake_api: FakeApi, tui_plugins: Path
) -> None:
    first = QAConsoleApp(backend="one")
    async with first.run_test(size=SIZE) as pilot:
        await ask(pilot, "Asked yesterday?")
        await wait_until(pilot, lambda: first.exchanges[-1].status == DONE)
    second = QAConsoleApp(backend="one")
    async with second.run_test(size=SIZE) as pilot:
        await wait_until(pilot, lambda: second.screen.query_one(HistoryPanel).row_count == 1)
        await pilot.click("#question")
        await pilot.press("up")
        assert second.screen.query_one("#question", QuestionInput).value == "Asked yesterday?"


@pytest.mark.asyncio
async def test_the_switcher_shows_each_backends_health_and_switches(
    fake_api: FakeApi, second_api: TrackingApi, tui_plugins: Path, private_local_aws_dir: Path
) -> None:
    # Checking the shipped bio-sagemaker backend starts an embedded local AWS: in a folder of
    # this test's own, stopped after it.
    app = QAConsoleApp(backend="one")
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("ctrl+b")
        await wait_until(pilot, lambda: isinstance(app.screen, BackendSwitcher))
        table = app.screen.query_one("#backends", DataTable)

        def health(name: str) -> str:
            return str(table.get_cell(name, "health"))

        await wait_until(pilot, lambda: health("broken") != "checking…" and health("one") == "ok")
        assert health("broken") == "down"
        assert "500" in str(table.get_cell("broken", "detail"))
        await wait_until(pilot, lambda: health("two") == "ok")
        # the cursor starts on the current backend; "two" is declared right after "one"
        assert table.coordinate_to_cell_key(table.cursor_coordinate).row_key.value == "one"
        await pilot.press("down", "enter")
        await wait_until(pilot, lambda: isinstance(app.screen, ChatScreen))
        assert app.chat.backend == "two"
        await ask(pilot, "Which one now?")
        await wait_until(pilot, lambda: app.exchanges[-1].status == DONE)
        assert app.exchanges[-1].backend == "two"


async def tick_after_current(pilot: Pilot[None], count: int) -> None:
    """In the compare dialog, tick the `count` backends declared after the current one, confirm."""
    app = pilot.app
    assert isinstance(app, QAConsoleApp)
    moves = app.backend_names.index(app.chat.backend or "")
    await pilot.press(*["down"] * moves)
    for _ in range(count):
        await pilot.press("down", "space")
    await pilot.press("enter")
    await wait_until(pilot, lambda: isinstance(app.screen, ChatScreen))


@pytest.mark.asyncio
async def test_compare_mode_asks_each_chosen_backend_and_shows_answers_side_by_side(
    fake_api: FakeApi, second_api: TrackingApi, tui_plugins: Path
) -> None:
    app = QAConsoleApp(backend="one")
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("ctrl+o")
        await wait_until(pilot, lambda: isinstance(app.screen, CompareDialog))
        # the current backend (one) comes ticked; tick the two declared after it
        await tick_after_current(pilot, 2)
        await wait_until(pilot, lambda: isinstance(app.screen, ChatScreen))
        assert app.compare_backends == ["one", "two", "broken"]
        await ask(pilot, "Who is Ada?")
        await wait_until(pilot, lambda: bool(app.comparisons))
        answers = app.comparisons[0].answers
        await wait_until(pilot, lambda: all(a.status != "answering" for a in answers.values()))
        assert answers["one"].answer == answers["two"].answer == "answer to: Who is Ada?"
        assert answers["one"].latency_ms is not None and answers["two"].latency_ms is not None
        assert answers["broken"].status == "failed" and "500" in str(answers["broken"].error)
        view = app.screen.query_one("#comparison-1", ComparisonView)
        columns = [str(c.border_title) for c in view.query(".column")]
        assert columns == ["one", "two", "broken"]
        assert "ms" in str(view.query_one("#column-0 .status", Static).render())
    assert (fake_api.hits["/ask"], second_api.hits["/ask"]) == (1, 1)
    with open_store() as store:
        assert sorted(entry.backend for entry in store.recent()) == ["one", "two"]


def test_snapshot_compare_mode_at_80x24(
    fake_api: FakeApi,
    second_api: TrackingApi,
    tui_plugins: Path,
    snap_compare: Callable[..., bool],
) -> None:
    async def compare_once(pilot: Pilot[None]) -> None:
        app = pilot.app
        assert isinstance(app, QAConsoleApp)
        await pilot.press("ctrl+o")
        await wait_until(pilot, lambda: isinstance(app.screen, CompareDialog))
        await tick_after_current(pilot, 1)
        await ask(pilot, "Who is Ada?")
        await wait_until(pilot, lambda: bool(app.comparisons))
        answers = app.comparisons[0].answers
        await wait_until(pilot, lambda: all(a.status == "done" for a in answers.values()))
        view = app.screen.query_one("#comparison-1", ComparisonView)
        for answer in answers.values():
            answer.latency_ms = 12.0  # the one number that varies between runs
            view.refresh_answer(answer.backend)
        await blank_history(pilot, rows=2)
        steady_cursors(pilot)
        app.clear_notifications()
        await pilot.pause()

    assert snap_compare(QAConsoleApp(backend="one"), terminal_size=SMALL, run_before=compare_once)
