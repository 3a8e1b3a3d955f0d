"""`qa-console deploy MODEL`: a model folder, model.tar.gz or s3:// URL to a SageMaker endpoint.

    qa-console deploy artifacts/model                       # serverless, sized from the model
    qa-console deploy model.tar.gz --instance-type auto --budget 0.3
    qa-console deploy s3://b/m.tar.gz --async --output s3://b/answers/ --autoscale 0:2
    qa-console deploy artifacts/model --dry-run             # the exact requests, nothing sent

A thin face over ops/deploy/flow.py: flags to a DeployRequest, progress on stderr, the result
(endpoint, image, size and cost, what was created) on stdout.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from qa_console.cli.context import state
from qa_console.cli.output import JsonFlag, Output, info, print_json, print_result
from qa_console.cli.package import FastPathOption
from qa_console.errors import UsageError

if TYPE_CHECKING:
    from qa_console.ops.deploy.flow import DeployOutcome
    from qa_console.ops.deploy.plan import Mode


def register(app: typer.Typer) -> None:
    """Add `deploy` to the root app."""
    app.command("deploy", no_args_is_help=True)(deploy)


def deploy(
    ctx: typer.Context,
    model: Annotated[
        str, typer.Argument(help="A model folder, a model.tar.gz, or an s3:// URL of one.")
    ],
    name: Annotated[
        str | None, typer.Option("--name", help="Endpoint name (default: setting endpoint_name).")
    ] = None,
    serverless: Annotated[
        bool, typer.Option("--serverless", help="A serverless endpoint (the default).")
    ] = False,
    memory: Annotated[
        int | None,
        typer.Option("--memory", help="Serverless memory in MB, 1024-6144 in 1 GB steps."),
    ] = None,
    concurrency: Annotated[
        int, typer.Option("--concurrency", help="Serverless maximum concurrent requests.")
    ] = 5,
    provisioned: Annotated[
        int | None, typer.Option("--provisioned", help="Serverless provisioned concurrency.")
    ] = None,
    instance_type: Annotated[
        str | None,
        typer.Option(
            "--instance-type", help="Real-time instance type, or 'auto': the cheapest that fits."
        ),
    ] = None,
    instance_count: Annotated[int, typer.Option("--instance-count", help="Instances.")] = 1,
    budget: Annotated[
        float | None, typer.Option("--budget", help="Most USD per hour for the instances.")
    ] = None,
    async_mode: Annotated[
        bool, typer.Option("--async", help="An asynchronous endpoint (answers go to S3).")
    ] = False,
    output: Annotated[
        str | None, typer.Option("--output", help="s3:// prefix for asynchronous answers.")
    ] = None,
    sns_topic: Annotated[
        str | None, typer.Option("--sns-topic", help="SNS topic ARN told of async answers.")
    ] = None,
    autoscale: Annotated[
        str | None, typer.Option("--autoscale", help="MIN:MAX instances (target tracking).")
    ] = None,
    workers: Annotated[
        int, typer.Option("--workers", min=1, help="Model-server workers per instance.")
    ] = 1,
    image_uri: Annotated[
        str | None,
        typer.Option("--image-uri", help="Container image instead of the matching Hugging Face."),
    ] = None,
    prices: Annotated[
        Path | None, typer.Option("--prices", help="Instance table CSV instead of the shipped.")
    ] = None,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Print the exact requests; send nothing.")
    ] = False,
    no_preflight: Annotated[
        bool, typer.Option("--no-iam-check", help="Skip the IAM preflight.")
    ] = False,
    fast_path: FastPathOption = "auto",
    as_json: JsonFlag = False,
) -> None:
    """Deploy a model to a SageMaker endpoint (a re-deploy of a name is a blue/green update)."""
    from qa_console.ops.deploy.flow import deploy_model
    from qa_console.ops.deploy.plan import DeployRequest

    out = Output(as_json)
    cli = state(ctx)
    settings = cli.settings()
    mode = _mode(serverless, async_mode, instance_type)
    request = DeployRequest(
        endpoint=name or str(settings.endpoint_name),
        model_url="",
        role_arn=_role(settings.execution_role),
        weights_bytes=0,
        transformers_version=None,
        mode=mode,
        memory_mb=memory,
        max_concurrency=concurrency,
        provisioned_concurrency=provisioned,
        instance_type=instance_type or "auto",
        instance_count=instance_count,
        budget_usd_per_hour=budget,
        workers=workers,
        async_output=output,
        sns_topic=sns_topic,
        autoscale=_autoscale(autoscale),
        image_uri=image_uri,
        prices=prices,
    )
    with out.progress() as progress:
        outcome = deploy_model(
            cli.target(),
            model,
            request,
            bucket=settings.bucket,
            folder=settings.folder,
            dry_run=dry_run,
            preflight=not no_preflight,
            fast_path=fast_path,
            progress=progress,
        )
    out.result(outcome.to_dict(), lambda: _print(outcome))


def _mode(serverless: bool, async_mode: bool, instance_type: str | None) -> Mode:
    if serverless and (async_mode or instance_type):
        raise UsageError(
            "--serverless cannot go with --async or --instance-type",
            hint="choose one: --serverless, --instance-type TYPE|auto, or --async",
        )
    if async_mode:
        return "async"
    return "realtime" if instance_type else "serverless"


def _role(role: str | None) -> str:
    if not role:
        raise UsageError(
            "deploying needs a SageMaker execution role",
            hint="qa-console config set execution_role arn:aws:iam::<account>:role/<name> "
            "(or create one: qa-console iam create-role NAME)",
        )
    return role


def _autoscale(text: str | None) -> tuple[int, int] | None:
    if text is None:
        return None
    low, sep, high = text.partition(":")
    try:
        if not sep:
            raise ValueError(text)
        return int(low), int(high)
    except ValueError:
        raise UsageError(
            f"--autoscale {text!r} is not MIN:MAX", hint="e.g. --autoscale 1:4"
        ) from None


def _print(outcome: DeployOutcome) -> None:
    plan = outcome.plan
    summary = plan.summary()
    if plan.image.note:
        info(f"image: {plan.image.note}")
    info(f"image {plan.image.uri}")
    if plan.choice is not None:
        choice = plan.choice
        info(
            f"{choice.count} x {choice.instance.name}: ${choice.usd_per_hour:.3f}/hour, "
            f"${summary['cost']['usd_per_month']:.2f}/month ({choice.reason})"
        )
    else:
        cost = summary["cost"]
        info(
            f"serverless {plan.serverless_memory_mb} MB, up to {plan.request.max_concurrency} "
            f"at once: ${cost['usd_per_month']:.2f}/month at {cost['requests_per_day']:,.0f} "
            f"requests/day of {cost['seconds_per_request']:g} s "
            f"(${cost['usd_per_1000_requests']:.4f} per 1,000)"
        )
    if outcome.dry_run:
        print_json(outcome.requests)
        return
    rollout = outcome.rollout
    assert rollout is not None
    verb = "updated (blue/green)" if rollout.updated else "created"
    warm = rollout.warmup
    info(
        f"endpoint {rollout.endpoint} {verb}, {rollout.status} in {rollout.seconds:.1f} s"
        + (f"; first answer in {warm['seconds']:.2f} s" if warm else "")
    )
    for item in rollout.retired:
        info(f"deleted the previous {item['kind']} {item['name']}")
    print_result(rollout.endpoint)
