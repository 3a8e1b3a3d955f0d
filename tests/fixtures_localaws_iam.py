"""A real moto server on loopback with qa-console's IAM simulator installed, for the IAM tests.

The server runs in the test process (ThreadedMotoServer) because install_iam_simulation() patches
moto's IAM handler in the process that serves. Tests talk to it over a socket with plain boto3.

moto keeps its backends per process and per account, and other areas may run moto in the same
pytest process: these tests use their own account id (sent as moto's x-moto-account-id header),
whose IAM backend is created after MOTO_IAM_LOAD_MANAGED_POLICIES=true is set, so AWS-managed
policies are loaded for it whatever ran before.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest

IAM_TEST_ACCOUNT = "210987654321"


@pytest.fixture(scope="session")
def iam_moto_endpoint() -> Iterator[str]:
    """http://127.0.0.1:<port> of a moto server whose IAM answers Simulate* calls."""
    with pytest.MonkeyPatch.context() as session_patch:
        session_patch.setenv("MOTO_IAM_LOAD_MANAGED_POLICIES", "true")
        from moto.server import ThreadedMotoServer

        from qa_console.localaws.iam.simulator import install_iam_simulation

        install_iam_simulation()
        server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
        server.start()
        try:
            host, port = server.get_host_and_port()
            yield f"http://{host}:{port}"
        finally:
            server.stop()


@pytest.fixture
def iam_client(iam_moto_endpoint: str, monkeypatch: pytest.MonkeyPatch) -> Any:
    """A boto3 IAM client routed to the local moto by AWS_ENDPOINT_URL, with fake credentials."""
    import boto3

    monkeypatch.setenv("AWS_ENDPOINT_URL", iam_moto_endpoint)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    for variable in ("AWS_PROFILE", "AWS_SESSION_TOKEN"):
        monkeypatch.delenv(variable, raising=False)
    client = boto3.client("iam")

    def to_test_account(request: Any, **_: Any) -> None:
        request.headers["x-moto-account-id"] = IAM_TEST_ACCOUNT

    client.meta.events.register("before-sign.iam.*", to_test_account)
    return client


@pytest.fixture
def unique_name(request: pytest.FixtureRequest) -> Callable[[str], str]:
    """Names unique to the test, since the session's moto state is shared between tests."""
    stem = "".join(char for char in request.node.name if char.isalnum())[-40:]

    def make(kind: str) -> str:
        return f"{kind}-{stem}"[:64]

    return make
