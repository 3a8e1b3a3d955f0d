"""The Deploy screen against the embedded local AWS: the plan follows the form, a deploy shows
its steps and the endpoint's status while the app stays responsive, the endpoint's log shows in
the pane, ctrl+t chats with the new endpoint, and a second deploy is a notification."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from pathlib import Path

import pytest
from textual.pilot import Pilot
from textual.widgets import Input, Select

from fixtures_deploy import KNOWN
from fixtures_localaws import LocalAws
from fixtures_runtime import SERVING_IMAGE, SLOW_LOAD_HANDLER, handler_archive
from qa_console.events import ProgressEvent
from qa_console.ops.logs.fold import fold
from qa_console.ops.logs.lines import LogLine
from qa_console.tui.app import QAConsoleApp
from qa_console.tui.screens.chat import ChatScreen
from qa_console.tui.screens.deploy import DeployScreen
from qa_console.tui.transcript import DONE
from qa_console.tui.widgets.log_pane import LogBatch, LogPane
from tui_helpers import SMALL, Notifications, wait_until
from tui_ops_helpers import DECLARED_BACKEND, bare_role, declare_one_backend

# Screens default to ./artifacts/model: run where there is none, as a fresh checkout would.
pytestmark = pytest.mark.usefixtures("empty_workdir")

BUCKET = "tui-deploy-tests"


@pytest.fixture(autouse=True)
def _one_backend(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    declare_one_backend(tmp_path, monkeypatch)


def deploy_app(local_aws: LocalAws, role: str, endpoint: str) -> QAConsoleApp:
    return QAConsoleApp(
        backend=DECLARED_BACKEND,
        settings={
            "target": "local",
            "region": local_aws.region,
            "execution_role": role,
            "bucket": BUCKET,
            "folder": "tui",
            "endpoint_name": endpoint,
        },
    )


async def open_deploy(pilot: Pilot[None], model: Path | str) -> DeployScreen:
    app = pilot.app
    await pilot.press("f5")
    await wait_until(pilot, lambda: isinstance(app.screen, DeployScreen))
    screen = app.screen
    assert isinstance(screen, DeployScreen)
    screen.query_one("#deploy-model", Input).value = str(model)
    await pilot.pause()
    return screen


def text_of(screen: DeployScreen, selector: str) -> str:
    return str(screen.query_one(selector).render())


@pytest.mark.asyncio
async def test_a_deploy_shows_its_steps_and_log_stays_responsive_and_chats_with_the_endpoint(
    local_aws: LocalAws, deploy_role: str, t5_archive: Path
) -> None:
    name = f"tui-dep-{uuid.uuid4().hex[:6]}"
    app = deploy_app(local_aws, deploy_role, name)
    notes = Notifications()
    async with app.run_test(size=SMALL, notifications=True, message_hook=notes.hook) as pilot:
        screen = await open_deploy(pilot, t5_archive)
        plan = text_of(screen, "#deploy-plan")
        assert "serverless" in plan and "/hour" in plan and "/month" in plan
        await pilot.press("ctrl+r")
        await wait_until(pilot, lambda: screen.deploying == name)
        await wait_until(pilot, lambda: bool(screen.steps.tasks), 20)
        # the app answers keys while the deploy runs: away to the chat and back
        await pilot.press("f1")
        await wait_until(pilot, lambda: isinstance(app.screen, ChatScreen))
        await pilot.press("f5")
        await wait_until(pilot, lambda: app.screen is screen)
        await pilot.press("ctrl+r")  # a second deploy while this one runs: refused, said so
        await wait_until(pilot, lambda: any(f"a deploy of {name} is under way" in n for n in notes))
        await wait_until(pilot, lambda: screen.serving == name, 60)
        assert "InService" in text_of(screen, "#deploy-status")
        assert "endpoint" in screen.steps.tasks and screen.steps.tasks["endpoint"][1]
        pane = screen.query_one(LogPane)
        await wait_until(pilot, lambda: len(pane.records) > 0 and "i-" in pane.shown_text, 30)
        await pilot.press("ctrl+t")
        await wait_until(pilot, lambda: isinstance(app.screen, ChatScreen))
        assert app.chat.backend == name
        await pilot.click("#question")
        await pilot.press(*KNOWN[0], "enter")
        await wait_until(pilot, lambda: bool(app.exchanges) and app.exchanges[0].status == DONE, 30)
        assert app.exchanges[0].answer.strip() == KNOWN[1]
        assert app.is_running


@pytest.mark.asyncio
async def test_a_deploy_of_an_endpoint_already_being_created_is_a_notification(
    local_aws: LocalAws, deploy_role: str, t5_archive: Path, tmp_path: Path
) -> None:
    name = f"tui-busy-{uuid.uuid4().hex[:6]}"
    slow = handler_archive(tmp_path, SLOW_LOAD_HANDLER.replace("SECONDS", "40"))
    s3, sagemaker = local_aws.client("s3"), local_aws.client("sagemaker")
    s3.create_bucket(Bucket=BUCKET)
    s3.upload_file(str(slow), BUCKET, f"busy/{name}.tar.gz")
    sagemaker.create_model(
        ModelName=f"{name}-m",
        ExecutionRoleArn=deploy_role,
        PrimaryContainer={
            "Image": SERVING_IMAGE,
            "ModelDataUrl": f"s3://{BUCKET}/busy/{name}.tar.gz",
        },
    )
    sagemaker.create_endpoint_config(
        EndpointConfigName=f"{name}-c",
        ProductionVariants=[
            {
                "VariantName": "AllTraffic",
                "ModelName": f"{name}-m",
                "ServerlessConfig": {"MemorySizeInMB": 2048, "MaxConcurrency": 1},
            }
        ],
    )
    sagemaker.create_endpoint(EndpointName=name, EndpointConfigName=f"{name}-c")  # Creating
    app = deploy_app(local_aws, deploy_role, name)
    notes = Notifications()
    async with app.run_test(size=SMALL, notifications=True, message_hook=notes.hook) as pilot:
        screen = await open_deploy(pilot, t5_archive)
        await pilot.press("ctrl+r")
        await wait_until(
            pilot, lambda: any(f"endpoint {name} is Creating" in note for note in notes), 40
        )
        assert app.is_running and screen.deploying is None
        assert "failed" in text_of(screen, "#deploy-status")
        assert not screen.query_one("#deploy-go").disabled


@pytest.mark.asyncio
async def test_a_denied_preflight_is_a_notification_with_the_denied_rows_in_the_log_pane(
    local_aws: LocalAws, t5_archive: Path
) -> None:
    name = f"tui-denied-{uuid.uuid4().hex[:6]}"
    app = deploy_app(local_aws, bare_role(local_aws), name)
    notes = Notifications()
    async with app.run_test(size=SMALL, notifications=True, message_hook=notes.hook) as pilot:
        screen = await open_deploy(pilot, t5_archive)
        await pilot.press("ctrl+r")
        await wait_until(pilot, lambda: any("the deploy needs are denied" in n for n in notes), 30)
        assert any("qa-console iam check" in note for note in notes)  # the hint
        pane = screen.query_one(LogPane)
        await wait_until(pilot, lambda: "denied: s3:GetObject" in pane.shown_text)
        assert app.is_running and screen.deploying is None and screen.serving is None
        assert name not in {
            e["EndpointName"] for e in local_aws.client("sagemaker").list_endpoints()["Endpoints"]
        }


@pytest.mark.asyncio
async def test_the_plan_follows_the_form(
    local_aws: LocalAws, deploy_role: str, t5_archive: Path
) -> None:
    app = deploy_app(local_aws, deploy_role, "tui-plan")
    async with app.run_test(size=SMALL) as pilot:
        screen = await open_deploy(pilot, t5_archive)
        assert "serverless 2048 MB, up to 5 at once" in text_of(screen, "#deploy-plan")
        screen.query_one("#deploy-mode", Select).value = "realtime"
        await wait_until(pilot, lambda: "ml.t2.medium" in text_of(screen, "#deploy-plan"))
        assert "$0.056/hour" in text_of(screen, "#deploy-plan")
        assert screen.query_one("#deploy-field-instance").display
        assert not screen.query_one("#deploy-field-memory").display
        screen.query_one("#deploy-budget", Input).value = "0.01"
        await wait_until(pilot, lambda: "no instance fits" in text_of(screen, "#deploy-plan"))


# ---------------------------------------------------------------------------- snapshots (UX spec)


def test_snapshot_deploy_at_80x24_with_a_model_chosen(
    local_aws: LocalAws, deploy_role: str, t5_archive: Path, snap_compare: Callable[..., bool]
) -> None:
    async def fill(pilot: Pilot[None]) -> None:
        screen = await open_deploy(pilot, "artifacts/model")  # the same text every run
        screen.query_one("#deploy-go").focus()  # no text cursor: it blinks
        await pilot.pause()

    app = deploy_app(local_aws, "arn:aws:iam::123456789012:role/qa-console-exec", "biography-bot")
    assert snap_compare(app, terminal_size=SMALL, run_before=fill)


def test_snapshot_deploy_at_80x24_in_service_with_its_steps_and_log(
    local_aws: LocalAws, snap_compare: Callable[..., bool]
) -> None:
    """The screen after a deploy, from the messages its workers post (fixed names, times and
    seconds, so the picture is the same every run)."""
    name = "biography-bot"
    stamp = "20261207-092000"
    events = [
        ProgressEvent("check", "model.tar.gz", done=True),
        ProgressEvent(
            "upload", "verified s3://qa-console-bucket/qa-console/model.tar.gz", done=True
        ),
        ProgressEvent("iam", "permissions checked (0 unknown)", done=True),
        ProgressEvent("model", f"model {name}-m-{stamp}", done=True),
        ProgressEvent("config", f"endpoint config {name}-c-{stamp}", done=True),
        ProgressEvent("endpoint", f"{name}: InService", metrics={"elapsed_s": 6.0}, done=True),
        ProgressEvent("warmup", "first answer in 0.42 s", done=True),
    ]
    log = [
        LogLine(1_796_635_200_000 + n * 1000, "AllTraffic/i-0abc1234", text, str(n))
        for n, text in enumerate(
            ["starting worker pid 641", "model loaded in 3769 ms", "GET /ping 200"]
        )
    ]

    async def deployed(pilot: Pilot[None]) -> None:
        screen = await open_deploy(pilot, "artifacts/model")
        screen.deploying = name
        for event in events:
            screen.post_message(DeployScreen.Progress(event))
        screen.post_message(DeployScreen.Deployed(name, "InService", 6.0, updated=False))
        screen.logs_of = name
        screen.post_message(LogBatch(name, list(fold(log))))
        pane = screen.query_one(LogPane)
        await wait_until(pilot, lambda: screen.serving == name and len(pane.records) == 3)
        screen.query_one("#deploy-go").focus()  # no text cursor: it blinks
        await pilot.pause()

    app = deploy_app(local_aws, "arn:aws:iam::123456789012:role/qa-console-exec", name)
    assert snap_compare(app, terminal_size=SMALL, run_before=deployed)
