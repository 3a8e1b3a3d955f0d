"""The likely cause of an endpoint that failed, from SageMaker's FailureReason and the container's
log lines: a one-line hint instead of "check CloudWatch".

SageMaker's reasons are generic ("The primary container for production variant AllTraffic did
not pass the ping health check"); the container's own lines say why. The patterns are the
failures this project's users meet: a broken archive layout, a transformers version the
container cannot load the model with, too little memory, a model that loads too slowly.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

CAUSES: tuple[tuple[re.Pattern[str], str], ...] = (
    (
        re.compile(r"transformers \d+\.\S* .*(cannot|can not|could not) load|major version|"
                   r"_set_model_specific_special_tokens|Tokenizer class .* does not exist", re.I),
        "a version mismatch: the image's transformers cannot load this model (deploy picks a "
        "matching image unless --image-uri overrides it)",
    ),
    (
        re.compile(r"code/inference\.py|No module named 'inference'|model_fn|config\.json|"
                   r"no such file|not a model folder", re.I),
        "the archive's layout: check it with `qa-console package --check model.tar.gz`",
    ),
    (
        re.compile(r"out of memory|MemoryError|OOM|Killed|exit code 137|Cannot allocate", re.I),
        "out of memory: more serverless memory (--memory) or a larger instance",
    ),
    (
        re.compile(r"timed out|timeout|did not respond|no answer to /ping", re.I),
        "the model did not load in time (3 minutes on SageMaker): a smaller model, a larger "
        "instance, or a faster start",
    ),
    (
        re.compile(r"ping health check", re.I),
        "the container did not pass its health check: its model failed to load, or loaded "
        "too slowly (the endpoint's log says which)",
    ),
    (
        re.compile(r"capacity|InsufficientInstanceCapacity", re.I),
        "AWS has no capacity of that instance type right now: try another type or region",
    ),
    (
        re.compile(r"AccessDenied|not authorized|ECR|pull", re.I),
        "the execution role's permissions (S3 read of the model, ECR pull): "
        "`qa-console iam check`",
    ),
)  # fmt: skip


def likely_cause(reason: str, log_lines: Iterable[str] = ()) -> str:
    """The likeliest cause named by the log lines, else by SageMaker's reason."""
    for text in (*log_lines, reason):
        for pattern, cause in CAUSES:
            if pattern.search(text):
                return f"likely cause: {cause}"
    return "the endpoint's logs say why"
