"""What an endpoint needs and what it costs: the model's memory need, the cheapest instance that
holds it within a budget, serverless memory in 1 GB steps, and $/hour, $/month and serverless
cost at a stated traffic.

The instance table ships as data (qa_console/data/sagemaker_instances.csv, us-east-1 on-demand
prices with their date and source) and can be replaced by a file of the same columns, so a user
can refresh the prices without a new release.

Memory need: the container (model server and Python) plus, per model-server worker, the weights
as the archive holds them (parameters x dtype) with room for activations and the tokenizer;
then headroom, because an endpoint that runs out of memory fails its health check, not loudly.
"""

from __future__ import annotations

import csv
import math
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from qa_console.errors import UsageError

HOURS_PER_MONTH = 730  # AWS's convention for monthly estimates
CONTAINER_BASE_MB = 1024  # model server, Python, torch and transformers imported
WORKER_OVERHEAD_MB = 256  # a worker process before it loads the weights
WEIGHTS_FACTOR = 1.3  # weights in memory plus activations, generation caches and the tokenizer
HEADROOM = 1.25  # fit with a quarter to spare
SERVERLESS_STEP_MB = 1024
SERVERLESS_MAX_MB = 6144
# Serverless inference, us-east-1, on-demand duration price per second of 1024 MB (it scales
# with memory), from https://aws.amazon.com/sagemaker/pricing/ (Serverless Inference), 2025-11.
SERVERLESS_USD_PER_GB_SECOND = 0.0000200
PRICES_SOURCE = "https://aws.amazon.com/sagemaker/pricing/ (us-east-1 on-demand, 2025-11)"
DEFAULT_REQUESTS_PER_DAY = 10_000
DEFAULT_SECONDS_PER_REQUEST = 0.5


@dataclass(frozen=True)
class InstanceType:
    name: str
    vcpus: int
    memory_gib: float
    gpus: int
    gpu_memory_gib: float
    nvme: bool
    usd_per_hour: float

    @property
    def usd_per_month(self) -> float:
        return self.usd_per_hour * HOURS_PER_MONTH

    @property
    def memory_mb(self) -> int:
        return int(self.memory_gib * 1024)


@dataclass(frozen=True)
class MemoryNeed:
    weights_mb: int
    workers: int
    total_mb: int  # with headroom: what the instance (or serverless memory) must hold

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class InstanceChoice:
    instance: InstanceType
    count: int
    need: MemoryNeed
    reason: str

    @property
    def usd_per_hour(self) -> float:
        return self.instance.usd_per_hour * self.count

    def to_dict(self) -> dict[str, Any]:
        return {
            "instance_type": self.instance.name,
            "instance_count": self.count,
            "usd_per_hour": round(self.usd_per_hour, 4),
            "usd_per_month": round(self.usd_per_hour * HOURS_PER_MONTH, 2),
            "memory_need": self.need.to_dict(),
            "reason": self.reason,
            "prices": PRICES_SOURCE,
        }


def memory_need(weights_bytes: int, workers: int = 1) -> MemoryNeed:
    """The memory an endpoint serving these weights with `workers` model-server workers needs."""
    if workers < 1:
        raise UsageError("the number of model-server workers must be at least 1")
    weights_mb = math.ceil(weights_bytes / 2**20)
    per_worker = WORKER_OVERHEAD_MB + weights_mb * WEIGHTS_FACTOR
    total = math.ceil((CONTAINER_BASE_MB + workers * per_worker) * HEADROOM)
    return MemoryNeed(weights_mb, workers, total)


def load_instances(path: str | Path | None = None) -> list[InstanceType]:
    """The instance table: the shipped one, or a CSV of the same columns. Raises UsageError
    naming the file and line of a malformed row."""
    from importlib import resources

    source = (
        Path(path).expanduser()
        if path is not None
        else Path(str(resources.files("qa_console").joinpath("data", "sagemaker_instances.csv")))
    )
    try:
        lines = source.read_text(encoding="utf-8").splitlines()
    except OSError as error:
        raise UsageError(f"cannot read the instance table {source}: {error}") from None
    numbered = [(n, line) for n, line in enumerate(lines, 1) if not line.startswith("#")]
    reader = csv.DictReader(line for _, line in numbered)
    table = []
    for (number, _), row in zip(numbered[1:], reader, strict=False):
        try:
            table.append(
                InstanceType(
                    name=row["instance_type"].strip(),
                    vcpus=int(row["vcpus"]),
                    memory_gib=float(row["memory_gib"]),
                    gpus=int(row["gpus"]),
                    gpu_memory_gib=float(row["gpu_memory_gib"]),
                    nvme=row["nvme"].strip() in ("1", "true", "yes"),
                    usd_per_hour=float(row["usd_per_hour"]),
                )
            )
        except (KeyError, TypeError, ValueError) as error:
            raise UsageError(
                f"{source}:{number}: malformed instance row ({error})",
                hint="columns: instance_type,vcpus,memory_gib,gpus,gpu_memory_gib,nvme,"
                "usd_per_hour",
            ) from None
    if not table:
        raise UsageError(f"{source} lists no instances")
    return table


def find_instance(name: str, table: list[InstanceType]) -> InstanceType | None:
    return next((item for item in table if item.name == name), None)


def choose_instance(
    need: MemoryNeed,
    table: list[InstanceType],
    *,
    budget_usd_per_hour: float | None = None,
    count: int = 1,
) -> InstanceChoice:
    """The cheapest instance whose memory holds `need` and whose price for `count` instances
    stays within the budget; an NVMe ('d') instance wins a tie. Not the first that fits: the
    table's order means nothing."""
    fits = [item for item in table if item.memory_mb >= need.total_mb]
    if not fits:
        biggest = max(table, key=lambda item: item.memory_mb)
        raise UsageError(
            f"the model needs about {need.total_mb} MB with {need.workers} worker(s); the "
            f"largest instance in the table, {biggest.name}, has {biggest.memory_mb} MB",
            hint="use fewer workers, a smaller model, or an instance table with larger types",
        )
    ranked = sorted(fits, key=lambda item: (item.usd_per_hour, not item.nvme, item.name))
    cheapest = ranked[0]
    if budget_usd_per_hour is not None and cheapest.usd_per_hour * count > budget_usd_per_hour:
        raise UsageError(
            f"no instance fits the budget of ${budget_usd_per_hour:g}/hour: the cheapest that "
            f"holds the model ({need.total_mb} MB) is {cheapest.name} at "
            f"${cheapest.usd_per_hour * count:.3f}/hour for {count}",
            hint="raise --budget, or deploy serverless (--serverless)",
        )
    reason = (
        f"cheapest of {len(fits)} types with >= {need.total_mb} MB "
        f"({need.weights_mb} MB of weights, {need.workers} worker(s), "
        f"{int((HEADROOM - 1) * 100)}% headroom)"
    )
    if budget_usd_per_hour is not None:
        reason += f", within ${budget_usd_per_hour:g}/hour"
    return InstanceChoice(cheapest, count, need, reason)


def serverless_memory_mb(need: MemoryNeed) -> int:
    """Serverless memory for `need`: the next 1 GB step, 1024 to 6144 MB."""
    size = max(SERVERLESS_STEP_MB, math.ceil(need.total_mb / SERVERLESS_STEP_MB) * 1024)
    if size > SERVERLESS_MAX_MB:
        raise UsageError(
            f"the model needs about {need.total_mb} MB; serverless endpoints have at most "
            f"{SERVERLESS_MAX_MB} MB",
            hint="deploy on an instance instead (--instance-type auto)",
        )
    return size


def serverless_cost(
    memory_mb: int,
    requests_per_day: float = DEFAULT_REQUESTS_PER_DAY,
    seconds_per_request: float = DEFAULT_SECONDS_PER_REQUEST,
) -> dict[str, Any]:
    """The serverless duration cost at a stated traffic (data processing charges left out)."""
    per_request = memory_mb / 1024 * SERVERLESS_USD_PER_GB_SECOND * seconds_per_request
    per_month = per_request * requests_per_day * HOURS_PER_MONTH / 24
    return {
        "memory_mb": memory_mb,
        "requests_per_day": requests_per_day,
        "seconds_per_request": seconds_per_request,
        "usd_per_1000_requests": round(per_request * 1000, 6),
        "usd_per_month": round(per_month, 2),
        "prices": PRICES_SOURCE,
    }
