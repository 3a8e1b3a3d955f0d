"""The Package screen: a model folder -> model.tar.gz (checked, hashed) -> S3.

Layout (fits 80x24): the model folder with Package and Upload, one progress bar (bytes packed,
checked or uploaded), the files with their sizes beside the validator's findings, then the
archive's sha256 and, once uploaded, its s3:// URL. Given a model.tar.gz instead of a folder,
the button checks that archive (and Upload sends it when it passes).

The library does the work: `plan` lists what would ship, `build` writes the archive,
`check_tarball` reports what is wrong with it, `upload_model` checks again and uploads to the
target/region/bucket/folder of the app's settings. Each runs in a thread worker that posts
messages; a failure is a notification (OpsScreen) and the buttons come back.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import ClassVar

from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, VerticalScroll
from textual.message import Message
from textual.widgets import Button, DataTable, Input, Static
from textual.worker import Worker

from qa_console.events import ProgressEvent
from qa_console.ops.packaging.build import PackageResult
from qa_console.ops.packaging.check import CheckReport
from qa_console.ops.packaging.extract import is_model_archive
from qa_console.ops.upload import UploadOutcome
from qa_console.tui.screens.base import OpsScreen
from qa_console.tui.widgets.findings import findings_text
from qa_console.tui.widgets.form_row import FormRow
from qa_console.tui.widgets.task_progress import ProgressReported, TaskProgress, amount_text

DEFAULT_MODEL_DIR = "artifacts/model"  # where `qa-console train` writes by default


class PackageScreen(OpsScreen):
    DEFAULT_CSS = """
    #package-top { height: 1; margin-bottom: 1; }
    #package-top FormRow { width: 1fr; }
    #package-top Button { margin-left: 1; min-width: 9; }
    #package-panes { height: 1fr; }
    #package-files { width: 1fr; }
    #package-findings { width: 1fr; padding: 0 1; }
    #package-sha, #package-url { height: 1; }
    """

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("ctrl+t", "package", "Package", id="package_model"),
        Binding("ctrl+s", "upload", "Upload", id="upload_archive"),
    ]

    class Planned(Message):
        def __init__(self, files: list[tuple[str, int]], skipped: list[tuple[str, str]]) -> None:
            super().__init__()
            self.files = files
            self.skipped = skipped

    class Built(Message):
        def __init__(self, result: PackageResult, report: CheckReport) -> None:
            super().__init__()
            self.result = result
            self.report = report

    class Checked(Message):
        """An existing archive was checked (nothing built)."""

        def __init__(self, report: CheckReport) -> None:
            super().__init__()
            self.report = report

    class Uploaded(Message):
        def __init__(self, outcome: UploadOutcome) -> None:
            super().__init__()
            self.outcome = outcome

    def __init__(self) -> None:
        super().__init__()
        self.model_dir_default = DEFAULT_MODEL_DIR
        self.built: PackageResult | None = None
        self.archive: Path | None = None  # the archive that passed the check: what Upload sends
        self.url: str | None = None

    def compose_body(self) -> ComposeResult:
        with Horizontal(id="package-top"):
            yield FormRow("model", "model-dir", self.model_dir_default)
            yield Button("Package", id="package", variant="primary", compact=True)
            yield Button("Upload", id="upload", disabled=True, compact=True)
        yield TaskProgress(id="package-progress")
        with Horizontal(id="package-panes"):
            yield DataTable(id="package-files", cursor_type="row", zebra_stripes=True)
            with VerticalScroll(id="package-findings"):
                yield Static("findings appear after packaging", id="package-report")
        yield Static("", id="package-sha")
        yield Static("", id="package-url")

    def on_mount(self) -> None:
        self.query_one("#package-files", DataTable).add_columns("file", "size")
        self._plan_if_there(self.model_dir_default)

    def suggest_model_dir(self, folder: Path) -> None:
        """Start from this folder (the model the Train screen just wrote)."""
        self.model_dir_default = str(folder)
        if self.is_mounted:
            self.query_one("#model-dir", Input).value = str(folder)
            self._plan_if_there(str(folder))

    def _offer_to_deploy(self) -> None:
        """The Deploy screen starts from the archive that just passed its check."""
        from qa_console.tui.screens.deploy import DeployScreen

        deploy = self.app.get_screen("deploy")
        if self.archive is not None and isinstance(deploy, DeployScreen):
            deploy.suggest_model(str(self.archive))

    def _plan_if_there(self, folder: str) -> None:
        """List the folder's files when there is one; else say where a model comes from."""
        if Path(folder).expanduser().is_dir():
            self.plan_files(folder)
        else:
            self.query_one("#package-report", Static).update(
                f"no model at {folder} yet: train one (F2), or type a model folder or a "
                "model.tar.gz above and press Enter"
            )

    @property
    def model_dir(self) -> str:
        return self.query_one("#model-dir", Input).value.strip() or DEFAULT_MODEL_DIR

    @property
    def names_an_archive(self) -> bool:
        return is_model_archive(Path(self.model_dir).expanduser())

    @on(Input.Submitted, "#model-dir")
    def _folder_chosen(self) -> None:
        if not self.names_an_archive:
            self.plan_files(self.model_dir)

    @on(Input.Changed, "#model-dir")
    def _path_changed(self) -> None:
        self.query_one("#package", Button).label = "Check" if self.names_an_archive else "Package"

    # ------------------------------------------------------------------ workers

    @work(thread=True, exclusive=True, exit_on_error=False, group="plan")
    def plan_files(self, folder: str) -> None:
        """What a build would ship from `folder` (raises, as a notification, for a non-model)."""
        from qa_console.ops.packaging.build import plan

        chosen = plan(folder)
        files = [(name, path.stat().st_size) for name, path in chosen.sources.items()]
        self.post_message(self.Planned(files, chosen.skipped))

    @work(thread=True, exclusive=True, exit_on_error=False, group="package")
    def build_package(self, folder: str) -> None:
        from qa_console.ops.packaging.build import build
        from qa_console.ops.packaging.check import check_tarball

        result = build(folder, progress=self.report_progress)
        report = check_tarball(result.archive, progress=self.report_progress)
        self.post_message(self.Built(result, report))

    @work(thread=True, exclusive=True, exit_on_error=False, group="package")
    def check_archive(self, archive: str) -> None:
        from qa_console.ops.packaging.check import check_tarball

        self.post_message(self.Checked(check_tarball(archive, progress=self.report_progress)))

    @work(thread=True, exclusive=True, exit_on_error=False, group="package")
    def upload_archive(self, archive: Path) -> None:
        from qa_console.ops.aws.target import resolve
        from qa_console.ops.upload import upload_model

        # QAConsoleApp's effective settings (target, region, bucket, folder), as `upload` uses.
        settings = getattr(self.app, "backend_defaults", {})
        outcome = upload_model(
            resolve(settings.get("target"), settings.get("region")),
            archive,
            bucket=settings.get("bucket"),
            folder=settings.get("folder"),
            progress=self.report_progress,
        )
        self.post_message(self.Uploaded(outcome))

    # ------------------------------------------------------------------ actions

    @on(Button.Pressed, "#package")
    def action_package(self) -> None:
        """Build the folder's archive and check it; or, given an archive, only check it."""
        self.built = self.archive = self.url = None
        self.query_one("#package-sha", Static).update("")
        self.query_one("#package-url", Static).update("")
        checking = self.names_an_archive
        self.query_one("#package-report", Static).update("checking…" if checking else "packaging…")
        self._busy(True)
        if checking:
            self.check_archive(self.model_dir)
        else:
            self.build_package(self.model_dir)

    @on(Button.Pressed, "#upload")
    def action_upload(self) -> None:
        if self.archive is None:
            self.notify(
                "package a model first (or check an archive that passes)", severity="warning"
            )
            return
        self._busy(True)
        self.query_one("#package-url", Static).update("uploading…")
        self.upload_archive(self.archive)

    def _busy(self, busy: bool) -> None:
        self.query_one("#package", Button).disabled = busy
        self.query_one("#upload", Button).disabled = busy or self.archive is None

    def worker_failed(self, worker: Worker[object]) -> None:
        if worker.group == "package":
            self._busy(False)
            self.query_one(TaskProgress).say("failed: see the notification")
            if self.url is None:
                self.query_one("#package-url", Static).update("")

    # ------------------------------------------------------------------ what workers report

    @on(Planned)
    def _planned(self, message: Planned) -> None:
        self._show_files(message.files, message.skipped)

    def report_progress(self, event: ProgressEvent) -> None:
        """The library's progress callback: called in the worker thread, posts a message."""
        self.post_message(ProgressReported(event))

    @on(ProgressReported)
    def _progress(self, message: ProgressReported) -> None:
        self.query_one(TaskProgress).show(message.event)

    @on(Built)
    def _built(self, message: Built) -> None:
        result, report = message.result, message.report
        self.built = result
        self.archive = result.archive if report.ok else None
        self._offer_to_deploy()
        self._show_files(archive_files(result), result.skipped)
        self.query_one("#package-report", Static).update(findings_text(report))
        self.query_one(TaskProgress).say(
            f"{result.archive.name}: {amount_text(result.archive_bytes, 'bytes')} "
            f"from {amount_text(result.unpacked_bytes, 'bytes')} in {result.seconds:.1f} s"
        )
        self.query_one("#package-sha", Static).update(
            Text.assemble(("sha256 ", "dim"), result.sha256)
        )
        self._busy(False)

    @on(Checked)
    def _checked(self, message: Checked) -> None:
        report = message.report
        self.archive = report.archive if report.ok else None
        self._offer_to_deploy()
        self._show_files(manifest_files(report), [])
        self.query_one("#package-report", Static).update(findings_text(report))
        self.query_one(TaskProgress).say(f"checked {report.archive.name}")
        self._busy(False)

    @on(Uploaded)
    def _uploaded(self, message: Uploaded) -> None:
        upload = message.outcome.upload
        self.url = upload.url
        self.query_one("#package-sha", Static).update(
            Text.assemble(("sha256 ", "dim"), upload.sha256)
        )
        self.query_one("#package-url", Static).update(
            Text.assemble(("uploaded ", "dim"), upload.url)
        )
        what = "already there (same sha256)" if upload.skipped else "uploaded and verified"
        self.query_one(TaskProgress).say(f"{amount_text(upload.size, 'bytes')} {what}")
        self._busy(False)

    def _show_files(
        self, files: Sequence[tuple[str, int | None]], skipped: list[tuple[str, str]]
    ) -> None:
        table = self.query_one("#package-files", DataTable)
        table.clear()
        for name, size in files:
            shown = amount_text(size, "bytes") if size is not None else "?"
            table.add_row(name, Text(shown, justify="right"))
        for name, reason in skipped:
            table.add_row(Text(name, style="dim strike"), Text(reason, style="dim"))
        table.border_title = f"{len(files)} files"


def archive_files(result: PackageResult) -> list[tuple[str, int]]:
    """Every file in the archive with its size, manifest.json (written last) included."""
    from qa_console.ops.packaging.build import manifest_bytes
    from qa_console.ops.packaging.layout import MANIFEST

    files = [(item.name, item.size) for item in result.files]
    return [*files, (MANIFEST, len(manifest_bytes(result.manifest)))]


def manifest_files(report: CheckReport) -> list[tuple[str, int | None]]:
    """The checked archive's files, sized from its manifest where it lists them."""
    listed = (report.manifest or {}).get("files", {})
    sizes = {name: entry.get("size") for name, entry in listed.items() if isinstance(entry, dict)}
    return [(name, sizes.get(name)) for name in report.files]
