"""The embedded local AWS: moto + a SageMaker-compatible runtime + an API gateway, on loopback.

Parts (one job each), grouped by AWS service as moto is:
    launcher.py      start / find / stop / describe it from any process; export its endpoints
    state.py         the state dir, state.json, liveness and health checks, the launch lock
    supervisor.py    the detached process that serves everything
    components.py    mounting sagemaker/ and apigateway/ (ASGI) with a health route each
    workers.py       the worker processes of both services (model containers, Lambda sandboxes):
                     start, handshake, log pipe, exit, kill, restart back-off
    motoserver/      moto's WSGI app, its gaps closed, its state persisted across down/up
    iam/             IAM simulate_principal_policy / simulate_custom_policy
    sagemaker/       the SageMaker runtime (invocations, streaming, async)
    apigateway/      the API gateway (REST APIs with Lambda proxy integrations)
    awslambda/       the Lambda functions behind the gateway, run in sandbox processes
    cloudwatch/      the one log shipper: both services' lines to the local CloudWatch Logs

The pipeline library (qa_console.ops) never imports this package: it reaches the local AWS only
through botocore's endpoint settings, like any AWS.

Importing this package is cheap (no moto, no boto3): `ask` and `--help` stay fast.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from qa_console.ops.aws.target import Target


def local_target(region: str | None = None) -> Target:
    """The 'local' target's provider (ops/aws/target.py PROVIDERS): the embedded local AWS as a
    Target, started if it is not running."""
    from qa_console.localaws.launcher import local_target as make

    return make(region)
