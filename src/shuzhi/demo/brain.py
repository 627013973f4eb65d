"""The demo province's brain: its indicators, targets, warning rules and goals, computed over the
loaded lake, forecast where warnings need it, and evaluated into warnings.

Idempotent: definitions are applied (nothing changes the second time); computing,
forecasting and evaluating again over the same snapshots write the same values and no new
warning states."""

from __future__ import annotations

from importlib import resources
from typing import Any

from shuzhi.brain import service
from shuzhi.core.db import Database
from shuzhi.core.permissions import SYSTEM
from shuzhi.core.settings import Settings

# forecast at build time only what the demo's warning rules read (the anomaly rule needs a
# forecast made before the newest month); `shuzhi worker` forecasts the rest
FORECAST = ("childcare_places_per_1000", "pm25")


def _text(name: str) -> str:
    return (resources.files("shuzhi.demo") / "data" / name).read_text("utf-8")


def build(database: Database, *, settings: Settings) -> dict[str, Any]:
    with database.transaction() as session:
        indicators = service.apply(
            session, actor=SYSTEM, text=_text("indicators.yaml"), source="indicators.yaml"
        )
        entries = service.parse_targets(_text("targets.yaml"), source="targets.yaml")
        targets = service.set_targets(
            session, actor=SYSTEM, entries=entries, origin="imported", where="targets.yaml"
        )
        rules = service.apply_rules(
            session, actor=SYSTEM, text=_text("rules.yaml"), source="rules.yaml"
        )
        goals = service.apply_goals(
            session, actor=SYSTEM, text=_text("goals.yaml"), source="goals.yaml"
        )
    run = service.compute(database, actor=SYSTEM, settings=settings, trigger="demo")
    forecasts = service.forecast(
        database, actor=SYSTEM, indicators=FORECAST, origins=2, settings=settings
    )
    warnings = service.evaluate_warnings(database, actor=SYSTEM, settings=settings)
    return {
        "indicators": len(indicators.created + indicators.updated + indicators.unchanged),
        "targets": targets.written,
        "rules": len(rules.created + rules.updated + rules.unchanged),
        "goals": len(goals.created + goals.updated + goals.unchanged),
        "values": run.rows,
        "forecast_series": forecasts.forecast,
        "warnings_firing": warnings.firing,
    }
