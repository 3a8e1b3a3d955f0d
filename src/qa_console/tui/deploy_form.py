"""The Deploy screen's form as data: its fields to a DeployRequest, and the recommendation.

The recommendation is ops.deploy.plan's own plan (the same sizing, instance choice and cost the
deploy will use), computed from what the form says before anything is packaged: the weights'
size is read from the files (the archive's size, or a folder's .safetensors), and the image is
left to the deploy (it depends on the archive's manifest, which only packaging writes).
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path

from rich.text import Text

from qa_console.errors import UsageError
from qa_console.ops.deploy import pricing
from qa_console.ops.deploy.plan import DeployPlan, DeployRequest, Mode, plan_deploy
from qa_console.ops.packaging.layout import is_weights
from qa_console.tui.form_number import form_number

IMAGE_CHOSEN_AT_DEPLOY = "chosen-from-the-archive-manifest-at-deploy"


@dataclass(frozen=True)
class DeployForm:
    """The form's fields as typed (strings: empty means the default)."""

    model: str
    endpoint: str
    mode: Mode
    memory_mb: str = ""
    concurrency: str = "5"
    instance_type: str = "auto"
    instance_count: str = "1"
    budget: str = ""
    output: str = ""


def _int(text: str, label: str, default: int | None = None) -> int | None:
    value = form_number(text, label, int)
    return default if value is None else int(value)


def to_request(form: DeployForm, role_arn: str | None) -> DeployRequest:
    """The DeployRequest the form describes (the model's size and version are the deploy's to
    fill). Raises UsageError for a field that is not a number or a missing execution role."""
    if not role_arn:
        raise UsageError(
            "deploying needs a SageMaker execution role",
            hint="qa-console config set execution_role arn:aws:iam::<account>:role/<name> "
            "(or create one: qa-console iam create-role NAME)",
        )
    budget = form_number(form.budget, "budget", float)
    return DeployRequest(
        endpoint=form.endpoint.strip(),
        model_url="",
        role_arn=role_arn,
        weights_bytes=0,
        transformers_version=None,
        mode=form.mode,
        memory_mb=_int(form.memory_mb, "memory"),
        max_concurrency=_int(form.concurrency, "concurrency", 5) or 5,
        instance_type=form.instance_type.strip() or "auto",
        instance_count=_int(form.instance_count, "instance count", 1) or 1,
        budget_usd_per_hour=None if budget is None else float(budget),
        async_output=form.output.strip() or None,
    )


def weights_bytes(model: str) -> int | None:
    """The weights' size as the files say: an archive's size (weights barely compress), a
    folder's .safetensors; None when it cannot be known yet (s3://, a missing path)."""
    if not model or model.startswith("s3://"):
        return None
    path = Path(model).expanduser()
    if path.is_file():
        return path.stat().st_size
    if path.is_dir():
        return sum(item.stat().st_size for item in path.rglob("*") if is_weights(item.name))
    return None


def recommend(form: DeployForm, role_arn: str | None, region: str) -> DeployPlan:
    """The plan ops.deploy would make for this form (UsageError for what it would refuse)."""
    from qa_console.ops.aws.target import Target

    request = to_request(form, role_arn or "arn:aws:iam::000000000000:role/any")
    size = weights_bytes(form.model.strip())
    request = replace(request, weights_bytes=size or 0, image_uri=IMAGE_CHOSEN_AT_DEPLOY)
    # plan_deploy makes no AWS call; it only reads the target's region.
    return plan_deploy(Target("plan", region), request)


def describe(plan: DeployPlan, size_known: bool) -> Text:
    """Two lines: what will run, then what it costs ($/hour and $/month)."""
    text = Text()
    cost = plan.cost
    if plan.choice is not None:
        choice = plan.choice
        text.append(f"{choice.count} x {choice.instance.name}", style="bold")
        text.append(f"  {choice.instance.memory_gib:g} GiB, needs {choice.need.total_mb} MB\n")
        text.append(f"${cost['usd_per_hour']:.3f}/hour", style="bold green")
        text.append(f"  ${cost['usd_per_month']:.2f}/month", style="bold green")
    else:
        text.append(f"serverless {plan.serverless_memory_mb} MB", style="bold")
        text.append(f", up to {plan.request.max_concurrency} at once\n")
        hourly = cost["usd_per_month"] / pricing.HOURS_PER_MONTH
        text.append(f"~${hourly:.3f}/hour  ${cost['usd_per_month']:.2f}/month", style="bold green")
        text.append(f"  at {cost['requests_per_day']:,.0f} req/day", style="dim")
    if not size_known:
        text.append("\n(size unknown until packaged)", style="dim")
    return text
