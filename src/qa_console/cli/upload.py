"""qa-console upload: check a model.tar.gz, then upload it to S3 and verify it.

    qa-console upload model.tar.gz [s3://bucket/folder/] [--json]

Without a URL the bucket and folder come from the settings; the default bucket is
qa-console-<account>-<region>, created when missing. The s3:// URL is printed on stdout.
An interrupted upload resumes when the same command is run again.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from qa_console.cli.context import state
from qa_console.cli.output import JsonFlag, Output, print_result

if TYPE_CHECKING:
    from qa_console.ops.upload import UploadOutcome


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
    as_json: JsonFlag = False,
) -> None:
    """Check ARCHIVE, upload it with SHA-256 checksums (resumable), verify it, print its URL."""
    from qa_console.ops.aws.s3 import MIB
    from qa_console.ops.upload import upload_model

    out = Output(as_json)
    cli = state(ctx)
    settings = cli.settings()
    with out.progress() as progress:
        outcome = upload_model(
            cli.target(),
            archive,
            destination,
            bucket=settings.bucket,
            folder=settings.folder,
            part_size=part_size_mb * MIB if part_size_mb else None,
            progress=progress,
        )
    out.result(outcome.to_dict(), lambda: _print(out, outcome))


def _print(out: Output, outcome: UploadOutcome) -> None:
    from rich.markup import escape

    for finding in outcome.check.warnings:
        out.warn(escape(f"[{finding.code}] {finding.message}"))
    result = outcome.upload
    if outcome.bucket_created:
        out.info(f"created bucket {result.bucket}")
    if result.skipped:
        out.info("the same archive is already there (size and sha256 match): nothing uploaded")
    else:
        resumed = f", resumed after {result.resumed_parts} parts" if result.resumed_parts else ""
        out.info(
            f"uploaded {result.size / 1e6:.1f} MB in {result.seconds:.1f} s "
            f"({result.bytes_per_second / 1e6:.1f} MB/s, {result.parts} parts{resumed}); "
            "size, sha256 and checksum verified"
        )
    print_result(result.url)
