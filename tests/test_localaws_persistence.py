"""The local AWS keeps its control plane across `down` then `up` (motoserver/persistence.py):
objects (multipart included), SageMaker models / endpoint configs / endpoints, and the ids the
server made (which moto's request recorder could not replay)."""

from __future__ import annotations

import hashlib
import io
import json
import os
import signal
import time
import zipfile
from pathlib import Path

from boto3.s3.transfer import TransferConfig

from fixtures_localaws import create_serverless_endpoint, state_clients, wait_for_snapshot
from fixtures_runtime import ECHO_HANDLER, handler_archive
from qa_console.localaws import launcher
from qa_console.localaws.state import LocalAwsState, pid_alive, probe

FAST_WAIT = {"Delay": 0.5, "MaxAttempts": 60}
MB = 1024 * 1024


def restart(directory: Path) -> LocalAwsState:
    stopped = launcher.stop(directory=directory)
    assert stopped.was_running and not stopped.forced
    assert (directory / "moto" / "snapshot.pickle").is_file()
    return launcher.ensure_running()


def test_objects_and_a_deployed_endpoint_survive_down_then_up(
    private_local_aws_dir: Path, tmp_path: Path
) -> None:
    first = launcher.ensure_running()
    s3, sagemaker = state_clients(first, "s3", "sagemaker")
    s3.create_bucket(Bucket="models")
    s3.put_object(
        Bucket="models",
        Key="notes/readme.txt",
        Body=b"hello",
        ContentType="text/plain",
        Metadata={"owner": "qa"},
    )
    # A model that loads (the echo handler: endpoints go InService only once their model passes
    # the health check), with 13 MB of incompressible weights: a 3-part multipart upload.
    archive = handler_archive(tmp_path, ECHO_HANDLER, extra={"weights.bin": os.urandom(13 * MB)})
    tarball = archive.read_bytes()
    s3.upload_fileobj(
        io.BytesIO(tarball),
        "models",
        "bio/model.tar.gz",
        Config=TransferConfig(multipart_threshold=5 * MB, multipart_chunksize=5 * MB),
    )
    assert "-3" in s3.head_object(Bucket="models", Key="bio/model.tar.gz")["ETag"]
    pending = s3.create_multipart_upload(Bucket="models", Key="half.bin")["UploadId"]
    part_one = os.urandom(5 * MB)
    etag_one = s3.upload_part(
        Bucket="models", Key="half.bin", UploadId=pending, PartNumber=1, Body=part_one
    )["ETag"]

    bio_config = create_serverless_endpoint(
        sagemaker, "bio", "s3://models/bio/model.tar.gz", concurrency=2
    )
    sagemaker.get_waiter("endpoint_in_service").wait(EndpointName="bio", WaiterConfig=FAST_WAIT)
    before = sagemaker.describe_endpoint(EndpointName="bio")
    # Created just before `down`: still Creating when the snapshot is taken.
    sagemaker.create_endpoint(EndpointName="bio-late", EndpointConfigName=bio_config)

    second = restart(private_local_aws_dir)
    assert second.pid != first.pid
    s3, sagemaker = state_clients(second, "s3", "sagemaker")

    small = s3.get_object(Bucket="models", Key="notes/readme.txt")
    assert small["Body"].read() == b"hello"
    assert small["ContentType"] == "text/plain"
    assert small["Metadata"] == {"owner": "qa"}
    body = s3.get_object(Bucket="models", Key="bio/model.tar.gz")["Body"].read()
    assert hashlib.sha256(body).digest() == hashlib.sha256(tarball).digest()

    part_two = os.urandom(1 * MB)
    etag_two = s3.upload_part(
        Bucket="models", Key="half.bin", UploadId=pending, PartNumber=2, Body=part_two
    )["ETag"]
    s3.complete_multipart_upload(
        Bucket="models",
        Key="half.bin",
        UploadId=pending,
        MultipartUpload={
            "Parts": [{"ETag": etag_one, "PartNumber": 1}, {"ETag": etag_two, "PartNumber": 2}]
        },
    )
    assert s3.get_object(Bucket="models", Key="half.bin")["Body"].read() == part_one + part_two

    model = sagemaker.describe_model(ModelName="bio")
    assert model["PrimaryContainer"]["ModelDataUrl"] == "s3://models/bio/model.tar.gz"
    config = sagemaker.describe_endpoint_config(EndpointConfigName="bio-config")
    assert config["ProductionVariants"][0]["ServerlessConfig"]["MaxConcurrency"] == 2
    after = sagemaker.describe_endpoint(EndpointName="bio")
    assert after["EndpointStatus"] == "InService"
    for key in ("EndpointArn", "EndpointConfigName", "CreationTime", "ProductionVariants"):
        assert after[key] == before[key]
    sagemaker.get_waiter("endpoint_in_service").wait(
        EndpointName="bio-late", WaiterConfig=FAST_WAIT
    )
    status = launcher.status(directory=private_local_aws_dir)
    assert {"name": "bio", "status": "InService", "region": "us-east-1"} in status.endpoints
    assert "models" in status.buckets

    # The snapshot refers to one copy of each body: the parts of a completed upload are slices
    # of their object's blob (an older copy is removed once nothing reads it).
    wait_for_snapshot(second.moto_url)
    health = probe(second.ports["moto"])
    assert health is not None and health["snapshot"]["blobs"] == 3


def lambda_zip() -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("handler.py", "def handle(event, context):\n    return {'ok': True}\n")
    return buffer.getvalue()


def test_server_made_ids_survive_and_deleted_bodies_are_dropped(
    private_local_aws_dir: Path,
) -> None:
    first = launcher.ensure_running()
    s3, apigateway, lambda_, iam = state_clients(first, "s3", "apigateway", "lambda", "iam")
    role = iam.create_role(
        RoleName="api-lambda",
        AssumeRolePolicyDocument=json.dumps({"Version": "2012-10-17", "Statement": []}),
    )["Role"]["Arn"]
    code = lambda_zip()
    function_arn = lambda_.create_function(
        FunctionName="ask",
        Runtime="python3.11",
        Role=role,
        Handler="handler.handle",
        Code={"ZipFile": code},
    )["FunctionArn"]
    api_id = apigateway.create_rest_api(name="bio-api")["id"]
    root_id = apigateway.get_resources(restApiId=api_id)["items"][0]["id"]
    resource_id = apigateway.create_resource(restApiId=api_id, parentId=root_id, pathPart="ask")[
        "id"
    ]
    key_id = apigateway.create_api_key(name="bio-key", enabled=True)["id"]
    s3.create_bucket(Bucket="scratch")
    s3.put_object(Bucket="scratch", Key="gone.bin", Body=b"to be deleted " * 1000)
    s3.put_object(Bucket="scratch", Key="kept.bin", Body=b"kept")
    blobs = private_local_aws_dir / "moto" / "blobs"
    wait_for_snapshot(first.moto_url)
    assert hashlib.sha256(b"to be deleted " * 1000).hexdigest() in {
        p.name for p in blobs.glob("*/*")
    }
    s3.delete_object(Bucket="scratch", Key="gone.bin")

    second = restart(private_local_aws_dir)
    s3, apigateway, lambda_, iam = state_clients(second, "s3", "apigateway", "lambda", "iam")

    assert apigateway.get_rest_api(restApiId=api_id)["name"] == "bio-api"
    assert apigateway.get_resource(restApiId=api_id, resourceId=resource_id)["path"] == "/ask"
    apigateway.put_method(
        restApiId=api_id,
        resourceId=resource_id,
        httpMethod="POST",
        authorizationType="NONE",
        apiKeyRequired=True,
    )
    assert apigateway.get_api_key(apiKey=key_id, includeValue=True)["name"] == "bio-key"
    function = lambda_.get_function(FunctionName="ask")
    assert function["Configuration"]["FunctionArn"] == function_arn
    assert function["Configuration"]["CodeSha256"] == _lambda_sha(code)
    assert iam.get_role(RoleName="api-lambda")["Role"]["Arn"] == role

    assert s3.get_object(Bucket="scratch", Key="kept.bin")["Body"].read() == b"kept"
    names = {path.name for path in blobs.glob("*/*")}
    assert hashlib.sha256(b"kept").hexdigest() in names
    assert hashlib.sha256(b"to be deleted " * 1000).hexdigest() not in names


def _lambda_sha(code: bytes) -> str:
    import base64

    return base64.b64encode(hashlib.sha256(code).digest()).decode()


def test_a_crashed_local_aws_comes_back_with_its_last_snapshot(
    private_local_aws_dir: Path,
) -> None:
    first = launcher.ensure_running()
    (s3,) = state_clients(first, "s3")
    s3.create_bucket(Bucket="survivor")
    s3.put_object(Bucket="survivor", Key="k", Body=b"saved before the crash")
    wait_for_snapshot(first.moto_url)
    os.kill(first.pid, signal.SIGKILL)  # no shutdown, no final snapshot
    for _ in range(200):
        if not pid_alive(first.pid):
            break
        time.sleep(0.05)

    second = launcher.ensure_running()  # finds a state file naming a dead process
    assert second.pid != first.pid
    (s3,) = state_clients(second, "s3")
    assert s3.get_object(Bucket="survivor", Key="k")["Body"].read() == b"saved before the crash"
