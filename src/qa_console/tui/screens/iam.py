"""The IAM screen: the preflight a deploy runs, as a table, with the policy that fixes it.

The inputs are what `qa-console iam check` takes (endpoint, model S3 URI, execution role), filled
from the settings. The check runs in a thread worker (ops.iam.check.check_deployment, the fixes
from ops.iam.fix); the table colours each row by its state, and the fix policies go to a
read-only TextArea whose text (or selection) one key copies to the clipboard.
"""

from __future__ import annotations

import json
from typing import Any, ClassVar

from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal
from textual.message import Message
from textual.widgets import Button, DataTable, Input, Label, Static, TextArea
from textual.worker import Worker

from qa_console.ops.iam.fix import TRUST_POLICY_NAME, PrincipalFix
from qa_console.ops.iam.report import IamReport
from qa_console.tui.screens.base import OpsScreen
from qa_console.tui.targets import target_for

STATE_ORDER = ("denied", "unknown", "allowed")
STATE_STYLES = {"allowed": "green", "denied": "bold red", "unknown": "yellow"}
SUBJECTS = {"caller": "caller", "execution role": "role"}  # short enough for 80 columns
NOTHING_TO_FIX = "# nothing is denied: no policy to add"


def fix_text(needed: list[PrincipalFix]) -> str:
    """The fix pane's text: each policy under a `# name.json` line, then how to apply it."""
    if not needed:
        return NOTHING_TO_FIX
    parts: list[str] = []
    for fix in needed:
        if fix.policy is not None:
            parts.append(f"# {fix.policy_name}.json: grants what the {fix.subject} lacks")
            parts.append(json.dumps(fix.policy, indent=2))
        if fix.trust_policy is not None:
            parts.append(f"# {TRUST_POLICY_NAME}.json: lets the service assume the {fix.subject}")
            parts.append(json.dumps(fix.trust_policy, indent=2))
        parts.extend(f"# apply: {command}" for command in fix.commands)
        parts.extend(
            f"# no Allow fixes {row.requirement.action} on {row.requirement.resource}: {row.detail}"
            for row in fix.blocked
        )
    return "\n".join(parts)


def summary_of(report: IamReport) -> Text:
    counts = report.to_dict()["counts"]
    text = Text()
    for state in ("allowed", "denied", "unknown"):
        text.append(f"{counts[state]} {state}", style=STATE_STYLES[state])
        text.append("  ")
    text.append(
        " ".join(f"{SUBJECTS.get(p.subject, p.subject)} {p.name}" for p in report.principals)
    )
    return text


class IamScreen(OpsScreen):
    DEFAULT_CSS = """
    IamScreen .field { height: 1; }
    IamScreen .field Label { width: 10; color: $text-muted; }
    IamScreen .field Input { width: 1fr; }
    #iam-check { width: auto; min-width: 9; }
    #iam-rows { height: 1fr; }
    #iam-summary { height: 1; }
    #iam-fix { height: 8; }
    """

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("ctrl+r", "check", "Check", id="iam_check"),
        Binding("ctrl+y", "copy_fix", "Copy fix", id="iam_copy"),
        Binding("ctrl+n", "create_role", "Create role", id="iam_create_role"),
    ]

    class RoleCreated(Message):
        def __init__(self, arn: str, created: bool, saved_to: str) -> None:
            super().__init__()
            self.arn = arn
            self.created = created
            self.saved_to = saved_to

    class Checked(Message):
        def __init__(self, report: IamReport, needed: list[PrincipalFix]) -> None:
            super().__init__()
            self.report = report
            self.needed = needed

    def compose_body(self) -> ComposeResult:
        with Horizontal(classes="field"):
            yield Label("endpoint")
            yield Input(placeholder="endpoint name", id="iam-endpoint", compact=True)
            yield Button("Check", id="iam-check", compact=True, variant="primary")
        with Horizontal(classes="field"):
            yield Label("model")
            yield Input(
                placeholder="s3://bucket/folder/model.tar.gz (default: bucket and folder)",
                id="iam-model",
                compact=True,
            )
        with Horizontal(classes="field"):
            yield Label("role")
            yield Input(placeholder="execution role ARN or name", id="iam-role", compact=True)
        yield DataTable(id="iam-rows", cursor_type="row", zebra_stripes=True)
        yield Static(
            "ctrl+r checks the deploy's permissions; ctrl+n creates the execution role",
            id="iam-summary",
        )
        yield TextArea(
            "", id="iam-fix", read_only=True, soft_wrap=False, show_cursor=False, compact=True
        )

    def on_mount(self) -> None:
        settings: dict[str, Any] = dict(getattr(self.app, "backend_defaults", {}) or {})
        self.query_one("#iam-endpoint", Input).value = settings.get("endpoint_name") or ""
        self.query_one("#iam-role", Input).value = settings.get("execution_role") or ""
        table = self.query_one("#iam-rows", DataTable)
        table.add_column("who", width=6)
        table.add_column("action", width=30)
        table.add_column("state", width=7)
        table.add_column("resource")
        self.query_one("#iam-endpoint", Input).focus()

    def value(self, field: str) -> str:
        return self.query_one(f"#iam-{field}", Input).value.strip()

    # ------------------------------------------------------------------ checking

    @on(Input.Submitted)
    @on(Button.Pressed, "#iam-check")
    def action_check(self) -> None:
        if not self.value("endpoint"):
            self.notify("name the endpoint to check (its resources are named after it)",
                        severity="warning")  # fmt: skip
            return
        self.query_one("#iam-check", Button).disabled = True
        self.query_one("#iam-summary", Static).update("checking...")
        self.check(self.value("endpoint"), self.value("model"), self.value("role"))

    @work(thread=True, exclusive=True, exit_on_error=False, group="iam-check")
    def check(self, endpoint: str, model: str, role: str) -> None:
        from qa_console.ops.iam.check import check_deployment
        from qa_console.ops.iam.fix import fixes

        target, identity, facts = self._facts(endpoint, model, role)
        report = check_deployment(target, facts, identity=identity)
        self.post_message(self.Checked(report, fixes(report)))

    def _facts(self, endpoint: str, model: str, role: str) -> tuple[Any, Any, Any]:
        """What a deploy of `endpoint` would touch, as `qa-console iam check` works it out."""
        from qa_console.ops.iam.facts import deployment_facts
        from qa_console.ops.iam.identity import caller_identity

        settings: dict[str, Any] = dict(getattr(self.app, "backend_defaults", {}) or {})
        target = target_for(self.app)
        identity = caller_identity(target)
        facts = deployment_facts(
            identity,
            target.region,
            endpoint_name=endpoint,
            execution_role=role or None,
            bucket=settings.get("bucket"),
            folder=settings.get("folder"),
            model_url=model or None,
        )
        return target, identity, facts

    # ------------------------------------------------------------------ creating the role

    def action_create_role(self) -> None:
        endpoint = self.value("endpoint")
        if not endpoint:
            self.notify("name the endpoint the role is for first", severity="warning")
            return
        from qa_console.ops.iam.role import default_role_name

        role = self.value("role") or default_role_name(endpoint)
        self.query_one("#iam-summary", Static).update(f"creating role {role}...")
        self.create_role(endpoint, self.value("model"), role)

    @work(thread=True, exclusive=True, exit_on_error=False, group="iam-role")
    def create_role(self, endpoint: str, model: str, role: str) -> None:
        """`qa-console iam create-role` then `config set execution_role`: the role with exactly
        the policy this deploy needs, kept in the settings file so Deploy and later runs use it."""
        from qa_console.ops.iam.role import create_execution_role
        from qa_console.settings import write_setting

        target, _identity, facts = self._facts(endpoint, model, role)
        created = create_execution_role(target, facts)
        saved_to = write_setting("execution_role", created.role_arn)
        self.post_message(self.RoleCreated(created.role_arn, created.created, str(saved_to)))

    @on(RoleCreated)
    def _role_created(self, message: RoleCreated) -> None:
        defaults = getattr(self.app, "backend_defaults", None)
        if isinstance(defaults, dict):
            defaults["execution_role"] = message.arn  # the Deploy screen reads it from here
        self.query_one("#iam-role", Input).value = message.arn
        verb = "created" if message.created else "already there:"
        self.notify(f"{verb} {message.arn} (execution_role saved to {message.saved_to})")
        self.action_check()

    @on(Checked)
    def _checked(self, message: Checked) -> None:
        table = self.query_one("#iam-rows", DataTable)
        table.clear()
        rows = [
            (SUBJECTS.get(principal.subject, principal.subject), row)
            for principal in message.report.principals
            for row in principal.rows
        ]
        # What needs doing first: at 80x24 only a few rows show without scrolling.
        rows.sort(key=lambda item: STATE_ORDER.index(str(item[1].state)))
        for who, row in rows:
            state = str(row.state)
            table.add_row(
                who,
                row.requirement.action,
                Text(state, style=STATE_STYLES[state]),
                row.requirement.resource,
            )
        self.query_one("#iam-summary", Static).update(summary_of(message.report))
        self.query_one("#iam-fix", TextArea).load_text(fix_text(message.needed))
        self.query_one("#iam-check", Button).disabled = False

    def worker_failed(self, worker: Worker[object]) -> None:
        self.query_one("#iam-check", Button).disabled = False
        self.query_one("#iam-summary", Static).update("the check failed (see the notification)")

    # ------------------------------------------------------------------ copying

    def action_copy_fix(self) -> None:
        pane = self.query_one("#iam-fix", TextArea)
        text = pane.selected_text or pane.text
        if not text:
            self.notify("run the check first (ctrl+r)", severity="warning")
            return
        self.app.copy_to_clipboard(text)
        self.notify("fix policy copied to the clipboard")
