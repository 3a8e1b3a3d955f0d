"""The AWS target the screens' workers call: the app's target and region, resolved once per app.

Resolving 'local' may start the embedded local AWS, so it only ever happens inside a worker
thread; the Target is then shared by every screen (its clients are thread-safe to build).
"""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING
from weakref import WeakKeyDictionary

if TYPE_CHECKING:
    from textual.app import App

    from qa_console.ops.aws.target import Target

_targets: WeakKeyDictionary[App[None], Target] = WeakKeyDictionary()
_lock = threading.Lock()


def target_for(app: App[None]) -> Target:
    """The Target of `app.target` / `app.region` (call from a worker thread)."""
    from qa_console.ops.aws.target import resolve

    with _lock:
        found = _targets.get(app)
        name, region = getattr(app, "target", None), getattr(app, "region", None)
        if found is None or (found.name, found.region) != (name, region):
            found = resolve(name, region)
            _targets[app] = found
        return found
