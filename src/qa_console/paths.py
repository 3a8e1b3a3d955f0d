"""Where qa-console keeps things: the user's config, data and state dirs (platformdirs), the repo.

Every location honours the XDG variables on Linux, so tests isolate themselves by setting
XDG_CONFIG_HOME, XDG_DATA_HOME and XDG_STATE_HOME.
"""

from __future__ import annotations

from pathlib import Path

APP_NAME = "qa-console"


def config_dir() -> Path:
    import platformdirs

    return Path(platformdirs.user_config_dir(APP_NAME, appauthor=False))


def data_dir() -> Path:
    import platformdirs

    return Path(platformdirs.user_data_dir(APP_NAME, appauthor=False))


def state_dir() -> Path:
    import platformdirs

    return Path(platformdirs.user_state_dir(APP_NAME, appauthor=False))
