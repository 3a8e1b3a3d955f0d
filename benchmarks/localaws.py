"""Local AWS launcher: start-up and stop wall times; persistence (snapshots) vs moto's recorder.

    .venv/bin/python benchmarks/localaws.py [--runs 3] [--object-mb 50]

Everything runs in temporary state dirs with QA_CONSOLE_LOCAL_WATCH_PID set, so nothing outlives
the script. Prints one table per part; bounded to a couple of minutes on 2 cores.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import re
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import boto3
from boto3.s3.transfer import TransferConfig
from botocore.config import Config

REPO = Path(__file__).resolve().parent.parent
CLI = Path(sys.executable).parent / "qa-console"
MB = 1024 * 1024


def cli(env: dict[str, str], *args: str) -> tuple[float, dict[str, Any]]:
    started = time.perf_counter()
    result = subprocess.run(
        [str(CLI), *args, "--json"], env=env, capture_output=True, text=True, check=True
    )
    return time.perf_counter() - started, json.loads(result.stdout)


def client(url: str, service: str) -> Any:
    return boto3.session.Session().client(
        service,
        endpoint_url=url,
        region_name="us-east-1",
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
        config=Config(retries={"mode": "standard"}),
    )


def populate(url: str, object_mb: int, name: str = "bench") -> None:
    s3, sagemaker = client(url, "s3"), client(url, "sagemaker")
    s3.create_bucket(Bucket=name)
    s3.upload_fileobj(
        io.BytesIO(os.urandom(object_mb * MB)),
        name,
        "model.tar.gz",
        Config=TransferConfig(multipart_threshold=8 * MB, multipart_chunksize=8 * MB),
    )
    sagemaker.create_model(
        ModelName=name,
        ExecutionRoleArn="arn:aws:iam::123456789012:role/r",
        PrimaryContainer={"Image": "i", "ModelDataUrl": f"s3://{name}/model.tar.gz"},
    )
    sagemaker.create_endpoint_config(
        EndpointConfigName=name,
        ProductionVariants=[
            {
                "VariantName": "AllTraffic",
                "ModelName": name,
                "ServerlessConfig": {"MemorySizeInMB": 2048, "MaxConcurrency": 2},
            }
        ],
    )
    sagemaker.create_endpoint(EndpointName=name, EndpointConfigName=name)


def log_numbers(directory: Path) -> dict[str, list[float]]:
    text = (directory / "supervisor.log").read_text()
    return {
        "ready": [float(x) for x in re.findall(r"local AWS ready in ([\d.]+) s", text)],
        "restore": [float(x) for x in re.findall(r"restored \d+ backends .* in ([\d.]+) s", text)],
        "snapshot": [float(x) for x in re.findall(r"snapshot: .* in ([\d.]+) s", text)],
        "snapshot_mb": [float(x) for x in re.findall(r"snapshot: .*, ([\d.]+) MB in", text)],
        "stopped": [float(x) for x in re.findall(r"stopped in ([\d.]+) s", text)],
    }


def launcher_part(runs: int, object_mb: int) -> None:
    print(f"## start-up and stop ({runs} runs, seconds unless said)")
    rows: dict[str, list[float]] = {}
    for _ in range(runs):
        directory = Path(tempfile.mkdtemp(prefix="bench-local-aws-"))
        env = {
            **os.environ,
            "QA_CONSOLE_LOCAL_AWS_DIR": str(directory),
            "QA_CONSOLE_LOCAL_WATCH_PID": str(os.getpid()),
        }
        try:
            seconds, up = cli(env, "local", "up")
            rows.setdefault("local up, empty state dir", []).append(seconds)
            s3 = client(up["urls"]["moto"], "s3")
            started = time.perf_counter()
            s3.list_buckets()
            rows.setdefault("first S3 request after up", []).append(time.perf_counter() - started)
            for _ in range(3):
                seconds, again = cli(env, "local", "up")
                assert not again["started"]
                rows.setdefault("local up, already running", []).append(seconds)
            seconds, _ = cli(env, "local", "status")
            rows.setdefault("local status", []).append(seconds)
            populate(up["urls"]["moto"], object_mb)
            seconds, _ = cli(env, "local", "down")
            rows.setdefault(f"local down (saves {object_mb} MB object + endpoint)", []).append(
                seconds
            )
            seconds, _ = cli(env, "local", "up")
            rows.setdefault("local up, restoring that state", []).append(seconds)
            seconds, _ = cli(env, "local", "down")
            rows.setdefault("local down, nothing changed", []).append(seconds)
            numbers = log_numbers(directory)
            rows.setdefault("  supervisor: ready after spawn (s)", []).extend(numbers["ready"])
            rows.setdefault("  supervisor: restore (s)", []).extend(numbers["restore"])
            rows.setdefault("  supervisor: one snapshot (s)", []).extend(numbers["snapshot"])
            rows.setdefault("  supervisor: snapshot file, bodies apart (MB)", []).extend(
                numbers["snapshot_mb"]
            )
        finally:
            subprocess.run([str(CLI), "local", "down"], env=env, capture_output=True, check=False)
            shutil.rmtree(directory, ignore_errors=True)
    print("| what | median | min | max | n |\n| --- | --- | --- | --- | --- |")
    for what, values in rows.items():
        if values:
            print(
                f"| {what} | {statistics.median(values):.2f} | {min(values):.2f} "
                f"| {max(values):.2f} | {len(values)} |"
            )


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def start_moto(port: int, env: dict[str, str]) -> subprocess.Popen[bytes]:
    server = subprocess.Popen(
        [sys.executable, "-m", "moto.server", "-p", str(port)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    for _ in range(400):
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            break
        except OSError:
            time.sleep(0.05)
    return server


def recorder_part(object_mb: int) -> None:
    """moto's own recorder on the same workload, restarted the way `down`/`up` would: record in
    one server, then load and replay the recording in a fresh one."""
    import requests

    print(f"\n## moto's recorder on the same workload ({object_mb} MB multipart upload)")
    directory = Path(tempfile.mkdtemp(prefix="bench-recorder-"))
    recording = directory / "recording.jsonl"
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    env = {
        **os.environ,
        "MOTO_ENABLE_RECORDING": "true",
        "MOTO_RECORDER_FILEPATH": str(recording),
    }
    server = start_moto(port, env)
    try:
        populate(url, object_mb)
        sagemaker = client(url, "sagemaker")
        for _ in range(20):  # what a waiter or the runtime's polling adds
            sagemaker.describe_endpoint(EndpointName="bench")
    finally:
        server.terminate()
        server.wait(timeout=10)
    size = recording.stat().st_size
    lines = recording.read_text().count("\n")
    replayed = directory / "replayed.jsonl"
    env = {**os.environ, "MOTO_RECORDER_FILEPATH": str(replayed)}
    server = start_moto(port, env)
    try:
        started = time.perf_counter()
        requests.post(f"{url}/moto-api/recorder/upload-recording", data=recording.read_bytes())
        answer = requests.post(f"{url}/moto-api/recorder/replay-recording", timeout=600)
        replay = time.perf_counter() - started
        s3 = client(url, "s3")
        try:
            s3.head_object(Bucket="bench", Key="model.tar.gz")
            survived = "yes"
        except Exception as error:  # the multipart upload id differs on replay
            survived = f"no ({type(error).__name__}: {error})"
        endpoints = [
            e["EndpointName"] for e in client(url, "sagemaker").list_endpoints()["Endpoints"]
        ]
        print(f"- recording: {lines} requests, {size / MB:.1f} MB for a {object_mb} MB upload")
        print(f"- upload + replay into a fresh server: {replay:.2f} s (HTTP {answer.status_code})")
        print(f"- buckets after replay: {[b['Name'] for b in s3.list_buckets()['Buckets']]}")
        print(f"- multipart object after replay: {survived}")
        print(f"- endpoints after replay: {endpoints}")
    finally:
        server.terminate()
        server.wait(timeout=10)
        shutil.rmtree(directory, ignore_errors=True)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--object-mb", type=int, default=50)
    args = parser.parse_args()
    print(f"load average at start: {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores\n")
    launcher_part(args.runs, args.object_mb)
    recorder_part(args.object_mb)


if __name__ == "__main__":
    main()
