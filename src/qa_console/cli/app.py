"""The `qa-console` command: root options, the command groups, the error -> exit code mapping."""

from __future__ import annotations

import sys
from typing import Annotated

import typer

from qa_console import __version__
from qa_console.cli import (
    ask,
    backends,
    bench,
    config,
    deploy,
    expose,
    history,
    iam,
    local,
    logs,
    package,
    status,
    train,
    tui,
    up,
    upload,
)
from qa_console.cli.context import CliState
from qa_console.errors import EXIT_INTERRUPTED, QAConsoleError, UsageError

app = typer.Typer(
    name="qa-console",
    help="Take a question-answering model from a dataset to a live HTTP API on SageMaker, "
    "and talk to it at every step. Without a command, on a terminal: the terminal UI.",
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
)


def _version(value: bool) -> None:
    if value:
        print(f"qa-console {__version__}")
        raise typer.Exit()


@app.callback(invoke_without_command=True)
def root(
    ctx: typer.Context,
    config_path: Annotated[
        str | None,
        typer.Option("--config", help="Settings file to read instead of the user's config.toml."),
    ] = None,
    target: Annotated[
        str | None,
        typer.Option(
            "--target",
            "--profile",
            help="'local' for the embedded local AWS, or an AWS profile name.",
        ),
    ] = None,
    region: Annotated[str | None, typer.Option("--region", help="AWS region.")] = None,
    version: Annotated[
        bool, typer.Option("--version", callback=_version, is_eager=True, help="Print the version.")
    ] = False,
) -> None:
    ctx.obj = CliState(config_path=config_path, overrides={"target": target, "region": region})
    if ctx.invoked_subcommand is None:
        # Bare `qa-console`: people at a terminal get the app they live in; scripts, pipes and
        # CI get the help text, never a full-screen UI waiting for keys.
        if sys.stdin.isatty() and sys.stdout.isatty():
            tui.tui(ctx, backend=None)
        else:
            print(ctx.get_help())
        raise typer.Exit()


ask.register(app)
backends.register(app)
bench.register(app)
config.register(app)
history.register(app)
train.register(app)
package.register(app)
upload.register(app)
deploy.register(app)
expose.register(app)
status.register(app)
logs.register(app)
iam.register(app)
local.register(app)
tui.register(app)
up.register(app)


# Libraries of the optional extras (pyproject.toml), imported lazily where a command needs them:
# a client-only install gets "install the extra" instead of a traceback.
OPTIONAL_MODULES = {
    "torch": "model",
    "transformers": "model",
    "safetensors": "model",
    "tokenizers": "model",
    "datasets": "train",
    "accelerate": "train",
    "matplotlib": "train",
    "moto": "local",
    "starlette": "local",
    "uvicorn": "local",
    "sagemaker": "aws",
}


def main(argv: list[str] | None = None) -> None:
    """Entry point of the console script: run the app and map errors to exit codes."""
    # typer 0.29 vendors click as typer._click: its exceptions are not the `click` package's.
    from typer._click.exceptions import ClickException

    command = typer.main.get_command(app)
    try:
        result = command.main(args=argv, prog_name="qa-console", standalone_mode=False)
    except QAConsoleError as error:
        from qa_console.cli.output import print_error

        print_error(error)
        sys.exit(error.exit_code)
    except ModuleNotFoundError as error:
        extra = OPTIONAL_MODULES.get((error.name or "").partition(".")[0])
        if extra is None:
            raise
        from qa_console.cli.output import print_error

        print_error(
            UsageError(
                f"this needs {error.name}, which is not installed here",
                hint=f"pip install 'qa-console[{extra}]' ('qa-console[all]' for everything)",
            )
        )
        sys.exit(UsageError.exit_code)
    except (KeyboardInterrupt, typer.Abort):
        sys.stderr.write("\ninterrupted\n")
        sys.exit(EXIT_INTERRUPTED)
    except typer.Exit as exit_:
        sys.exit(exit_.exit_code)
    except ClickException as error:
        error.show()
        sys.exit(UsageError.exit_code)
    if result == EXIT_INTERRUPTED:  # typer turns KeyboardInterrupt into Exit(130) itself
        sys.stderr.write("\ninterrupted\n")
    sys.exit(result if isinstance(result, int) else 0)
