"""The Package screen driven with Pilot: a real tiny model folder packaged by the library, its
findings and sha256 shown, then uploaded to the embedded local AWS and found there with boto3."""

from __future__ import annotations

import hashlib
import shutil
from collections.abc import Callable
from pathlib import Path

import pytest
from rich.text import Text
from textual.pilot import Pilot
from textual.widgets import Button, DataTable, Input, Static

from fixtures_localaws import LocalAws
from qa_console.tui.app import QAConsoleApp
from qa_console.tui.screens.deploy import DeployScreen
from qa_console.tui.screens.package import PackageScreen
from qa_console.tui.widgets.task_progress import TaskProgress
from tui_helpers import SMALL, Notifications, steady_cursors, wait_until

# Screens default to ./artifacts/model: run where there is none, as a fresh checkout would.
pytestmark = pytest.mark.usefixtures("empty_workdir")


async def open_package(pilot: Pilot[None]) -> PackageScreen:
    await pilot.press("f3")
    await wait_until(pilot, lambda: isinstance(pilot.app.screen, PackageScreen))
    screen = pilot.app.screen
    assert isinstance(screen, PackageScreen)
    return screen


def text_of(screen: PackageScreen, selector: str) -> str:
    return str(screen.query_one(selector, Static).render())


async def choose_folder(pilot: Pilot[None], screen: PackageScreen, folder: Path) -> None:
    screen.query_one("#model-dir", Input).value = str(folder)
    await pilot.click("#model-dir")
    await pilot.press("enter")


def file_names(screen: PackageScreen) -> list[str]:
    table = screen.query_one("#package-files", DataTable)
    return [str(table.get_row_at(index)[0]) for index in range(table.row_count)]


@pytest.fixture
def model_copy(tiny_model_dir: Path, tmp_path: Path) -> Path:
    """A copy of the tiny model: the archive is written beside the folder."""
    return Path(shutil.copytree(tiny_model_dir, tmp_path / "model"))


@pytest.mark.asyncio
async def test_package_shows_files_findings_and_sha256_then_uploads_to_local_aws(
    model_copy: Path, local_aws: LocalAws
) -> None:
    bucket = "tui-package-test"
    settings = {"target": "local", "region": local_aws.region, "bucket": bucket, "folder": "tui/"}
    app = QAConsoleApp(settings=settings)
    async with app.run_test(size=SMALL, notifications=True) as pilot:
        screen = await open_package(pilot)
        await choose_folder(pilot, screen, model_copy)
        await wait_until(pilot, lambda: "config.json" in file_names(screen))
        assert "model.safetensors" in file_names(screen)

        await pilot.press("ctrl+t")
        await wait_until(pilot, lambda: screen.archive is not None, timeout_s=60)
        archive = model_copy.with_name("model.tar.gz")
        assert screen.archive == archive
        sha = hashlib.sha256(archive.read_bytes()).hexdigest()
        assert sha in text_of(screen, "#package-sha")
        assert "ok: model.tar.gz" in text_of(screen, "#package-report")
        assert {"code/inference.py", "manifest.json"} <= set(file_names(screen))
        bar = screen.query_one(TaskProgress).bar
        assert bar.total and bar.progress == bar.total  # the bytes checked, all of them
        await pilot.press("f5")  # the Deploy screen starts from the archive that passed
        await wait_until(pilot, lambda: isinstance(app.screen, DeployScreen))
        assert app.screen.query_one("#deploy-model", Input).value == str(archive)
        await pilot.press("f3")
        await wait_until(pilot, lambda: app.screen is screen)

        await pilot.press("ctrl+s")
        await wait_until(pilot, lambda: screen.url is not None, timeout_s=60)
        assert screen.url == f"s3://{bucket}/tui/model.tar.gz"
        assert screen.url in text_of(screen, "#package-url")
    head = local_aws.client("s3").head_object(Bucket=bucket, Key="tui/model.tar.gz")
    assert head["ContentLength"] == archive.stat().st_size


@pytest.mark.asyncio
async def test_a_folder_that_is_not_a_model_is_a_one_line_notification(tmp_path: Path) -> None:
    folder = tmp_path / "notes"
    folder.mkdir()
    (folder / "readme.txt").write_text("not a model", encoding="utf-8")
    app = QAConsoleApp()
    notes = Notifications()
    async with app.run_test(size=SMALL, notifications=True, message_hook=notes.hook) as pilot:
        screen = await open_package(pilot)
        await choose_folder(pilot, screen, folder)
        await wait_until(pilot, lambda: any("is not a model folder" in note for note in notes))
        await pilot.press("ctrl+t")
        await wait_until(pilot, lambda: len([n for n in notes if "not a model" in n]) == 2)
        assert "failed" in str(screen.query_one(TaskProgress).query_one(".line", Static).render())
        await pilot.press("ctrl+s")  # nothing built: a warning, not an upload
        await wait_until(pilot, lambda: any("package a model first" in note for note in notes))
        assert app.is_running and screen.archive is None


@pytest.mark.asyncio
async def test_an_archive_is_checked_and_its_errors_shown_in_red(
    tiny_archive: Path, tmp_path: Path
) -> None:
    broken = tmp_path / "broken.tar.gz"
    broken.write_bytes(b"this is no gzip stream")
    app = QAConsoleApp()
    async with app.run_test(size=SMALL, notifications=True) as pilot:
        screen = await open_package(pilot)
        await choose_folder(pilot, screen, broken)
        assert str(screen.query_one("#package", Button).label) == "Check"
        await pilot.press("ctrl+t")
        report = screen.query_one("#package-report", Static)
        await wait_until(pilot, lambda: "refused" in str(report.render()))
        shown = report.content
        assert isinstance(shown, Text) and "[not-tar-gz]" in shown.plain
        assert any(span.style == "bold red" for span in shown.spans)  # errors are red
        assert screen.archive is None and screen.query_one("#upload", Button).disabled

        await choose_folder(pilot, screen, tiny_archive)  # a good one passes and can go up
        await pilot.press("ctrl+t")
        await wait_until(pilot, lambda: screen.archive == tiny_archive, timeout_s=60)
        assert "ok: model.tar.gz" in str(report.render())
        assert "config.json" in file_names(screen)
        assert not screen.query_one("#upload", Button).disabled


# ---------------------------------------------------------------------------- snapshots (UX spec)


def test_snapshot_package_at_80x24_before_packaging(
    snap_compare: Callable[..., bool], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)  # no artifacts/model here, whatever the checkout holds

    async def show_package(pilot: Pilot[None]) -> None:
        await open_package(pilot)
        steady_cursors(pilot)
        await pilot.pause()

    assert snap_compare(QAConsoleApp(), terminal_size=SMALL, run_before=show_package)


def test_snapshot_package_at_80x24_after_packaging_and_uploading(
    model_copy: Path, local_aws: LocalAws, snap_compare: Callable[..., bool]
) -> None:
    async def package_and_upload(pilot: Pilot[None]) -> None:
        screen = await open_package(pilot)
        await choose_folder(pilot, screen, model_copy)
        await pilot.press("ctrl+t")
        await wait_until(pilot, lambda: screen.archive is not None, timeout_s=60)
        await pilot.press("ctrl+s")
        await wait_until(pilot, lambda: screen.url is not None, timeout_s=60)
        # what varies between runs: the temporary folder and the weights' hash
        screen.query_one("#model-dir", Input).value = "artifacts/model"
        screen.query_one("#package-sha", Static).update("sha256 " + "0" * 64)
        screen.query_one("#package-files", DataTable).focus()
        await pilot.pause()

    settings = {"target": "local", "region": local_aws.region, "bucket": "tui-package-snapshot"}
    app = QAConsoleApp(settings=settings)
    assert snap_compare(app, terminal_size=SMALL, run_before=package_and_upload)
