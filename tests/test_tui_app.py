"""The app's frame: every screen by its key and from the command palette, the header, 80x24."""

from __future__ import annotations

from pathlib import Path

import pytest

from fixtures_foundation import FakeApi, write_plugins
from qa_console.tui.app import QAConsoleApp
from qa_console.tui.screens.chat import ChatScreen
from qa_console.tui.screens.deploy import DeployScreen
from qa_console.tui.screens.iam import IamScreen
from qa_console.tui.screens.logs import LogsScreen
from qa_console.tui.screens.package import PackageScreen
from qa_console.tui.screens.train import TrainScreen
from qa_console.tui.widgets.ops_header import OpsHeader
from tui_helpers import SMALL, wait_until

# Screens default to ./artifacts/model: run where there is none, as a fresh checkout would.
pytestmark = pytest.mark.usefixtures("empty_workdir")


@pytest.fixture
def one_backend(fake_api: FakeApi, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    path = write_plugins(
        tmp_path / "plugins.toml", {"one": {"kind": "http", "url": fake_api.url("/ask")}}
    )
    monkeypatch.setenv("QA_CONSOLE_PLUGINS", str(path))
    return path


def header_text(app: QAConsoleApp) -> str:
    return str(app.screen.query_one(OpsHeader).render())


@pytest.mark.asyncio
async def test_each_screen_opens_by_its_key_and_the_header_follows(one_backend: Path) -> None:
    app = QAConsoleApp(backend="one", settings={"target": "local", "region": "eu-west-1"})
    async with app.run_test(size=SMALL) as pilot:
        assert isinstance(app.screen, ChatScreen)
        await wait_until(pilot, lambda: "backend one" in header_text(app))
        assert "target local" in header_text(app) and "region eu-west-1" in header_text(app)
        for key, kind in [
            ("f2", TrainScreen),
            ("f3", PackageScreen),
            ("f4", IamScreen),
            ("f5", DeployScreen),
            ("f6", LogsScreen),
            ("f1", ChatScreen),
        ]:
            await pilot.press(key)
            await wait_until(pilot, lambda kind=kind: isinstance(app.screen, kind))
            assert "backend one" in header_text(app)


@pytest.mark.asyncio
async def test_the_command_palette_opens_a_screen(one_backend: Path) -> None:
    app = QAConsoleApp(backend="one")
    async with app.run_test(size=SMALL) as pilot:
        await pilot.press("ctrl+p")
        await pilot.press(*"open deploy", "enter")
        await wait_until(pilot, lambda: isinstance(app.screen, DeployScreen))


@pytest.mark.asyncio
async def test_chat_with_adds_a_session_backend_and_selects_it(
    one_backend: Path, fake_api: FakeApi
) -> None:
    app = QAConsoleApp(backend="one")
    async with app.run_test(size=SMALL) as pilot:
        await pilot.press("f5")
        await wait_until(pilot, lambda: isinstance(app.screen, DeployScreen))
        app.chat_with("fresh", "http", {"url": fake_api.url("/ask")}, "deploy screen")
        await wait_until(pilot, lambda: isinstance(app.screen, ChatScreen))
        assert app.chat.backend == "fresh"
        await wait_until(pilot, lambda: "backend fresh" in header_text(app))
        assert app.session is not None and "fresh" in app.session.names
