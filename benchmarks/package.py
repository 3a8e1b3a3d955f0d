"""Packaging and upload benchmark: `.venv/bin/python benchmarks/package.py [--size-mb 1024]`.

1. Compressor choice, on a sample of weights-like bytes (float32 ~ N(0, 0.02), which gzip
   shrinks to ~92% like real model weights): zlib levels 1/6/9, Huffman-only, the parallel
   writer (ops/packaging/gzip_parallel.py), and the gzip command line (and pigz when installed).
2. Packaging a weights-like model folder of --size-mb with `ops.package.build` versus
   `tar -czf` of the same folder: medians over --runs, and the ratio.
3. Validating the built archive (`check_tarball`, what runs before every upload).
4. Upload throughput of the archive to a local moto S3 (loopback) with `ops.s3.upload_file`
   (multipart, SHA-256 checksums, verified), against boto3's managed `upload_file` as a baseline.

Everything is made in a temp dir and deleted at the end; every loop is bounded by the options.
"""

from __future__ import annotations

import argparse
import io
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import zlib
from collections.abc import Callable
from pathlib import Path

MB = 1_000_000
BLOCK = 64 * 1024 * 1024


def weights_like(size: int, seed: int = 0) -> bytes:
    import numpy as np

    rng = np.random.default_rng(seed)
    return (rng.standard_normal(size // 4) * 0.02).astype(np.float32).tobytes()


def make_model_folder(folder: Path, size_mb: int) -> None:
    """config, tokenizer files and a model.safetensors of `size_mb` weights-like bytes."""
    folder.mkdir(parents=True)
    (folder / "config.json").write_text('{"model_type": "t5", "transformers_version": "5.23.0"}')
    (folder / "generation_config.json").write_text('{"decoder_start_token_id": 0}')
    vocab = {f"piece{i}": i for i in range(32_000)}
    (folder / "tokenizer.json").write_text(str(vocab).replace("'", '"'))
    (folder / "tokenizer_config.json").write_text('{"tokenizer_class": "T5Tokenizer"}')
    remaining = size_mb * MB
    with open(folder / "model.safetensors", "wb") as handle:
        seed = 0
        while remaining > 0:
            block = weights_like(min(BLOCK, remaining), seed)
            handle.write(block)
            remaining -= len(block)
            seed += 1


def timed(function: Callable[[], object]) -> float:
    started = time.perf_counter()
    function()
    return time.perf_counter() - started


def median_of(runs: int, function: Callable[[], object]) -> tuple[float, list[float]]:
    times = [timed(function) for _ in range(runs)]
    return statistics.median(times), times


def compressor_table(sample_mb: int, threads: int, scratch: Path) -> list[tuple[str, float, float]]:
    """(name, MB/s of input, compressed/original) for each compressor on the same sample."""
    from qa_console.ops.packaging.gzip_parallel import ParallelGzipWriter

    data = weights_like(sample_mb * MB, seed=42)
    rows: list[tuple[str, float, float]] = []

    def zlib_run(level: int, strategy: int) -> int:
        compressor = zlib.compressobj(level, zlib.DEFLATED, 31, 8, strategy)
        return len(compressor.compress(data) + compressor.flush())

    def parallel_run(level: int, strategy: int, count: int) -> int:
        sink = io.BytesIO()
        with ParallelGzipWriter(sink, level=level, strategy=strategy, threads=count) as writer:
            writer.write(data)
        return len(sink.getvalue())

    cases: list[tuple[str, Callable[[], int]]] = [
        ("python zlib level 1", lambda: zlib_run(1, zlib.Z_DEFAULT_STRATEGY)),
        ("python zlib level 6", lambda: zlib_run(6, zlib.Z_DEFAULT_STRATEGY)),
        (
            "python zlib level 9 (tarfile w:gz default)",
            lambda: zlib_run(9, zlib.Z_DEFAULT_STRATEGY),
        ),
        ("python zlib Huffman-only", lambda: zlib_run(1, zlib.Z_HUFFMAN_ONLY)),
        (f"parallel level 1, {threads} threads", lambda: parallel_run(1, 0, threads)),
        (f"parallel level 6, {threads} threads", lambda: parallel_run(6, 0, threads)),
        (
            f"parallel Huffman-only, {threads} threads (default)",
            lambda: parallel_run(1, zlib.Z_HUFFMAN_ONLY, threads),
        ),
    ]
    for name, run in cases:
        started = time.perf_counter()
        size = run()
        seconds = time.perf_counter() - started
        rows.append((name, len(data) / MB / seconds, size / len(data)))

    sample = scratch / "sample.bin"
    sample.write_bytes(data)
    tools = [("gzip -1", ["gzip", "-1", "-c"]), ("gzip -6 (tar -czf)", ["gzip", "-6", "-c"])]
    if shutil.which("pigz"):
        tools.append((f"pigz -6 -p {threads}", ["pigz", "-6", "-p", str(threads), "-c"]))
    for name, command in tools:
        if not shutil.which(command[0]):
            continue
        with open(sample, "rb") as source:
            started = time.perf_counter()
            output = subprocess.run(command, stdin=source, capture_output=True, check=True).stdout
            seconds = time.perf_counter() - started
        rows.append((name, len(data) / MB / seconds, len(output) / len(data)))
    sample.unlink()
    return rows


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def upload_benchmark(archive: Path, runs: int) -> dict[str, tuple[float, list[float]]]:
    import boto3
    from moto.server import ThreadedMotoServer

    from qa_console.ops.aws import s3
    from qa_console.ops.aws.target import Connection, Target

    port = free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    saved = {name: os.environ.get(name) for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY")}
    os.environ["AWS_ACCESS_KEY_ID"] = os.environ["AWS_SECRET_ACCESS_KEY"] = "testing"
    try:
        url = f"http://127.0.0.1:{port}"
        client = boto3.client("s3", region_name="us-east-1", endpoint_url=url)
        keys = {"aws_access_key_id": "testing", "aws_secret_access_key": "testing"}
        target = Target(
            "bench", "us-east-1", connect=lambda: Connection({"*": url}, credentials=keys)
        )
        s3.ensure_bucket(target, "bench-bucket")
        state = Path(tempfile.mkdtemp(prefix="qa-console-bench-state-"))
        counter = iter(range(10_000))

        def ours() -> None:
            key = f"ours/{next(counter)}/model.tar.gz"
            s3.upload_file(target, archive, "bench-bucket", key, state_dir=state)
            client.delete_object(Bucket="bench-bucket", Key=key)

        def managed() -> None:
            key = f"boto3/{next(counter)}/model.tar.gz"
            client.upload_file(str(archive), "bench-bucket", key)
            client.delete_object(Bucket="bench-bucket", Key=key)

        results = {"ops.s3.upload_file": median_of(runs, ours)}
        results["boto3 upload_file (managed, no verify)"] = median_of(runs, managed)
        shutil.rmtree(state, ignore_errors=True)
        return results
    finally:
        server.stop()
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size-mb", type=int, default=1024, help="weights in the model folder")
    parser.add_argument("--runs", type=int, default=3, help="runs per packaging variant (max 9)")
    parser.add_argument("--upload-runs", type=int, default=3, help="runs per upload (max 9)")
    parser.add_argument("--sample-mb", type=int, default=64, help="compressor-choice sample")
    args = parser.parse_args()
    runs, upload_runs = min(args.runs, 9), min(args.upload_runs, 9)

    from qa_console.ops.packaging.build import build, compression_threads
    from qa_console.ops.packaging.check import check_tarball

    threads = compression_threads()
    print(f"python {sys.version.split()[0]}, zlib {zlib.ZLIB_RUNTIME_VERSION}, {threads} CPUs, "
          f"load average {os.getloadavg()[0]:.1f}")  # fmt: skip
    scratch = Path(tempfile.mkdtemp(prefix="qa-console-bench-"))
    try:
        print(f"\n## compressor choice ({args.sample_mb} MB of weights-like float32)")
        print("| compressor | MB/s | size |")
        print("| --- | --- | --- |")
        for name, speed, ratio in compressor_table(args.sample_mb, threads, scratch):
            print(f"| {name} | {speed:.0f} | {ratio:.1%} |")

        folder = scratch / "model"
        started = time.perf_counter()
        make_model_folder(folder, args.size_mb)
        total = sum(path.stat().st_size for path in folder.iterdir())
        print(
            f"\nmodel folder: {total / MB:.0f} MB written in {time.perf_counter() - started:.1f} s"
        )

        archive = scratch / "model.tar.gz"
        ours, ours_times = median_of(runs, lambda: build(folder, archive))
        size = archive.stat().st_size
        tar_out = scratch / "tar.tar.gz"
        tar_cmd = ["tar", "-czf", str(tar_out), "-C", str(folder), "."]
        tar, tar_times = median_of(runs, lambda: subprocess.run(tar_cmd, check=True))
        print(f"\n## packaging {total / MB:.0f} MB ({runs} runs each)")
        print("| tool | median | runs | MB/s | archive |")
        print("| --- | --- | --- | --- | --- |")
        for name, median, times, out in (
            ("qa-console package (ops.package.build)", ours, ours_times, size),
            ("tar -czf", tar, tar_times, tar_out.stat().st_size),
        ):
            runs_text = ", ".join(f"{t:.1f}" for t in times)
            print(f"| {name} | {median:.2f} s | {runs_text} | {total / MB / median:.0f} | "
                  f"{out / total:.1%} |")  # fmt: skip
        print(f"\nratio: tar -czf / qa-console package = {tar / ours:.2f}x")
        tar_out.unlink()

        check = timed(lambda: check_tarball(archive))
        print(f"check_tarball of the archive: {check:.2f} s ({size / MB / check:.0f} MB/s packed)")

        print(f"\n## upload of {size / MB:.0f} MB to local moto S3 ({upload_runs} runs each)")
        print("| uploader | median | runs | MB/s |")
        print("| --- | --- | --- | --- |")
        results = upload_benchmark(archive, upload_runs)
        for name, (median, times) in results.items():
            runs_text = ", ".join(f"{t:.1f}" for t in times)
            print(f"| {name} | {median:.2f} s | {runs_text} | {size / MB / median:.0f} |")
        ours_up = results["ops.s3.upload_file"][0]
        managed_up = results["boto3 upload_file (managed, no verify)"][0]
        print(f"\nratio: ops.s3.upload_file / boto3 managed = {ours_up / managed_up:.2f}x time")
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
