"""`qa-console iam check|policy|create-role`: the IAM a deploy needs, checked, printed, created.

    qa-console iam check [--role ARN] [--endpoint NAME] [--bucket B] [--json]
    qa-console iam policy --caller|--role|--trust [--role-arn ARN] [--endpoint NAME]
    qa-console iam create-role NAME [--json]

The deployment checked is the one `deploy` would make from the settings (execution_role, bucket,
folder, endpoint_name), each overridable here. `check` exits 3 when anything is denied and
prints the minimal policy that grants exactly that; `policy` prints the whole minimal policy.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Annotated

import typer

from qa_console.cli.context import state
from qa_console.cli.output import JsonFlag, Output, print_json, print_result, print_rich
from qa_console.errors import UsageError

if TYPE_CHECKING:
    from qa_console.ops.aws.target import Target
    from qa_console.ops.iam.facts import DeploymentFacts
    from qa_console.ops.iam.fix import PrincipalFix
    from qa_console.ops.iam.report import IamReport, PrincipalReport

iam_app = typer.Typer(
    help="Check, print and create the IAM permissions a deploy needs.", no_args_is_help=True
)

EndpointOption = Annotated[
    str | None,
    typer.Option("--endpoint", help="Endpoint name (default: the endpoint_name setting)."),
]
BucketOption = Annotated[
    str | None, typer.Option("--bucket", help="Model bucket (default: the bucket setting).")
]
ModelOption = Annotated[
    str | None,
    typer.Option(
        "--model",
        help="s3:// URL of the model.tar.gz (default: <folder>/model.tar.gz in the bucket).",
    ),
]
ImageOption = Annotated[
    str | None,
    typer.Option("--image", help="Inference image URI (default: the Hugging Face repository)."),
]
_STATE_STYLES = {"allowed": "green", "denied": "bold red", "unknown": "yellow"}
PIPED_WIDTH = 200  # one table row a line in files and pipes (the longest rows are ~190 wide)


def _plan(
    ctx: typer.Context,
    role: str | None,
    endpoint: str | None,
    bucket: str | None,
    model: str | None,
    image: str | None,
) -> tuple[Target, DeploymentFacts]:
    """The target and the deployment the settings (and these overrides) describe."""
    from qa_console.ops.iam.facts import deployment_facts
    from qa_console.ops.iam.identity import caller_identity

    cli = state(ctx)
    settings = cli.settings()
    target = cli.target()
    facts = deployment_facts(
        caller_identity(target),
        target.region,
        endpoint_name=endpoint or settings.endpoint_name,
        execution_role=role or settings.execution_role,
        bucket=bucket or settings.bucket,
        folder=settings.folder,
        model_url=model,
        image_uri=image,
    )
    return target, facts


# --- check -------------------------------------------------------------------------------------


@iam_app.command("check")
def check(
    ctx: typer.Context,
    role: Annotated[
        str | None,
        typer.Option("--role", help="Execution role ARN or name (default: execution_role)."),
    ] = None,
    endpoint: EndpointOption = None,
    bucket: BucketOption = None,
    model: ModelOption = None,
    image: ImageOption = None,
    as_json: JsonFlag = False,
) -> None:
    """Check every permission a deploy needs, for you and for the execution role.

    Exits 3 when anything is denied, after printing the minimal policy that grants it.
    """
    from qa_console.ops.iam.check import check_deployment
    from qa_console.ops.iam.fix import fixes

    out = Output(as_json)
    target, facts = _plan(ctx, role, endpoint, bucket, model, image)
    report = check_deployment(target, facts)
    needed = fixes(report)
    data = {"iam_check": report.to_dict(), "fixes": [fix.to_dict() for fix in needed]}
    out.result(data, lambda: _print_check(report, needed))
    unknown = len(report.unknown)
    if unknown:
        out.warn(
            f"{unknown} permission{'s' if unknown != 1 else ''} could not be checked (unknown)"
        )
    error = report.denied_error(_fix_hint(needed), details=False)
    if error is not None:
        raise error


def _print_check(report: IamReport, needed: list[PrincipalFix]) -> None:
    from rich.markup import escape

    from qa_console.ops.iam.fix import TRUST_POLICY_NAME

    for principal in report.principals:
        _print_principal(principal)
    for fix in needed:
        print_result("")
        if fix.policy is not None:
            print_result(f"# {fix.policy_name}.json: grants what the {fix.subject} lacks")
            print_json(fix.policy)
        if fix.trust_policy is not None:
            print_result(f"# {TRUST_POLICY_NAME}.json: lets the service assume the {fix.subject}")
            print_json(fix.trust_policy)
        for command in fix.commands:
            print_result(f"# apply: {command}")
        for row in fix.blocked:
            print_rich(
                f"[yellow]# no Allow fixes {escape(row.requirement.action)} on "
                f"{escape(row.requirement.resource)}: {escape(row.detail)}[/]"
            )


def _print_principal(principal: PrincipalReport) -> None:
    from rich.markup import escape
    from rich.table import Table

    shown = principal.arn
    if principal.identity_arn and principal.identity_arn != principal.arn:
        shown = f"{principal.arn} (as {principal.identity_arn})"
    table = Table(title=f"{principal.subject}: {escape(shown)}", title_justify="left")
    table.add_column("action", min_width=16)
    table.add_column("resource", overflow="fold", min_width=24)
    table.add_column("state", no_wrap=True)
    table.add_column("checked by")
    explained = any(row.detail for row in principal.rows)
    if explained:
        table.add_column("why", style="dim")
    for row in principal.rows:
        requirement = row.requirement
        state_text = str(row.state)
        cells = [
            escape(requirement.action),
            escape(requirement.resource),
            f"[{_STATE_STYLES[state_text]}]{state_text}[/]",
            str(row.method),
        ]
        table.add_row(*cells, *([escape(row.detail)] if explained else []))
    print_rich(table, piped_width=PIPED_WIDTH)
    for note in principal.notes:
        print_rich(f"[dim]note: {escape(note)}[/]")


def _fix_hint(needed: list[PrincipalFix]) -> str:
    commands = [command for fix in needed for command in fix.commands]
    if not commands:
        return "remove the Deny, boundary or SCP named above; no Allow can grant these"
    if len(commands) == 1:
        saved = "save the policy above and run" if "file://" in commands[0] else "run"
        return f"{saved}: {commands[0]}"
    return "save each policy above under its name and run the `# apply:` commands"


# --- policy ------------------------------------------------------------------------------------


@iam_app.command("policy")
def policy(
    ctx: typer.Context,
    caller: Annotated[bool, typer.Option("--caller", help="The deployer's policy.")] = False,
    role: Annotated[bool, typer.Option("--role", help="The execution role's policy.")] = False,
    trust: Annotated[
        bool, typer.Option("--trust", help="The execution role's trust policy.")
    ] = False,
    role_arn: Annotated[
        str | None,
        typer.Option("--role-arn", help="Execution role ARN or name (default: execution_role)."),
    ] = None,
    endpoint: EndpointOption = None,
    bucket: BucketOption = None,
    model: ModelOption = None,
    image: ImageOption = None,
    as_json: JsonFlag = False,
) -> None:
    """Print the whole minimal policy a deploy needs (for --caller, --role, or --trust)."""
    from qa_console.ops.iam.fix import minimal_policies

    chosen = [name for name, flag in (("caller", caller), ("role", role), ("trust", trust)) if flag]
    if len(chosen) != 1:
        raise UsageError(
            "say whose policy to print", hint="pass exactly one of --caller, --role, --trust"
        )
    _, facts = _plan(ctx, role_arn, endpoint, bucket, model, image)
    name, document = minimal_policies(facts)[chosen[0]]
    data = {"policy": {"for": chosen[0], "name": name, "document": document}}
    Output(as_json).result(data, lambda: print_result(json.dumps(document, indent=2)))


# --- create-role -------------------------------------------------------------------------------


@iam_app.command("create-role")
def create_role(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(help="Role name (or ARN, for a role with a path).")],
    endpoint: EndpointOption = None,
    bucket: BucketOption = None,
    model: ModelOption = None,
    image: ImageOption = None,
    as_json: JsonFlag = False,
) -> None:
    """Create a SageMaker execution role with exactly the policy a deploy needs.

    Run again, it changes nothing; a different role of that name is an error, never changed.
    """
    from qa_console.ops.iam.role import create_execution_role

    out = Output(as_json)
    target, facts = _plan(ctx, name, endpoint, bucket, model, image)
    created = create_execution_role(target, facts)

    def human() -> None:
        verb = "created" if created.created else "already exists as wanted:"
        out.info(
            f"{verb} role {created.role_name} (inline policy {', '.join(created.policy_names)})"
        )
        print_result(created.role_arn)
        out.info(f"use it: qa-console config set execution_role {created.role_arn}")

    out.result({"role": created.to_dict()}, human)


def register(app: typer.Typer) -> None:
    """Add the `iam` group to the root app."""
    app.add_typer(iam_app, name="iam")
