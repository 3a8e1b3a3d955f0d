"""qa-console upload: check a model.tar.gz, then upload it to S3 and verify it.

    qa-console upload model.tar.gz [s3://bucket/folder/] [--json]

Without a URL the bucket and folder come from the settings; the default bucket is
qa-console-<account>-<region>, created when missing. The s3:// URL is printed on stdout.
An interrupted upload resumes when the same command is run again.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from qa_console.cli.context import state
from qa_console.cli.output import info, print_json, print_result, warn
from qa_console.cli.progress import RichProgress
from qa_console.errors import UsageError


def register(app: typer.Typer) -> None:
    """Add this module's commands to the root app."""
    app.command("upload", no_args_is_help=True)(upload)


def upload(
    ctx: typer.Context,
    archive: Annotated[Path, typer.Argument(help="The model.tar.gz to upload.", metavar="ARCHIVE")],
    destination: Annotated[
        str | None,
        typer.Argument(
            help="s3://bucket/folder/ (default: the bucket and folder settings).",
            metavar="[S3_URL]",
            show_default=False,
        ),
    ] = None,
    part_size_mb: Annotated[
        int | None,
        typer.Option("--part-size-mb", min=5, help="Multipart part size in MiB (default 16)."),
    ] = None,
    json_output: Annotated[bool, typer.Option("--json", help="Print the result as JSON.")] = False,
) -> None:
    """Check ARCHIVE, upload it with SHA-256 checksums (resumable), verify it, print its URL."""
    from rich.markup import escape

    from qa_console.ops.aws import s3
    from qa_console.ops.aws import target as aws
    from qa_console.ops.packaging.check import check_tarball

    settings = state(ctx).settings()
    target, region = settings.target, settings.region
    if archive.is_dir():
        raise UsageError(
            f"{archive} is a folder; upload takes a model.tar.gz",
            hint=f"build one first: qa-console package {archive}",
        )
    if destination:
        s3.parse_s3_url(destination)  # a mistyped URL fails before a big archive is read

    with RichProgress(enabled=not json_output, transient=True) as progress:
        report = check_tarball(archive, progress=progress)
    if len(report.errors) > 1:  # the error line names the first; list them all
        for finding in report.errors:
            info(escape(f"refused: [{finding.code}] {finding.message}"))
    report.raise_if_refused()
    for finding in report.warnings:
        warn(escape(f"[{finding.code}] {finding.message}"))

    client = aws.client("s3", target, region)
    bucket, key = s3.resolve_destination(
        destination,
        archive.name,
        bucket=settings.bucket,
        folder=settings.folder,
        region=region,
        sts=lambda: aws.client("sts", target, region),
    )

    if s3.ensure_bucket(client, bucket, region) and not json_output:
        info(f"created bucket {bucket} in {region}")
    part_size = part_size_mb * s3.MIB if part_size_mb else None
    with RichProgress(enabled=not json_output) as progress:
        result = s3.upload_file(
            client, archive, bucket, key, part_size=part_size, progress=progress
        )

    if json_output:
        print_json({"upload": result.to_dict(), "check": report.to_dict()})
        return
    if result.skipped:
        info("the same archive is already there (size and sha256 match): nothing uploaded")
    else:
        resumed = f", resumed after {result.resumed_parts} parts" if result.resumed_parts else ""
        info(
            f"uploaded {result.size / 1e6:.1f} MB in {result.seconds:.1f} s "
            f"({result.bytes_per_second / 1e6:.1f} MB/s, {result.parts} parts{resumed}); "
            "size, sha256 and checksum verified"
        )
    print_result(result.url)
