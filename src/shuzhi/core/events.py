"""In-process events: a lower package tells a higher one without importing it."""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Callable
from typing import Any

from sqlalchemy import event
from sqlalchemy.orm import Session

Handler = Callable[[str, dict[str, Any]], None]
_handlers: dict[str, list[Handler]] = defaultdict(list)
log = logging.getLogger(__name__)


def subscribe(name: str, handler: Handler) -> None:
    if handler not in _handlers[name]:
        _handlers[name].append(handler)


def unsubscribe(name: str, handler: Handler) -> None:
    if handler in _handlers[name]:
        _handlers[name].remove(handler)


def emit(name: str, **payload: Any) -> None:
    """Call every handler of ``name``; a failing handler is logged, never raised."""
    for handler in list(_handlers.get(name, ())):
        try:
            handler(name, payload)
        except Exception:
            log.exception("event handler failed", extra={"event": name})


_PENDING = "shuzhi_events"


def emit_after_commit(session: Session, name: str, **payload: Any) -> None:
    """Emit ``name`` once ``session`` commits; nothing if it rolls back."""
    session.info.setdefault(_PENDING, []).append((name, payload))


@event.listens_for(Session, "after_commit")
def _dispatch(session: Session) -> None:
    for name, payload in session.info.pop(_PENDING, []):
        emit(name, **payload)


@event.listens_for(Session, "after_rollback")
def _discard(session: Session) -> None:
    session.info.pop(_PENDING, None)
