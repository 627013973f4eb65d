"""Which masking mode a granted field gets, and applying it to a value.

``clear`` only where the provider approved the field in clear (or it is not personal),
``masked`` display masking (``shuzhi.core.masking``), ``token`` a keyed hash that lets a
consumer join records without seeing the value (stable per consumer, unlinkable across
consumers), ``hidden`` never sent. Defaults come from the resource grade and the field's
PII kind (setting ``gateway.masking``).
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Callable, Iterable
from typing import Any

from shuzhi.core.masking import mask
from shuzhi.core.settings import GatewaySettings
from shuzhi.gateway.rules import MaskMode


def mode_for(*, pii: str, grade: str, approved_clear: bool, settings: GatewaySettings) -> MaskMode:
    if grade == "L4":
        return MaskMode.hidden
    if pii == "none" or approved_clear:
        return MaskMode.clear
    return MaskMode(settings.masking.get(grade, {}).get(pii, "masked"))


# from the least to the most withheld
STRICTNESS = (MaskMode.clear, MaskMode.masked, MaskMode.token, MaskMode.hidden)


def in_force(
    modes: dict[str, str],
    *,
    kinds: dict[str, str],
    grade: str,
    approved_clear: frozenset[str],
    settings: GatewaySettings,
) -> dict[str, str]:
    """The mode each granted field is read with: as granted, or stricter where the field's
    classification now asks more (a field marked personal after the grant, a grade
    raised, a stricter default). A grant is never loosened without a new approval, and a
    field stays clear only if it is not personal or the provider approved it in clear."""
    found: dict[str, str] = {}
    for name, granted in modes.items():
        now = mode_for(
            pii=kinds.get(name, "other"),
            grade=grade,
            approved_clear=name in approved_clear,
            settings=settings,
        )
        found[name] = max(MaskMode(granted), now, key=STRICTNESS.index).value
    return found


def token_key(secret: bytes, consumer_code: str) -> bytes:
    return hmac.new(secret, f"gateway-token\n{consumer_code}".encode(), hashlib.sha256).digest()


def _plain(value: Any) -> str:
    return value.isoformat() if hasattr(value, "isoformat") else str(value)


def maskers(
    modes: dict[str, str], kinds: dict[str, str], *, key: bytes
) -> list[Callable[[Any], Any] | None]:
    """One function per field, in the order of ``modes``, that shows a value as granted;
    None for a field shown as it is."""
    keyed = hmac.new(key, digestmod=hashlib.sha256)

    def masked_as(kind: str) -> Callable[[Any], Any]:
        return lambda value: None if value is None else mask(_plain(value), kind)

    def token(value: Any) -> Any:
        if value is None:
            return None
        digest = keyed.copy()  # the keyed state once, not a new HMAC per value
        digest.update(_plain(value).encode())
        return digest.hexdigest()[:32]

    chosen: list[Callable[[Any], Any] | None] = []
    for name, mode in modes.items():
        if mode == MaskMode.clear:
            chosen.append(None)
        elif mode == MaskMode.masked:
            chosen.append(masked_as(kinds.get(name, "other")))
        elif mode == MaskMode.token:
            chosen.append(token)
        else:
            raise ValueError(f"field {name} is hidden and is never read")
    return chosen


def apply(
    rows: Iterable[tuple[Any, ...]], functions: list[Callable[[Any], Any] | None]
) -> list[list[Any]]:
    changed = [(index, show) for index, show in enumerate(functions) if show is not None]
    shown = []
    for row in rows:
        values = list(row)
        for index, show in changed:
            values[index] = show(values[index])
        shown.append(values)
    return shown
