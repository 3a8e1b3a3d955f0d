"""Create a SageMaker endpoint for an uploaded model.tar.gz with plain boto3 calls.

This is what `qa-console deploy` will do with instance choice, IAM preflight and versions checks;
until then the demo uses these calls, the same ones real SageMaker gets. Run with the embedded
local AWS, which it starts on demand.

    python scripts/create_endpoint.py s3://bucket/folder/model.tar.gz biography-bot
"""

from __future__ import annotations

import json
import sys

import boto3
from botocore.config import Config

from qa_console.ops.aws.target import session

REGION = "us-east-1"
# The Hugging Face PyTorch inference container (CPU). The local runtime runs code/inference.py
# the way this container does; on real AWS the deploy command picks the image whose
# transformers version matches the one that saved the model.
IMAGE = (
    "763104351884.dkr.ecr.us-east-1.amazonaws.com/"
    "huggingface-pytorch-inference:2.6.0-transformers4.51.3-cpu-py312-ubuntu22.04"
)
TRUST_POLICY = {
    "Version": "2012-10-17",
    "Statement": [
        {
            "Effect": "Allow",
            "Principal": {"Service": "sagemaker.amazonaws.com"},
            "Action": "sts:AssumeRole",
        }
    ],
}


def main(model_url: str, endpoint: str) -> None:
    # For the 'local' target this starts the embedded local AWS if needed and exports its
    # endpoints (AWS_ENDPOINT_URL, ...) to this process; the clients below are plain boto3.
    session("local", REGION)
    config = Config(region_name=REGION, retries={"mode": "standard"})
    iam = boto3.client("iam", config=config)
    sagemaker = boto3.client("sagemaker", config=config)

    role_name = "qa-console-demo-sagemaker"
    try:
        role_arn = iam.get_role(RoleName=role_name)["Role"]["Arn"]
    except iam.exceptions.NoSuchEntityException:
        role_arn = iam.create_role(
            RoleName=role_name, AssumeRolePolicyDocument=json.dumps(TRUST_POLICY)
        )["Role"]["Arn"]

    existing = sagemaker.list_endpoints(NameContains=endpoint)["Endpoints"]
    if any(item["EndpointName"] == endpoint for item in existing):
        print(f"endpoint {endpoint} exists; updating it to the new model")
        suffix = str(len(sagemaker.list_models(NameContains=endpoint)["Models"]) + 1)
    else:
        suffix = "1"

    model_name = f"{endpoint}-model-{suffix}"
    config_name = f"{endpoint}-config-{suffix}"
    sagemaker.create_model(
        ModelName=model_name,
        ExecutionRoleArn=role_arn,
        PrimaryContainer={"Image": IMAGE, "ModelDataUrl": model_url},
    )
    sagemaker.create_endpoint_config(
        EndpointConfigName=config_name,
        ProductionVariants=[
            {
                "VariantName": "AllTraffic",
                "ModelName": model_name,
                "ServerlessConfig": {"MemorySizeInMB": 2048, "MaxConcurrency": 4},
            }
        ],
    )
    if suffix == "1":
        sagemaker.create_endpoint(EndpointName=endpoint, EndpointConfigName=config_name)
    else:
        sagemaker.update_endpoint(EndpointName=endpoint, EndpointConfigName=config_name)
    print(f"waiting for {endpoint} to be InService ...")
    sagemaker.get_waiter("endpoint_in_service").wait(
        EndpointName=endpoint, WaiterConfig={"Delay": 1, "MaxAttempts": 120}
    )
    print(f"endpoint {endpoint} is InService")


if __name__ == "__main__":
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    main(sys.argv[1], sys.argv[2])
