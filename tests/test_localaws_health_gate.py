"""The first deployment a freshly started local AWS sees goes InService only once its model has
loaded, as every later one does (the gate is on from the runtime's start, not its first report)."""

from __future__ import annotations

import time
from pathlib import Path

from fixtures_runtime import handler_archive
from qa_console.localaws import launcher
from test_localaws_persistence import ROLE_ARN, clients

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
    s3, sagemaker = clients(state, "s3", "sagemaker")
    s3.create_bucket(Bucket="models")
    archive = handler_archive(tmp_path, SLOW_THEN_BROKEN)
    s3.upload_file(str(archive), "models", "slow/model.tar.gz")
    sagemaker.create_model(
        ModelName="slow",
        ExecutionRoleArn=ROLE_ARN,
        PrimaryContainer={"Image": "local/hf:1", "ModelDataUrl": "s3://models/slow/model.tar.gz"},
    )
    sagemaker.create_endpoint_config(
        EndpointConfigName="slow-config",
        ProductionVariants=[
            {
                "VariantName": "AllTraffic",
                "ModelName": "slow",
                "ServerlessConfig": {"MemorySizeInMB": 2048, "MaxConcurrency": 1},
            }
        ],
    )
    sagemaker.create_endpoint(EndpointName="slow", EndpointConfigName="slow-config")
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
