"""One hookspec module: what a plugin can add to shuzhi, and the manager that finds them.

Built-in connectors are registered as default plugins through the same hooks a third
party uses; a distribution adds its own with a ``shuzhi`` entry point.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

import pluggy

hookspec = pluggy.HookspecMarker("shuzhi")
hookimpl = pluggy.HookimplMarker("shuzhi")

DEFAULT_PLUGINS = (
    "shuzhi.lake.connectors",
    "shuzhi.lake.service",
    "shuzhi.gateway.service",
    "shuzhi.brain.service",
    "shuzhi.loop.service",
    "shuzhi.loop.reforms",
    "shuzhi.notify.service",
)


@dataclass(frozen=True)
class Job:
    """Background work `shuzhi worker` runs on every tick: ``run(db, worker)`` does what is
    due and returns how many items it handled (0: nothing was due)."""

    name: str
    run: Callable[[Any, str], int]


class Hooks:
    @hookspec
    def shuzhi_connectors(self) -> list[Any]:
        """Connectors that stage a source into the lake (see ``shuzhi.lake.connectors``).

        Each has ``kind`` (a short name such as ``csv``), ``suffixes`` (file name endings
        it reads) and ``stage(con, source, table, progress)``.
        """

    @hookspec
    def shuzhi_jobs(self) -> list[Job]:
        """Background jobs for `shuzhi worker` (scheduled pulls, and later others)."""

    @hookspec
    def shuzhi_on_warnings(self, database: Any, changes: list[dict[str, Any]]) -> None:
        """A warning channel: called after an evaluation commits, with each warning whose
        state changed (``warning_id``, ``from_state``, ``to_state``). The closed loop
        raises a problem for each that fired."""


def jobs() -> list[Job]:
    return [job for batch in manager().hook.shuzhi_jobs() for job in batch]


@lru_cache(maxsize=1)
def manager() -> pluggy.PluginManager:
    import importlib

    plugins = pluggy.PluginManager("shuzhi")
    plugins.add_hookspecs(Hooks)
    for name in DEFAULT_PLUGINS:
        plugins.register(importlib.import_module(name), name=name)
    plugins.load_setuptools_entrypoints("shuzhi")
    return plugins
