"""Indicator SQL, generated once in DuckDB's dialect, run by any compute engine.

Every value of every region and period comes from one query per indicator:

1. each *part* (a count, a sum, a ratio's numerator or denominator) is aggregated per
   finest region and time point from the source's current snapshot;
2. per grain, points are folded into periods: summed, or for a stock (semi-additive) the
   last point of the period taken;
3. periods are rolled up the region tree by joining ``_brain_regions`` (each region with
   itself and every ancestor) and summing, so a city or the province sums its counties'
   numerators and denominators and divides again, never averaging ratios. A distinct
   count is counted again from the rows at each level instead.

Derived indicators are computed afterwards from the values of those they name, at the same
region and period. A source without a current snapshot gives no rows ("no data", never 0);
a zero denominator gives a NULL value, never infinity.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import date, datetime

import pyarrow as pa
import pyarrow.compute as pc

from shuzhi.brain.rules import (
    Additivity,
    Aggregate,
    Grain,
    MeasureKind,
    expression_names,
    parse_expression,
    render_expression,
)
from shuzhi.brain.schemas import Condition, IndicatorSpec, Part
from shuzhi.core.errors import Message, ValidationFailed
from shuzhi.lake.engine import ComputeEngine
from shuzhi.lake.rules import literal, quote

REGIONS_TABLE = "_brain_regions"
VALUES_TABLE = "_brain_values"
NUMERIC = frozenset({"integer", "decimal"})
TEMPORAL = frozenset({"date", "datetime"})
TEXT = frozenset({"string"})

RESULT_SCHEMA = pa.schema(
    [
        ("indicator", pa.string()),
        ("region_code", pa.string()),
        ("grain", pa.string()),
        ("period_start", pa.date32()),
        ("value", pa.float64()),
        ("numerator", pa.float64()),
        ("denominator", pa.float64()),
        ("last_time", pa.date32()),
    ]
)


@dataclass(frozen=True)
class SourceInfo:
    """What computation needs to know of a catalog resource: its fields and their types."""

    code: str
    fields: Mapping[str, str]


# -- validation -------------------------------------------------------------------------------


def validate(
    specs: Mapping[str, IndicatorSpec],
    *,
    sources: Mapping[str, SourceInfo],
    departments: Iterable[str],
) -> None:
    """Refuse, naming it, what references an unknown resource, field, indicator or
    department, a field of the wrong type, or a cycle of derived indicators."""
    known_departments = set(departments)
    for code, spec in specs.items():
        where = Message("indicator {code}", code=code)
        if spec.owner not in known_departments:
            raise ValidationFailed(
                Message("{where}: unknown owner department {owner}", where=where, owner=spec.owner)
            )
        if spec.measure.kind is MeasureKind.derived:
            assert spec.measure.expression is not None
            for name in expression_names(parse_expression(spec.measure.expression)):
                if name not in specs:
                    raise ValidationFailed(
                        Message(
                            "{where}: unknown indicator {name} in the expression",
                            where=where,
                            name=name,
                        )
                    )
            continue
        for source in spec.sources:
            if source not in sources:
                raise ValidationFailed(
                    Message("{where}: unknown resource {source}", where=where, source=source)
                )
        for source in spec.sources:
            fields = sources[source].fields
            _field(where, source, fields, spec.time, TEMPORAL, Message("the time column"))
            _field(where, source, fields, spec.region, TEXT, Message("the region column"))
            _conditions(where, source, fields, spec.where)
        for part in spec.measure.parts():
            source = spec.part_source(part)
            fields = sources[source].fields
            if part.field is not None:
                wanted = NUMERIC if part.agg is Aggregate.sum else None
                role = Message("the {agg} field", agg=part.agg.value, agg_label=part.agg.zh)
                _field(where, source, fields, part.field, wanted, role)
            _conditions(where, source, fields, part.where)
    for code in specs:
        _no_cycle(code, specs, ())


def _field(
    where: str,
    source: str,
    fields: Mapping[str, str],
    name: str | None,
    types: frozenset[str] | None,
    role: str,
) -> str:
    if name is None or name not in fields:
        raise ValidationFailed(
            Message(
                "{where}: resource {source} has no field {name} ({role})",
                where=where,
                source=source,
                name=name,
                role=role,
            )
        )
    if types is not None and fields[name] not in types:
        raise ValidationFailed(
            Message(
                "{where}: {role} {source}.{name} is {fields_item}, not {join}",
                where=where,
                role=role,
                source=source,
                name=name,
                fields_item=fields[name],
                join=_either(sorted(types)),
            )
        )
    return fields[name]


def _either(words: list[str]) -> str:
    """``a or b or c``, each ``or`` said in the reader's language."""
    said = words[0]
    for word in words[1:]:
        said = Message("{either} or {other}", either=said, other=word)
    return said


def _conditions(
    where: str, source: str, fields: Mapping[str, str], conditions: Mapping[str, Condition]
) -> None:
    for name, condition in conditions.items():
        kind = _field(where, source, fields, name, None, Message("a filter"))
        try:
            _condition_sql(quote(name), kind, condition)
        except ValueError as exc:
            raise ValidationFailed(
                Message(
                    "{where}: filter on {source}.{name}: {exc}",
                    where=where,
                    source=source,
                    name=name,
                    exc=str(exc),
                )
            ) from None


def _no_cycle(code: str, specs: Mapping[str, IndicatorSpec], path: tuple[str, ...]) -> None:
    if code in path:
        cycle = " → ".join((*path[path.index(code) :], code))
        raise ValidationFailed(Message("derived indicators form a cycle: {cycle}", cycle=cycle))
    spec = specs.get(code)
    if spec is None or spec.measure.kind is not MeasureKind.derived:
        return
    assert spec.measure.expression is not None
    for name in expression_names(parse_expression(spec.measure.expression)):
        _no_cycle(name, specs, (*path, code))


def dependencies(spec: IndicatorSpec) -> list[str]:
    if spec.measure.kind is not MeasureKind.derived or spec.measure.expression is None:
        return []
    return expression_names(parse_expression(spec.measure.expression))


def layers(specs: Mapping[str, IndicatorSpec]) -> list[list[str]]:
    """Indicators in the order they can be computed: base ones, then derived ones whose
    inputs are done; validation has already refused cycles."""
    done: set[str] = set()
    order: list[list[str]] = []
    remaining = set(specs)
    while remaining:
        ready = sorted(
            code for code in remaining if set(dependencies(specs[code])) & set(specs) <= done
        )
        if not ready:
            raise ValidationFailed(
                Message("derived indicators form a cycle among {sorted}", sorted=sorted(remaining))
            )
        order.append(ready)
        done.update(ready)
        remaining.difference_update(ready)
    return order


# -- SQL ----------------------------------------------------------------------------------------


def _value_sql(kind: str, value: object) -> str:
    if value is None:
        raise ValueError("compare with null using {null: true}")
    if kind in NUMERIC:
        if isinstance(value, bool) or not isinstance(value, int | float):
            try:
                value = float(str(value))
            except ValueError:
                raise ValueError(f"{value!r} is not a number") from None
        return f"CAST({float(value)!r} AS DOUBLE)"
    if kind == "boolean":
        if not isinstance(value, bool):
            raise ValueError(f"{value!r} is not true or false")
        return "TRUE" if value else "FALSE"
    if kind in TEMPORAL:
        if isinstance(value, datetime):
            return f"TIMESTAMP {literal(value.isoformat(sep=' '))}"
        if isinstance(value, date):
            return f"DATE {literal(value.isoformat())}"
        try:
            day = date.fromisoformat(str(value))
        except ValueError:
            raise ValueError(f"{value!r} is not a date (YYYY-MM-DD)") from None
        return f"DATE {literal(day.isoformat())}"
    return literal(str(value))


_COMPARE = {"eq": "=", "ne": "<>", "gt": ">", "gte": ">=", "lt": "<", "lte": "<="}


def _condition_sql(column: str, kind: str, condition: Condition) -> str:
    if isinstance(condition, list):
        condition = {"in": condition}
    elif not isinstance(condition, dict):
        condition = {"eq": condition}
    terms = []
    for op, value in condition.items():
        if op == "null":
            terms.append(f"{column} IS {'' if value else 'NOT '}NULL")
        elif op in ("in", "not_in"):
            values = value if isinstance(value, list) else [value]
            if not values:
                raise ValueError(f"{op} needs at least one value")
            listed = ", ".join(_value_sql(kind, item) for item in values)
            terms.append(f"{column} {'NOT ' if op == 'not_in' else ''}IN ({listed})")
        else:
            terms.append(f"{column} {_COMPARE[op]} {_value_sql(kind, value)}")
    return " AND ".join(terms)


def _where_sql(fields: Mapping[str, str], *conditions: Mapping[str, Condition]) -> str:
    terms = [
        _condition_sql(quote(name), fields[name], condition)
        for where in conditions
        for name, condition in where.items()
    ]
    return " AND ".join(f"({term})" for term in terms) or "TRUE"


def _trunc(grain: Grain, column: str) -> str:
    return f"CAST(date_trunc({literal(grain.value)}, {column}) AS DATE)"


def _part_ctes(index: int, spec: IndicatorSpec, part: Part, fields: Mapping[str, str]) -> list[str]:
    """CTEs ending in ``p<index>``: the part per region (every level), grain and period."""
    source = quote(spec.part_source(part))
    region = f"CAST({quote(spec.region)} AS VARCHAR)"
    time = f"CAST({quote(spec.time or '')} AS DATE)"
    where = _where_sql(fields, spec.where, part.where)
    present = f"{quote(spec.region)} IS NOT NULL AND {quote(spec.time or '')} IS NOT NULL"
    name = f"p{index}"
    if part.agg is Aggregate.count_distinct:
        selects = [
            f"SELECT a.ancestor AS region, {literal(grain.value)} AS grain, "
            f"{_trunc(grain, 's.t')} AS period_start, "
            f"CAST(count(DISTINCT s.x) AS DOUBLE) AS x, max(s.t) AS last_time "
            f"FROM {name}_rows s JOIN {REGIONS_TABLE} a ON a.code = s.region "
            f"GROUP BY a.ancestor, {_trunc(grain, 's.t')}"
            for grain in spec.grains
        ]
        counted = quote(part.field or "")
        return [
            f"{name}_rows AS (SELECT {region} AS region, {time} AS t, {counted} AS x"
            f" FROM {source} WHERE {present} AND {where})",
            f"{name} AS ({' UNION ALL '.join(selects)})",
        ]
    if part.agg is Aggregate.sum:
        measure = f"sum(CAST({quote(part.field or '')} AS DOUBLE))"
    elif part.field is not None:
        measure = f"CAST(count({quote(part.field)}) AS DOUBLE)"
    else:
        measure = "CAST(count(*) AS DOUBLE)"
    stock = spec.additivity is Additivity.semi_additive
    fold = "arg_max(x, t)" if stock else "sum(x)"
    periods = [
        f"SELECT region, {literal(grain.value)} AS grain, {_trunc(grain, 't')} AS period_start, "
        f"{fold} AS x, max(t) AS last_time FROM {name}_points "
        f"GROUP BY region, {_trunc(grain, 't')}"
        for grain in spec.grains
    ]
    return [
        f"{name}_points AS (SELECT {region} AS region, {time} AS t, {measure} AS x"
        f" FROM {source} WHERE {present} AND {where} GROUP BY {region}, {time})",
        f"{name}_leaf AS ({' UNION ALL '.join(periods)})",
        f"{name} AS (SELECT a.ancestor AS region, l.grain, l.period_start, sum(l.x) AS x,"
        f" max(l.last_time) AS last_time FROM {name}_leaf l"
        f" JOIN {REGIONS_TABLE} a ON a.code = l.region"
        f" GROUP BY a.ancestor, l.grain, l.period_start)",
    ]


def _later(left: str, right: str) -> str:
    """The later of two dates, either of which may be NULL."""
    return f"CASE WHEN {left} IS NULL OR {right} > {left} THEN {right} ELSE {left} END"


def indicator_sql(spec: IndicatorSpec, sources: Mapping[str, SourceInfo]) -> str:
    """The query of a base indicator: one row per region, grain and period with data."""
    parts = spec.measure.parts()
    ctes: list[str] = []
    for index, part in enumerate(parts):
        ctes.extend(_part_ctes(index, spec, part, sources[spec.part_source(part)].fields))
    code = literal(spec.code)
    if len(parts) == 1:
        select = (
            f"SELECT {code} AS indicator, region AS region_code, grain, period_start, "
            "x AS value, x AS numerator, CAST(NULL AS DOUBLE) AS denominator, last_time FROM p0"
        )
        return f"WITH {', '.join(ctes)} {select}"
    # a numerator counting rows of the denominator's source: a period with rows but none
    # passing the numerator's filter has a numerator of 0 (no case closed late). A summed
    # numerator without a row was not reported: the value is unknown.
    counted = parts[0].agg is Aggregate.count
    shared = spec.part_source(parts[0]) == spec.part_source(parts[1])
    numerator = "COALESCE(n.x, CAST(0 AS DOUBLE))" if counted and shared else "n.x"
    scale = f"CAST({float(spec.measure.scale)!r} AS DOUBLE)"
    if any(part.agg is Aggregate.count_distinct for part in parts):
        # distinct counts are counted at every level already: divide level by level
        select = (
            f"SELECT {code} AS indicator, d.region AS region_code, d.grain, d.period_start, "
            f"{numerator} / NULLIF(d.x, 0) * {scale} AS value, {numerator} AS numerator, "
            f"d.x AS denominator, {_later('n.last_time', 'd.last_time')} AS last_time "
            "FROM p1 d LEFT JOIN p0 n ON n.region = d.region AND n.grain = d.grain "
            "AND n.period_start = d.period_start"
        )
        return f"WITH {', '.join(ctes)} {select}"
    # numerator and denominator are paired in each finest region first, and only the pairs
    # whose numerator is known are summed up the tree: a county that reported its cases
    # but not how many were on time counts in neither, rather than as none on time
    ctes.append(
        f"pairs AS (SELECT d.region, d.grain, d.period_start, {numerator} AS n, d.x AS d, "
        f"{_later('n.last_time', 'd.last_time')} AS last_time "
        "FROM p1_leaf d LEFT JOIN p0_leaf n ON n.region = d.region AND n.grain = d.grain "
        "AND n.period_start = d.period_start)"
    )
    ctes.append(
        "rolled AS (SELECT a.ancestor AS region, p.grain, p.period_start, "
        "sum(p.n) AS n, sum(CASE WHEN p.n IS NOT NULL THEN p.d END) AS d, "
        "max(p.last_time) AS last_time FROM pairs p "
        f"JOIN {REGIONS_TABLE} a ON a.code = p.region "
        "GROUP BY a.ancestor, p.grain, p.period_start)"
    )
    select = (
        f"SELECT {code} AS indicator, region AS region_code, grain, period_start, "
        f"n / NULLIF(d, 0) * {scale} AS value, n AS numerator, d AS denominator, last_time "
        "FROM rolled"
    )
    return f"WITH {', '.join(ctes)} {select}"


def derived_sql(spec: IndicatorSpec) -> str:
    """A derived indicator over ``_brain_values``: its expression at each region and period
    where every indicator it names has a row."""
    assert spec.measure.expression is not None
    tree = parse_expression(spec.measure.expression)
    names = expression_names(tree)
    pivots = ", ".join(
        f"max(CASE WHEN indicator = {literal(name)} THEN value END) AS {quote('v_' + name)}, "
        f"count(CASE WHEN indicator = {literal(name)} THEN 1 END) AS {quote('n_' + name)}"
        for name in names
    )
    listed = ", ".join(literal(name) for name in names)
    grains = ", ".join(literal(grain.value) for grain in spec.grains)
    every = " AND ".join(f"{quote('n_' + name)} > 0" for name in names)
    value = render_expression(tree, lambda name: quote("v_" + name))
    return (
        f"WITH v AS (SELECT region_code, grain, period_start, {pivots}, "
        f"max(last_time) AS last_time FROM {VALUES_TABLE} "
        f"WHERE indicator IN ({listed}) AND grain IN ({grains}) "
        "GROUP BY region_code, grain, period_start) "
        f"SELECT {literal(spec.code)} AS indicator, region_code, grain, period_start, "
        f"{value} AS value, CAST(NULL AS DOUBLE) AS numerator, "
        f"CAST(NULL AS DOUBLE) AS denominator, last_time FROM v WHERE {every}"
    )


def regions_table(paths: Iterable[str]) -> pa.Table:
    """Each region with itself and each ancestor, from the tree's slash-ended paths."""
    codes: list[str] = []
    ancestors: list[str] = []
    for path in paths:
        chain = [code for code in path.split("/") if code]
        for ancestor in chain:
            codes.append(chain[-1])
            ancestors.append(ancestor)
    return pa.table({"code": codes, "ancestor": ancestors})


def conform(table: pa.Table) -> pa.Table:
    """The result schema, whatever integer, decimal or timestamp types an engine returned."""
    return pa.table(
        [table.column(field.name).cast(field.type) for field in RESULT_SCHEMA],
        schema=RESULT_SCHEMA,
    )


def compute(
    engine: ComputeEngine,
    specs: Mapping[str, IndicatorSpec],
    *,
    sources: Mapping[str, SourceInfo],
    regions: pa.Table,
    wanted: Iterable[str] | None = None,
    known: pa.Table | None = None,
) -> pa.Table:
    """Values of the ``wanted`` indicators (all if None). ``known`` holds values already
    computed that derived indicators may read (those of indicators not recomputed)."""
    codes = set(specs) if wanted is None else set(wanted)
    engine.register(REGIONS_TABLE, regions)
    loaded = set(engine.read)
    results: list[pa.Table] = []
    values = conform(known) if known is not None else RESULT_SCHEMA.empty_table()
    values = values.filter(pc.invert(pc.is_in(values["indicator"], pa.array(sorted(codes)))))
    for layer in layers(specs):
        derived = []
        for code in layer:
            if code not in codes:
                continue
            spec = specs[code]
            if spec.measure.kind is MeasureKind.derived:
                derived.append(code)
                continue
            if not set(spec.sources) <= loaded:
                continue  # a source never loaded: no data, not zero
            results.append(conform(engine.run(indicator_sql(spec, sources))))
        if derived:
            engine.register(VALUES_TABLE, pa.concat_tables([values, *results]))
            for code in derived:
                results.append(conform(engine.run(derived_sql(specs[code]))))
    return pa.concat_tables(results) if results else RESULT_SCHEMA.empty_table()
