"""The embedded local AWS: moto + a SageMaker-compatible runtime + an API gateway, on loopback.

Parts (one job each):
    launcher.py      start / find / stop / describe it from any process; export its endpoints
    state.py         the state dir, state.json, liveness and health checks, the launch lock
    supervisor.py    the detached process that serves everything
    moto_app.py      moto's WSGI app with a health route and change tracking
    moto_patches.py  the gaps of stock moto, closed (update_endpoint, instance types, Creating...)
    persistence.py   snapshots of moto's backends (S3 bodies as blobs) across down/up
    components.py    mounting runtime/ and gateway/ (ASGI) with a health route each
    runtime/         the SageMaker runtime (invocations, streaming, async)
    gateway/         the API gateway (REST APIs with Lambda proxy integrations)
    iam_simulator.py IAM simulate_principal_policy / simulate_custom_policy

Importing this package is cheap (no moto, no boto3): `ask` and `--help` stay fast.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from qa_console.ops.localaws.state import LocalAwsState


def ensure_running(region: str | None = None) -> LocalAwsState:
    """Start the local AWS if it is not running and export its endpoints to this process.

    Exports AWS_ENDPOINT_URL, AWS_ENDPOINT_URL_SAGEMAKER_RUNTIME,
    AWS_DISABLE_HOST_PREFIX_INJECTION and QA_CONSOLE_LOCAL_GATEWAY_URL, plus fake credentials
    and a default region when none are set. Returns what state.json records.
    """
    from qa_console.ops.localaws.launcher import ensure_running as launch

    return launch(region)
