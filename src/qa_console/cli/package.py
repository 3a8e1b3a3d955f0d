"""qa-console package: build model.tar.gz from a model folder, check one, or smoke-test one.

    qa-console package MODEL_DIR [-o model.tar.gz] [--requirements] [--convert]
                                 [--fast-path auto|int8|none]
    qa-console package --check model.tar.gz [--memory-mb 2048]
    qa-console package --smoke model.tar.gz [--question "..."]

A refused archive exits with code 2 after listing every problem and what to do about it.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from qa_console.cli.output import JsonFlag, Output, info, print_result, warn
from qa_console.errors import UsageError

if TYPE_CHECKING:
    from qa_console.ops.packaging.build import PackageResult
    from qa_console.ops.packaging.check import CheckReport
    from qa_console.ops.packaging.smoke import SmokeResult

DEFAULT_QUESTION = "Where was Ada Lovelace born?"


FastPathOption = Annotated[
    str,
    typer.Option(
        "--fast-path",
        help="CPU fast path the handler applies when it loads the model: int8 (dynamic int8 "
        "Linear layers), none, or auto (int8 from 50 M parameters, where it is faster).",
    ),
]


def register(app: typer.Typer) -> None:
    """Add this module's commands to the root app."""
    app.command("package", no_args_is_help=True)(package)


def package(
    path: Annotated[
        Path,
        typer.Argument(
            help="The model folder to package; with --check or --smoke, a model.tar.gz.",
            metavar="PATH",
            show_default=False,
        ),
    ],
    output: Annotated[
        Path | None,
        typer.Option("-o", "--output", help="Archive to write. Default: <MODEL_DIR>.tar.gz."),
    ] = None,
    check: Annotated[
        bool, typer.Option("--check", help="Validate an existing archive instead of building.")
    ] = False,
    smoke: Annotated[
        bool,
        typer.Option(
            "--smoke", help="Check an archive, then answer one question through its handler."
        ),
    ] = False,
    question: Annotated[
        str, typer.Option("--question", help="The question --smoke asks.")
    ] = DEFAULT_QUESTION,
    memory_mb: Annotated[
        int | None,
        typer.Option("--memory-mb", help="Warn when the model needs more memory than this."),
    ] = None,
    requirements: Annotated[
        bool,
        typer.Option(
            "--requirements",
            help="Add code/requirements.txt pinning the transformers that saved the model.",
        ),
    ] = False,
    convert: Annotated[
        bool,
        typer.Option(
            "--convert", help="Re-save pickle weights (pytorch_model.bin) as safetensors."
        ),
    ] = False,
    level: Annotated[
        int | None,
        typer.Option(
            "--level",
            min=0,
            max=9,
            help="One zlib level for every file (default: Huffman-only weights, level 6 others).",
        ),
    ] = None,
    threads: Annotated[
        int | None,
        typer.Option("--threads", min=1, help="Compression threads (default: all CPUs)."),
    ] = None,
    no_check: Annotated[
        bool, typer.Option("--no-check", help="Skip validating the archive after building it.")
    ] = False,
    fast_path: FastPathOption = "auto",
    as_json: JsonFlag = False,
) -> None:
    """Build a SageMaker model.tar.gz (model files at the root, code/inference.py, manifest.json),
    or check or smoke-test an existing one."""
    if check or smoke:
        _check_and_smoke(path, smoke=smoke, question=question, memory_mb=memory_mb, as_json=as_json)
        return
    _build(
        path,
        output,
        requirements=requirements,
        convert=convert,
        level=level,
        threads=threads,
        fast_path=fast_path,
        verify=not no_check,
        memory_mb=memory_mb,
        as_json=as_json,
    )


def _build(
    model_dir: Path,
    output: Path | None,
    *,
    requirements: bool,
    convert: bool,
    level: int | None,
    threads: int | None,
    fast_path: str,
    verify: bool,
    memory_mb: int | None,
    as_json: bool,
) -> None:
    from qa_console.ops.packaging.build import build, requirements_for
    from qa_console.ops.packaging.check import check_tarball

    if model_dir.is_file():
        raise UsageError(
            f"{model_dir} is a file; package builds from a model folder",
            hint=f"to validate an archive: qa-console package --check {model_dir}",
        )
    out = Output(as_json)
    pins = requirements_for(model_dir) if requirements else None
    with out.progress(transient=True) as progress:
        result = build(
            model_dir,
            output,
            requirements=pins,
            convert=convert,
            level=level,
            threads=threads,
            fast_path=fast_path,
            progress=progress,
        )
        report = (
            check_tarball(result.archive, memory_mb=memory_mb, progress=progress)
            if verify
            else None
        )

    data = {"package": result.to_dict(), "check": report.to_dict() if report else None}
    out.result(data, lambda: _print_build(result, report))
    if report is not None:
        _refuse_if_bad(report)


def _check_and_smoke(
    archive: Path, *, smoke: bool, question: str, memory_mb: int | None, as_json: bool
) -> None:
    from qa_console.ops.packaging.check import check_tarball
    from qa_console.ops.packaging.smoke import smoke_test

    if archive.is_dir():
        raise UsageError(
            f"{archive} is a folder; --check and --smoke take a model.tar.gz",
            hint=f"to build one: qa-console package {archive}",
        )
    out = Output(as_json)
    with out.progress(transient=True) as progress:
        report = check_tarball(archive, memory_mb=memory_mb, progress=progress)
        ran: SmokeResult | None = None
        if smoke and report.ok:
            ran = smoke_test(archive, question=question, progress=progress)
    data: dict[str, Any] = {"check": report.to_dict()}
    if smoke:
        data["smoke"] = ran.to_dict() if ran else None
    out.result(data, lambda: _print_check(report, ran))
    _refuse_if_bad(report)


def _print_check(report: CheckReport, ran: SmokeResult | None) -> None:
    _print_report(report)
    if ran is not None:
        _print_smoke(ran)


def _print_build(result: PackageResult, report: CheckReport | None) -> None:
    print_result(
        f"wrote {result.archive} ({result.archive_bytes / 1e6:.1f} MB from "
        f"{result.unpacked_bytes / 1e6:.1f} MB, {len(result.files)} files, {result.seconds:.1f} s)"
    )
    print_result(f"sha256 {result.sha256}")
    print_result(f"fast path {result.manifest['fast_path']} ({result.fast_path_reason})")
    if result.converted:
        info("pickle weights were re-saved as safetensors")
    from rich.markup import escape

    for name, reason in result.skipped:
        info(f"[dim]left out {escape(name)}: {escape(reason)}[/]")
    if report is not None:
        _print_report(report)


def _print_report(report: CheckReport) -> None:
    for finding in report.errors:
        print_result(f"error    [{finding.code}] {finding.message}")
        if finding.hint:
            print_result(f"         fix: {finding.hint}")
    for finding in report.warnings:
        print_result(f"warning  [{finding.code}] {finding.message}")
        if finding.hint:
            print_result(f"         hint: {finding.hint}")
    print_result(report.summary())


def _print_smoke(result: SmokeResult) -> None:
    print_result(f"answer: {result.answer}")
    print_result(
        f"model_fn {result.load_ms:.0f} ms, request {result.predict_ms:.0f} ms "
        f"(unpack {result.extract_ms:.0f} ms)"
    )
    if not result.answer:
        warn("the handler answered with empty text")


def _refuse_if_bad(report: CheckReport) -> None:
    if not report.ok:
        raise UsageError(
            f"{report.archive.name} refused: {len(report.errors)} problem(s), listed above",
            hint="fix them and build the archive again (`qa-console package MODEL_DIR`)",
        )
