"""`--instance-type auto`: the cheapest instance that holds the model within the budget, over a
table of cases (ezsmdeploy took the first type under budget in table order, not the cheapest),
NVMe winning ties, clear refusals; serverless memory in 1 GB steps from the same need."""

from __future__ import annotations

from pathlib import Path

import pytest

from qa_console.errors import UsageError
from qa_console.ops.deploy.pricing import (
    InstanceType,
    choose_instance,
    load_instances,
    memory_need,
    serverless_memory_mb,
)

GIB = 2**30


def kind(name: str, memory_gib: float, usd: float, nvme: bool = False) -> InstanceType:
    return InstanceType(name, 2, memory_gib, 0, 0.0, nvme, usd)


# In table order the first type under a $1/hour budget is the pricey one: a first-fit choice
# (ezsmdeploy's) takes ml.c5.2xlarge; the cheapest that fits is ml.m5.large.
TABLE = [
    kind("ml.c5.2xlarge", 16, 0.408),
    kind("ml.m5.xlarge", 16, 0.23),
    kind("ml.m5.large", 8, 0.115),
    kind("ml.m5d.large", 8, 0.115, nvme=True),
    kind("ml.t2.medium", 4, 0.056),
    kind("ml.r5.4xlarge", 128, 1.21),
]


@pytest.mark.parametrize(
    ("weights_gib", "workers", "budget", "count", "expected"),
    [
        (0.005, 1, None, 1, "ml.t2.medium"),  # the tiny model: 4 GiB is plenty
        (2.0, 1, 1.0, 1, "ml.m5d.large"),  # ~4.9 GB: cheapest that fits; NVMe wins the $0.115 tie
        (1.0, 4, None, 1, "ml.m5.xlarge"),  # four workers need more than 8 GiB
        (1.0, 4, 0.5, 2, "ml.m5.xlarge"),  # two of them, $0.46, within $0.5
        (40.0, 1, None, 1, "ml.r5.4xlarge"),  # only the memory-optimised one holds 40 GiB
    ],
)
def test_the_cheapest_that_fits_within_the_budget(
    weights_gib: float, workers: int, budget: float | None, count: int, expected: str
) -> None:
    need = memory_need(int(weights_gib * GIB), workers)
    choice = choose_instance(need, TABLE, budget_usd_per_hour=budget, count=count)
    assert choice.instance.name == expected
    assert choice.instance.memory_mb >= need.total_mb
    cheaper_fits = [
        item
        for item in TABLE
        if item.memory_mb >= need.total_mb and item.usd_per_hour < choice.instance.usd_per_hour
    ]
    assert cheaper_fits == []


def test_refusals_name_what_would_work() -> None:
    need = memory_need(int(1.0 * GIB), 4)
    with pytest.raises(UsageError, match=r"budget of \$0.1/hour.*ml.m5.xlarge") as caught:
        choose_instance(need, TABLE, budget_usd_per_hour=0.1)
    assert caught.value.hint is not None and "--serverless" in caught.value.hint
    with pytest.raises(UsageError, match=r"largest instance in the table, ml\.r5\.4xlarge"):
        choose_instance(memory_need(500 * GIB), TABLE)


def test_serverless_memory_steps_by_a_gigabyte_and_stops_at_6_gb() -> None:
    tiny = serverless_memory_mb(memory_need(5 * 2**20))
    assert tiny % 1024 == 0 and tiny >= memory_need(5 * 2**20).total_mb
    assert serverless_memory_mb(memory_need(1 * GIB)) == 4096  # needs 3264 MB
    with pytest.raises(UsageError):
        serverless_memory_mb(memory_need(8 * GIB))


def test_the_shipped_table_loads_and_a_bad_file_is_refused(tmp_path: Path) -> None:
    shipped = load_instances()
    assert {"ml.t2.medium", "ml.m5.large", "ml.g5.xlarge"} <= {item.name for item in shipped}
    bad = tmp_path / "prices.csv"
    bad.write_text(
        "instance_type,vcpus,memory_gib,gpus,gpu_memory_gib,nvme,usd_per_hour\n"
        "ml.m5.large,2,8,0,0,0,cheap\n",
        encoding="utf-8",
    )
    with pytest.raises(UsageError, match=r"prices.csv:2: malformed instance row"):
        load_instances(bad)
