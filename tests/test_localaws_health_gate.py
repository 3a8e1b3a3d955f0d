"""The first deployment a freshly started local AWS sees goes InService only once its model has
loaded, as every later one does (the gate is on from the runtime's start, not its first report)."""

from __future__ import annotations

import time
from pathlib import Path

from fixtures_localaws import create_serverless_endpoint, state_clients
from fixtures_runtime import handler_archive
from qa_console.localaws import launcher

# Loads for 6 s (three times the control plane's Creating timer), then fails.
SLOW_THEN_BROKEN = """
import time


def model_fn(model_dir, context=None):
    time.sleep(6)
    raise RuntimeError("this model never loads")


def predict_fn(data, model, context=None):
    return {"answer": "never"}
"""


def test_the_first_endpoint_after_a_start_waits_for_its_model(
    private_local_aws_dir: Path, tmp_path: Path
) -> None:
    state = launcher.ensure_running()
    s3, sagemaker = state_clients(state, "s3", "sagemaker")
    s3.create_bucket(Bucket="models")
    archive = handler_archive(tmp_path, SLOW_THEN_BROKEN)
    s3.upload_file(str(archive), "models", "slow/model.tar.gz")
    create_serverless_endpoint(sagemaker, "slow", "s3://models/slow/model.tar.gz")
    seen: list[str] = []
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        status = sagemaker.describe_endpoint(EndpointName="slow")["EndpointStatus"]
        seen.append(status)
        if status != "Creating":
            break
        time.sleep(0.5)
    assert "InService" not in seen, "InService before its model loaded"
    assert seen[-1] == "Failed"
