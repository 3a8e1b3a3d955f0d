"""What the root command's options leave for every subcommand: the settings and the AWS target."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import typer

if TYPE_CHECKING:
    from qa_console.ops.aws.target import Target
    from qa_console.settings import Settings


@dataclass
class CliState:
    config_path: str | None = None
    overrides: dict[str, str | None] = field(default_factory=dict)
    _settings: Settings | None = None
    _target: Target | None = None

    def settings(self) -> Settings:
        """The effective settings, read once per run (raises ConfigError on a bad file)."""
        if self._settings is None:
            from qa_console.settings import load_settings

            self._settings = load_settings(self.config_path, self.overrides)
        return self._settings

    def target(self) -> Target:
        """Where this run's AWS calls go (the `target` and `region` settings), resolved once:
        'local' starts the embedded local AWS if it is not running."""
        if self._target is None:
            from qa_console.ops.aws.target import resolve

            settings = self.settings()
            self._target = resolve(settings.target, settings.region)
        return self._target


def state(ctx: typer.Context) -> CliState:
    """The CliState of this run, from any subcommand's context."""
    root = ctx.find_root()
    if not isinstance(root.obj, CliState):
        root.obj = CliState()
    return root.obj
