"""Synthetic source files for the demo province: what each department sends to the lake.

``write_sources`` writes one file per demo resource, the way departments really deliver them:
most as UTF-8 CSV, the population register as GBK CSV from an older system, two as CSV with a
byte-order mark (Excel's "CSV UTF-8"), the enterprise register as an Excel workbook, the hotline
as JSON Lines and the scenic-area feed as a JSON array. Most files head their columns with the
Chinese field titles; the ones fed by systems and interfaces use the field names.

Values are realistic and agree across files: citizen IDs (GB 11643) and credit codes (GB 32100)
carry correct check characters, the people of the population register and the enterprises of
the enterprise register reappear in the other departments' files, region codes come from the
shipped Zhejiang table, numbers and categories follow each field's declared rules. One row in
fifty carries one defect that ingestion validation must catch (a wrong check character, a
malformed mobile, an unknown region, an impossible date, a missing value, a value outside the
rules), and a few files repeat a row exactly.

Deterministic: every resource draws from generators seeded by (seed, resource code), and the
shared registers from their own seeds, so a file's bytes depend only on the seed, the scale and
``as_of``, never on which other files are written or in what order.
"""

from __future__ import annotations

import calendar
import csv
import io
import json
import math
import random
import re
import zipfile
from bisect import bisect, bisect_left
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from functools import cached_property
from importlib import resources
from itertools import accumulate, pairwise
from pathlib import Path
from typing import Any, NamedTuple

import yaml
from faker import Faker
from openpyxl import Workbook

from shuzhi.catalog.rules import FieldFormat, FieldType
from shuzhi.catalog.schemas import FieldSpec, ResourceCreate
from shuzhi.catalog.service import parse_file
from shuzhi.core.standards import CREDIT_CODE_CHARS, citizen_id_check, credit_code_check
from shuzhi.regions.service import builtin_csv

# The last day the demo's data reaches; fixed, so that the same seed writes the same bytes.
AS_OF = date(2026, 10, 31)
DEFAULT_SEED = 2350  # the demo build's default seed
# one row in every DEFECT_EVERY, at a random place within each block, carries a defect
DEFECT_EVERY = 50

Row = dict[str, Any]


def _words(text: str) -> tuple[str, ...]:
    """A vocabulary written the Chinese way, 、 between the words."""
    return tuple(text.split("、"))


@dataclass(frozen=True)
class SourceFile:
    resource_code: str
    path: Path
    format: str  # csv, xlsx, jsonl or json
    rows: int  # data rows written, defective and repeated ones included


@dataclass(frozen=True)
class Layout:
    format: str = "csv"  # csv, xlsx, jsonl, json
    encoding: str = "utf-8"  # of CSV: utf-8, utf-8-sig (with a byte-order mark) or gbk
    headers: str = "title"  # title: the Chinese field titles; name: the field names


@dataclass(frozen=True)
class _Source:
    code: str
    rows: int  # at scale 1.0
    layout: Layout
    duplicates: int
    generate: Callable[[_Draw, int], Iterator[Row]]


SOURCES: dict[str, _Source] = {}


def _source(
    code: str, rows: int, layout: Layout | None = None, *, duplicates: int = 0
) -> Callable[[Callable[[_Draw, int], Iterator[Row]]], Callable[[_Draw, int], Iterator[Row]]]:
    def register(
        generate: Callable[[_Draw, int], Iterator[Row]],
    ) -> Callable[[_Draw, int], Iterator[Row]]:
        SOURCES[code] = _Source(code, rows, layout or Layout(), duplicates, generate)
        return generate

    return register


def layout(code: str) -> Layout:
    """How the demo department of ``code`` delivers its file."""
    return SOURCES[code].layout


def write_sources(
    directory: Path,
    *,
    seed: int = DEFAULT_SEED,
    scale: float = 1.0,
    codes: Iterable[str] | None = None,
    as_of: date = AS_OF,
) -> list[SourceFile]:
    """Write a source file for every demo resource (or those of ``codes``) into ``directory``.

    The demo build decides which resources end up published; pass their codes to write only
    those. ``scale`` multiplies the row counts (1.0: about 150,000 rows in all).
    """
    if scale <= 0:
        raise ValueError("scale must be positive")
    specs = {resource.code: resource for resource in demo_resources() if resource.fields}
    wanted = list(specs) if codes is None else list(dict.fromkeys(codes))
    unknown = sorted(set(wanted) - set(specs))
    if unknown:
        raise ValueError(f"not demo resources with fields: {', '.join(unknown)}")
    directory.mkdir(parents=True, exist_ok=True)
    world = _World(seed=seed, scale=scale, as_of=as_of)
    written = []
    for code in wanted:
        source = SOURCES.get(code)
        if source is None:
            continue
        written.append(_write(world, specs[code], source, directory))
    return written


def demo_resources() -> list[ResourceCreate]:
    text = (resources.files("shuzhi.demo") / "data" / "resources.yaml").read_text("utf-8")
    return parse_file(text, source="resources.yaml")


# ---------------------------------------------------------------------------------------------
# writing


def _write(world: _World, spec: ResourceCreate, source: _Source, directory: Path) -> SourceFile:
    form = source.layout
    path = directory / f"{spec.code}.{form.format}"
    fields = spec.fields
    names = [field.name for field in fields]
    headers = names if form.headers == "name" else [field.title or field.name for field in fields]
    wanted = _rows(world, source.rows)
    draw = _Draw(world, spec.code)
    spoiler = _Spoiler(random.Random(f"{world.seed}:{spec.code}:defects"), fields)
    repeat_at = set(spoiler.rng.sample(range(wanted), min(source.duplicates, wanted)))
    count = 0
    defect_at = -1
    with _sink(path, form, headers, spec.name) as emit:
        for index, row in enumerate(source.generate(draw, wanted)):
            if index % DEFECT_EVERY == 0:
                defect_at = index + spoiler.rng.randrange(DEFECT_EVERY)
            spoiled = index == defect_at
            if spoiled:
                row = spoiler.spoil(row)
            cells = [row.get(name) for name in names]
            emit(cells)
            count += 1
            if index in repeat_at and not spoiled:
                emit(cells)
                count += 1
    return SourceFile(spec.code, path, form.format, count)


def _rows(world: _World, base: int) -> int:
    return max(5, round(base * world.scale))


def _text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, datetime):
        return value.strftime("%Y-%m-%d %H:%M:%S")
    if isinstance(value, date):
        return value.isoformat()
    return str(value)


def _json(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.strftime("%Y-%m-%d %H:%M:%S")
    if isinstance(value, date):
        return value.isoformat()
    return value


def _cell(value: Any) -> Any:
    if isinstance(value, bool | date | datetime):
        return _text(value)
    return value


@contextmanager
def _sink(
    path: Path, form: Layout, headers: list[str], title: str
) -> Iterator[Callable[[list[Any]], None]]:
    if form.format == "csv":
        with path.open("w", encoding=form.encoding, newline="") as handle:
            writer = csv.writer(handle)
            writer.writerow(headers)
            yield lambda cells: writer.writerow([_text(cell) for cell in cells])
    elif form.format == "jsonl":
        with path.open("w", encoding="utf-8", newline="\n") as handle:

            def line(cells: list[Any]) -> None:
                record = dict(zip(headers, map(_json, cells), strict=True))
                handle.write(json.dumps(record, ensure_ascii=False) + "\n")

            yield line
    elif form.format == "json":
        with path.open("w", encoding="utf-8", newline="\n") as handle:
            handle.write("[")
            separator = "\n"

            def item(cells: list[Any]) -> None:
                nonlocal separator
                record = dict(zip(headers, map(_json, cells), strict=True))
                handle.write(separator + json.dumps(record, ensure_ascii=False))
                separator = ",\n"

            yield item
            handle.write("\n]\n")
    elif form.format == "xlsx":
        workbook = Workbook(write_only=True)
        sheet = workbook.create_sheet(title=re.sub(r"[\[\]:*?/\\]", "", title)[:31] or "Sheet1")
        sheet.append(headers)
        yield lambda cells: sheet.append([_cell(cell) for cell in cells])
        buffer = io.BytesIO()
        workbook.save(buffer)
        path.write_bytes(_fixed_zip(buffer.getvalue()))
    else:
        raise ValueError(f"unknown source format {form.format}")


def _fixed_zip(data: bytes) -> bytes:
    """The workbook with its save time and the archive's member times made constant.

    openpyxl stamps the save time into docProps/core.xml and every zip member; without this
    the same seed would not give the same bytes.
    """
    out = io.BytesIO()
    with zipfile.ZipFile(io.BytesIO(data)) as source, zipfile.ZipFile(out, "w") as target:
        for info in source.infolist():
            content = source.read(info)
            if info.filename == "docProps/core.xml":
                content = re.sub(
                    rb"(<dcterms:(?:created|modified)[^>]*>)[^<]*",
                    rb"\g<1>2026-01-01T00:00:00Z",
                    content,
                )
            member = zipfile.ZipInfo(info.filename, date_time=(1980, 1, 1, 0, 0, 0))
            member.compress_type = zipfile.ZIP_DEFLATED
            target.writestr(member, content)
    return out.getvalue()


# ---------------------------------------------------------------------------------------------
# defects


BAD_REGIONS = ("339999", "330199", "331199")
BAD_DATES = ("2025-02-30", "2024-13-01", "2025/06/31", "待补录", "0000-00-00")
BAD_MOMENTS = ("2025-02-30 10:15:00", "2024-06-31 08:00:00", "2025-13-05 12:00:00", "未知")
BAD_NUMBERS = ("—", "N/A", "约200", "12万")
# how often each kind of defect is chosen, among those a row's fields allow
DEFECT_WEIGHTS = {"check": 4, "mobile": 3, "email": 2, "region": 2, "date": 2, "datetime": 2}
DEFECT_WEIGHTS |= {"number": 1, "missing": 2, "range": 2, "enum": 2, "pattern": 1}


class _Spoiler:
    """Gives a row one defect of a kind its resource's declared checks will catch."""

    def __init__(self, rng: random.Random, fields: list[FieldSpec]) -> None:
        self.rng = rng
        self.fields = fields

    def spoil(self, row: Row) -> Row:
        # the kind of defect first, then a field it fits, so that a table of many required
        # columns does not get mostly missing values
        fits: dict[str, list[FieldSpec]] = {}
        for field in self.fields:
            present = row.get(field.name) not in (None, "")
            for kind in self._kinds(field, present):
                fits.setdefault(kind, []).append(field)
        if not fits:
            return row
        kinds = sorted(fits)
        kind = self.rng.choices(kinds, weights=[DEFECT_WEIGHTS[kind] for kind in kinds])[0]
        field = self.rng.choice(fits[kind])
        row = dict(row)
        row[field.name] = self._bad(field, kind, row.get(field.name))
        return row

    @staticmethod
    def _kinds(field: FieldSpec, present: bool) -> Iterator[str]:
        if field.format in (FieldFormat.citizen_id, FieldFormat.credit_code) and present:
            yield "check"
        elif field.format is FieldFormat.mobile and present:
            yield "mobile"
        elif field.format is FieldFormat.email and present:
            yield "email"
        elif field.format is FieldFormat.region_code:
            yield "region"
        if field.type is FieldType.date:
            yield "date"
        elif field.type is FieldType.datetime:
            yield "datetime"
        elif field.type in (FieldType.integer, FieldType.decimal):
            yield "number"
        if not field.nullable:
            yield "missing"
        rules = field.rules
        if rules and (rules.min is not None or rules.max is not None):
            yield "range"
        if rules and rules.values:
            yield "enum"
        if rules and rules.pattern and present:
            yield "pattern"

    def _bad(self, field: FieldSpec, kind: str, value: Any) -> Any:
        rng = self.rng
        if kind == "check":
            alphabet = (
                "0123456789X" if field.format is FieldFormat.citizen_id else CREDIT_CODE_CHARS
            )
            return value[:-1] + rng.choice([char for char in alphabet if char != value[-1]])
        if kind == "mobile":
            return rng.choice([value[:-1], "12" + value[2:], value[:3] + "-" + value[3:]])
        if kind == "email":
            return value.replace("@", rng.choice(["#", " at ", ""]))
        if kind == "region":
            return rng.choice(BAD_REGIONS)
        if kind == "date":
            return rng.choice(BAD_DATES)
        if kind == "datetime":
            return rng.choice(BAD_MOMENTS)
        if kind == "number":
            return rng.choice(BAD_NUMBERS)
        if kind == "missing":
            return None
        if kind == "range":
            rules = field.rules
            assert rules is not None
            integer = field.type is FieldType.integer
            if rules.min is not None and (rules.max is None or rng.random() < 0.7):
                below = rules.min - (rng.randint(1, 50) if integer else rng.uniform(0.5, 50))
                return int(below) if integer else round(below, 2)
            assert rules.max is not None
            above = rules.max + (rng.randint(1, 500) if integer else rng.uniform(1, 500))
            return int(above) if integer else round(above, 2)
        if kind == "enum":
            allowed = set(field.rules.values or ()) if field.rules else set()
            return next(word for word in ("未知", "其他", "待定", "—") if word not in allowed)
        if kind == "pattern":
            return value[1:]
        raise AssertionError(kind)


# ---------------------------------------------------------------------------------------------
# the world the files describe: regions, people, enterprises


class County(NamedTuple):
    code: str
    name: str
    city_code: str
    city: str
    weight: float

    @property
    def full(self) -> str:
        """As departments name themselves: 杭州市西湖区, but 桐庐县 and 义乌市."""
        return self.city + self.name if self.name.endswith("区") else self.name

    @property
    def short(self) -> str:
        name = self.name.removesuffix("畲族自治县")
        return name[:-1] if len(name) > 2 and name[-1] in "区县市" else name


class Person(NamedTuple):
    id_card: str
    name: str
    gender: str  # 男 or 女
    birth: date
    county: County


class Enterprise(NamedTuple):
    credit_code: str
    name: str
    kind: str
    county: County
    established: date
    industry: str
    capital: float | None
    status: str
    representative: str


# the relative size of each city, for people and economic weight
CITY_WEIGHT = {
    "杭州市": 1.9,
    "宁波市": 1.6,
    "温州市": 1.3,
    "嘉兴市": 1.0,
    "湖州市": 0.8,
    "绍兴市": 1.0,
    "金华市": 1.1,
    "衢州市": 0.6,
    "舟山市": 0.45,
    "台州市": 1.0,
    "丽水市": 0.5,
}
CITY_ABBREVIATION = {
    "杭州市": "杭",
    "宁波市": "甬",
    "温州市": "温",
    "嘉兴市": "嘉",
    "湖州市": "湖",
    "绍兴市": "绍",
    "金华市": "金",
    "衢州市": "衢",
    "舟山市": "舟",
    "台州市": "台",
    "丽水市": "丽",
}

# people per year of age, 0 to 99, in bands: a greying province with a birth-rate decline
AGE_WEIGHTS = [
    weight
    for band, weight in (
        (5, 0.75),
        (5, 1.0),
        (10, 0.95),
        (10, 1.05),
        (10, 1.35),
        (10, 1.25),
        (10, 1.45),
        (10, 1.1),
        (10, 0.6),
        (10, 0.25),
        (10, 0.04),
    )
    for _ in range(band)
]
AGE_CUMULATIVE = list(accumulate(AGE_WEIGHTS))
MOBILE_PREFIXES = _words(
    "130、131、132、133、135、136、137、138、139、150、151、152、153、155、156、157、158、159、"
    "166、173、175、176、177、178、180、181、182、183、185、186、187、188、189、191、195、198、199"
)
MAIL_DOMAINS = ("163.com", "qq.com", "126.com", "sina.com", "aliyun.com", "foxmail.com")
BRAND_CHARS = "恒盛华达鑫瑞博创新源联信诚泰佳宏祥汇润嘉晟卓越通天众远航"
BRAND_CHARS += "中正合宇景峰德康和丰安兴裕凯豪宝力美优智启明"
PLACE_FIRST = "新东西南北长安白石桥湖塘溪山龙凤金梅柳桃清云上下大小青黄横双"
PLACE_SECOND = "塘桥溪岭湾浦港山坑田埠头墩口庄洋岙岸林"
ORG_CODE_WEIGHTS = (3, 7, 9, 10, 5, 8, 4, 2)

INDUSTRIES: dict[str, tuple[float, tuple[str, ...], tuple[str, ...]]] = {
    # section: weight, GB/T 4754 classes, what such a company calls itself
    "C": (
        0.28,
        _words(
            "C1320、C1713、C1810、C2438、C2614、C2927、C3130、C3311、C3484、C3512、C3670、C3811、"
            "C3874、C3912、C3981、C3990、C4011"
        ),
        ("制造", "机械", "电子", "纺织", "新材料", "电器", "五金"),
    ),
    "F": (
        0.25,
        ("F5124", "F5137", "F5163", "F5191", "F5212", "F5261", "F5274", "F5292"),
        ("贸易", "商贸", "电子商务", "进出口"),
    ),
    "I": (
        0.08,
        ("I6410", "I6432", "I6510", "I6513", "I6531", "I6550"),
        ("网络科技", "信息技术", "软件", "数据科技"),
    ),
    "E": (0.06, ("E4710", "E4811", "E4990"), ("建设工程", "建筑", "装饰工程")),
    "L": (
        0.12,
        ("L7211", "L7212", "L7281", "L7299"),
        ("企业管理", "文化传媒", "供应链管理", "人力资源"),
    ),
    "M": (0.08, ("M7320", "M7491", "M7520"), ("科技", "检测技术", "工程设计")),
    "H": (0.05, ("H6110", "H6210", "H6220"), ("餐饮管理", "酒店管理")),
    "G": (0.04, ("G5430", "G5821"), ("物流", "运输")),
    "K": (0.02, ("K7010", "K7020"), ("房地产开发", "物业服务")),
    "A": (0.02, ("A0111", "A0141", "A0412"), ("农业开发", "生态农业")),
}
ENTERPRISE_KINDS = {
    "有限责任公司（自然人投资或控股）": 0.55,
    "有限责任公司（自然人独资）": 0.18,
    "其他有限责任公司": 0.05,
    "股份有限公司（非上市、自然人投资或控股）": 0.03,
    "合伙企业": 0.04,
    "个人独资企业": 0.08,
    "农民专业合作社": 0.04,
    "有限责任公司（外商投资、非独资）": 0.03,
}
ETHNICITIES = {"汉族": 0.985, "畲族": 0.004, "土家族": 0.003, "苗族": 0.003, "回族": 0.002}
ETHNICITIES |= {"布依族": 0.001, "壮族": 0.001, "侗族": 0.001}


class _World:
    """What several files share: counties, the population, the enterprises, party bodies."""

    def __init__(self, *, seed: int, scale: float, as_of: date) -> None:
        self.seed = seed
        self.scale = scale
        self.as_of = as_of
        rng = random.Random(f"{seed}:counties")
        with builtin_csv().open(encoding="utf-8", newline="") as handle:
            table = list(csv.DictReader(handle))
        cities = {row["code"]: row["name"] for row in table if row["level"] == "city"}
        self.counties = [
            County(
                code=row["code"],
                name=row["name"],
                city_code=row["parent"],
                city=cities[row["parent"]],
                weight=CITY_WEIGHT.get(cities[row["parent"]], 1.0)
                * (1.5 if row["name"].endswith("区") else 1.0)
                * rng.lognormvariate(0, 0.35),
            )
            for row in table
            if row["level"] == "county"
        ]
        self.cumulative = list(accumulate(county.weight for county in self.counties))
        self.cities = sorted({(c.city_code, c.city) for c in self.counties})

    def county(self, rng: random.Random, city: str | None = None) -> County:
        if city is not None:
            within = [c for c in self.counties if c.city_code == city]
            return rng.choices(within, weights=[c.weight for c in within])[0]
        return self.counties[bisect(self.cumulative, rng.random() * self.cumulative[-1])]

    def mean_weight(self) -> float:
        return self.cumulative[-1] / len(self.counties)

    @cached_property
    def people(self) -> list[Person]:
        """The population register; other departments' files name these people."""
        draw = _Draw(self, "people")
        count = _rows(self, SOURCES["gat_resident_population"].rows)
        seen: set[str] = set()
        people = []
        while len(people) < count:
            person = draw.new_person()
            if person.id_card not in seen:
                seen.add(person.id_card)
                people.append(person)
        return people

    @cached_property
    def enterprises(self) -> list[Enterprise]:
        """The enterprise register; other departments' files name these enterprises."""
        draw = _Draw(self, "enterprises")
        count = _rows(self, SOURCES["scjgj_enterprise_registration"].rows)
        codes: set[str] = set()
        names: set[str] = set()
        sections = list(INDUSTRIES)
        section_weights = [INDUSTRIES[s][0] for s in sections]
        kinds = list(ENTERPRISE_KINDS)
        kind_weights = list(ENTERPRISE_KINDS.values())
        rng = draw.rng
        made = []
        while len(made) < count:
            county = self.county(rng)
            kind = rng.choices(kinds, weights=kind_weights)[0]
            section = "A" if kind == "农民专业合作社" else rng.choices(sections, section_weights)[0]
            industry = rng.choice(INDUSTRIES[section][1])
            years = min(int(rng.expovariate(1 / 7)), 35)
            established = draw.day_in_year(self.as_of.year - years)
            credit_code = draw.credit_code(
                "93" if kind == "农民专业合作社" else "91", county, established.year >= 2015
            )
            name = draw.enterprise_name(county, kind, section)
            if credit_code in codes or name in names:
                continue
            codes.add(credit_code)
            names.add(name)
            gone = min(0.6, years * 0.012)
            status = rng.choices(
                ["存续", "注销", "吊销", "迁出"], [1 - gone, gone * 0.65, 0.3 * gone, 0.05 * gone]
            )[0]
            capital = None if rng.random() < 0.02 else draw.capital(kind)
            representative = draw.name(rng.choice("男男男女"))
            made.append(
                Enterprise(
                    credit_code,
                    name,
                    kind,
                    county,
                    established,
                    industry,
                    capital,
                    status,
                    representative,
                )
            )
        return made

    @cached_property
    def party_organizations(self) -> list[tuple[str, str, str, County]]:
        """(code, type, parent code, county) of the grassroots party bodies."""
        draw = _Draw(self, "party")
        rng = draw.rng
        count = _rows(self, SOURCES["zzb_party_organization"].rows)
        bodies: list[tuple[str, str, str, County]] = []
        serial = Counter()
        for index in range(count):
            parents = [body for body in bodies[-30:] if body[1] != "党支部"]
            if index % 12 == 0 or not parents:
                kind, parent, county = "党委", "", self.county(rng)
            else:
                kind = "党总支" if rng.random() < 0.25 else "党支部"
                upper = rng.choice(parents)
                parent, county = upper[0], upper[3]
            serial[county.code] += 1
            bodies.append((f"D{county.code}{serial[county.code]:05d}", kind, parent, county))
        return bodies

    @cached_property
    def departments(self) -> list[dict[str, Any]]:
        text = (resources.files("shuzhi.demo") / "data" / "departments.yaml").read_text("utf-8")
        return yaml.safe_load(text)["departments"]


class _Draw:
    """One resource's random sources, and the helpers its rows are made with."""

    def __init__(self, world: _World, key: str) -> None:
        self.world = world
        self.as_of = world.as_of
        self.rng = random.Random(f"{world.seed}:{key}")
        self.fake = Faker("zh_CN")
        self.fake.seed_instance(f"{world.seed}:{key}")

    # --- places and time

    def county(self, city: str | None = None) -> County:
        return self.world.county(self.rng, city)

    def place(self) -> str:
        return self.rng.choice(PLACE_FIRST) + self.rng.choice(PLACE_SECOND)

    def address(self, county: County, *, home: bool = False) -> str:
        rng = self.rng
        street = f"{self.fake.street_name()}{rng.randint(1, 999)}号"
        if home and rng.random() < 0.3:
            town = self.place() + rng.choice(("镇", "乡", "街道"))
            return f"浙江省{county.city}{county.name}{town}{self.place()}村{rng.randint(1, 300)}号"
        if home:
            room = f"{rng.randint(1, 32)}{rng.randint(1, 4):02d}"
            street += f"{rng.randint(1, 40)}幢{rng.randint(1, 4)}单元{room}室"
        return f"浙江省{county.city}{county.name}{street}"

    def day(self, start: date, end: date) -> date:
        return start + timedelta(days=self.rng.randrange((end - start).days + 1))

    def day_in_year(self, year: int) -> date:
        start = date(year, 1, 1)
        return self.day(start, min(date(year, 12, 31), self.as_of))

    def days_back(self, most: int, least: int = 0) -> date:
        return self.as_of - timedelta(days=self.rng.randint(least, most))

    def moment(self, day: date, hours: tuple[int, int] = (0, 23)) -> datetime:
        rng = self.rng
        return datetime.combine(
            day, time(rng.randint(*hours), rng.randrange(60), rng.randrange(60))
        )

    def months(self, count: int) -> list[date]:
        """The ``count`` months up to the last full one before ``as_of``, first days."""
        year, month = self.as_of.year, self.as_of.month
        out = []
        for _ in range(count):
            month -= 1
            if month == 0:
                year, month = year - 1, 12
            out.append(date(year, month, 1))
        return out[::-1]

    # --- people

    def name(self, gender: str) -> str:
        fake = self.fake
        return fake.last_name() + (
            fake.first_name_male() if gender == "男" else fake.first_name_female()
        )

    def new_person(self, *, min_age: int = 0, max_age: int = 99) -> Person:
        rng = self.rng
        years = bisect(AGE_CUMULATIVE, rng.random() * AGE_CUMULATIVE[-1])
        if not min_age <= years <= max_age:
            years = rng.randint(min_age, max_age)
        birth = self.as_of - timedelta(days=int((years + rng.random()) * 365.2425))
        gender = rng.choice("男女")
        county = self.county()
        return Person(
            citizen_id(rng, county.code, birth, gender), self.name(gender), gender, birth, county
        )

    def person(self, *, min_age: int = 0, max_age: int = 120, gender: str | None = None) -> Person:
        """Someone from the population register, drawn at random."""
        people = self.world.people
        for _ in range(200):
            person = self.rng.choice(people)
            fits = min_age <= age(person.birth, self.as_of) <= max_age
            if fits and gender in (None, person.gender):
                return person
        return self.new_person(min_age=min_age, max_age=max_age)

    def distinct_people(self, *, min_age: int = 0, max_age: int = 120) -> Iterator[Person]:
        """Registered people in random order, each once; then new ones if they run out."""
        eligible = [p for p in self.world.people if min_age <= age(p.birth, self.as_of) <= max_age]
        self.rng.shuffle(eligible)
        seen = {p.id_card for p in eligible}
        yield from eligible
        while True:
            person = self.new_person(min_age=min_age, max_age=max_age)
            if person.id_card not in seen:
                seen.add(person.id_card)
                yield person

    def mobile(self) -> str:
        return self.rng.choice(MOBILE_PREFIXES) + f"{self.rng.randrange(10**8):08d}"

    def email(self) -> str:
        user = self.fake.user_name()
        if self.rng.random() < 0.4:
            user += str(self.rng.randint(1, 999))
        return f"{user}@{self.rng.choice(MAIL_DOMAINS)}"

    # --- organisations

    def enterprise(self, sections: str | None = None, county: County | None = None) -> Enterprise:
        """An enterprise of the register, of those industry sections or that county if it can."""
        pool = self.world.enterprises
        for _ in range(200):
            found = self.rng.choice(pool)
            fits = sections is None or found.industry[0] in sections
            if fits and county in (None, found.county):
                return found
        return self.rng.choice(pool)

    def credit_code(self, kind: str, county: County, recent: bool = True) -> str:
        rng = self.rng
        if recent:
            body = "MA" + "".join(rng.choice(CREDIT_CODE_CHARS) for _ in range(6))
        else:
            body = f"{rng.randrange(10**8):08d}"
        total = sum(
            (int(char) if char.isdigit() else ord(char) - 55) * weight
            for char, weight in zip(body, ORG_CODE_WEIGHTS, strict=True)
        )
        check = 11 - total % 11
        first17 = kind + county.code + body + ("X" if check == 10 else str(check % 11))
        return first17 + credit_code_check(first17)

    def brand(self) -> str:
        if self.rng.random() < 0.3:
            prefix = self.fake.company_prefix()
            if not re.search("公司|软件|科技|网络|信息|传媒", prefix) and len(prefix) <= 4:
                return prefix
        return self.rng.choice(BRAND_CHARS) + self.rng.choice(BRAND_CHARS)

    def enterprise_name(self, county: County, kind: str, section: str) -> str:
        rng = self.rng
        place = rng.choices(["浙江", county.city[:-1], county.full], [0.25, 0.5, 0.25])[0]
        trade = rng.choice(INDUSTRIES[section][2])
        brand = self.brand()
        if kind == "合伙企业":
            fund = rng.choice(["投资管理", "创业投资", "股权投资"])
            return f"{place}{brand}{fund}合伙企业（有限合伙）"
        if kind == "个人独资企业":
            return f"{county.full}{brand}{rng.choice(['商行', '五金店', '加工厂', '贸易商行'])}"
        if kind == "农民专业合作社":
            produce = rng.choice(["茶叶", "果蔬", "水产", "粮油", "杨梅", "竹笋", "蜜梨"])
            return f"{county.full}{brand}{produce}专业合作社"
        if kind.startswith("股份"):
            return f"{place}{brand}{trade}股份有限公司"
        return f"{place}{brand}{trade}有限公司"

    def capital(self, kind: str) -> float:
        median = {"个人独资企业": 10, "农民专业合作社": 50, "合伙企业": 1000}.get(kind, 100)
        value = self.rng.lognormvariate(math.log(median), 1.1)
        return float(round(value, -1) if value > 100 else round(value, 2))

    def agency(self, county: County, name: str) -> str:
        return f"{county.full}{name}"

    def weighted(self, choices: dict[str, float]) -> str:
        return self.rng.choices(list(choices), weights=list(choices.values()))[0]


class _Serials:
    """Document numbers as offices issue them: each series from its own start, with gaps."""

    def __init__(self, rng: random.Random) -> None:
        self.rng = rng
        self.last: dict[Any, int] = {}

    def next(self, series: Any) -> int:
        last = self.last.get(series)
        self.last[series] = (
            self.rng.randint(1, 400) if last is None else last + self.rng.randint(1, 25)
        )
        return self.last[series]


def citizen_id(rng: random.Random, county: str, birth: date, gender: str) -> str:
    """GB 11643: region, birth date, a sequence odd for men and even for women, check."""
    sequence = rng.randrange(500) * 2 + (1 if gender == "男" else 0)
    first17 = f"{county}{birth:%Y%m%d}{sequence:03d}"
    return first17 + citizen_id_check(first17)


def age(birth: date, on: date) -> int:
    return on.year - birth.year - ((on.month, on.day) < (birth.month, birth.day))


def luhn(digits: str) -> str:
    total = 0
    for index, char in enumerate(reversed(digits)):
        value = int(char) * (2 if index % 2 == 0 else 1)
        total += value - 9 if value > 9 else value
    return digits + str((10 - total % 10) % 10)


# ---------------------------------------------------------------------------------------------
# the files: one generator per resource, yielding rows keyed by field name


@_source("zzb_party_organization", 300)
def _party_organizations(draw: _Draw, count: int) -> Iterator[Row]:
    rng = draw.rng
    for code, kind, parent, county in draw.world.party_organizations:
        unit = rng.choice(
            [
                f"{county.full}{draw.place()}社区",
                f"{county.full}{draw.place()}村",
                draw.enterprise(county=county).name,
                f"{county.full}{draw.place()}小学",
            ]
        )
        if kind == "党委":
            name = f"中共{county.full}{draw.place()}{rng.choice(['镇', '街道'])}委员会"
        else:
            name = f"中共{unit}{'总支部' if kind == '党总支' else '支部'}委员会"
        members = {"党委": (50, 600), "党总支": (30, 120), "党支部": (3, 50)}[kind]
        founded = draw.day_in_year(rng.randint(1952, 2025))
        yield {
            "org_code": code,
            "org_name": name,
            "org_type": kind,
            "parent_org_code": parent or None,
            "region_code": county.code,
            "established_date": None if rng.random() < 0.04 else founded,
            "member_count": rng.randint(*members),
        }


COURSES = _words(
    "学习贯彻党的二十届四中全会精神专题轮训、主题党日：重温入党誓词、“浙里党建”网上学习课程、"
    "党纪学习教育专题辅导、“八八战略”实践专题学习、基层治理能力提升培训、“三会一课”专题党课、"
    "数字化改革专题培训"
)


@_source("zzb_party_member_education", 400)
def _party_education(draw: _Draw, count: int) -> Iterator[Row]:
    rng = draw.rng
    bodies = draw.world.party_organizations
    for index in range(count):
        code, _, _, county = rng.choice(bodies)
        person = draw.person(min_age=18)
        day = draw.days_back(365)
        yield {
            "record_id": f"PX{day:%Y%m%d}{index:06d}",
            "id_card": person.id_card,
            "member_name": person.name,
            "org_code": code,
            "course_name": rng.choice(COURSES),
            "study_hours": rng.choice([0.5, 1.0, 1.5, 2.0, 2.0, 3.0, 4.0, 8.0]),
            "study_date": day,
            "region_code": county.code,
        }


APPLICATION_WORDS = ("浙里", "数智", "一码", "共富", "智慧", "掌上")
APPLICATION_TOPICS = _words(
    "护苗、养老、安居、助企、畅行、急救、治水、消防、慧医、未来社区、基层智治、医保、托育、就业、"
    "帮扶、应急、执法、信用、文旅"
)


@_source("ggb_reform_application", 120)
def _reform_applications(draw: _Draw, count: int) -> Iterator[Row]:
    rng = draw.rng
    departments = draw.world.departments
    for index in range(count):
        department = rng.choice(departments)
        status = draw.weighted({"谋划": 0.1, "建设中": 0.25, "试运行": 0.2, "已上线": 0.45})
        launched = None
        if status in ("试运行", "已上线"):
            launched = draw.day(date(2021, 6, 1), draw.as_of)
        name = f"{rng.choice(APPLICATION_WORDS)}{rng.choice(APPLICATION_TOPICS)}"
        yield {
            "project_code": f"SZGG-{2021 + index % 5}-{index + 1:03d}",
            "project_name": name + rng.choice(["", "在线", "一件事", "应用", "系统"]),
            "lead_department": department["name"],
            "system_code": rng.choice(department.get("systems") or ["digital_government"]),
            "region_code": department["region"],
            "launch_date": launched,
            "status": status,
        }


@_source("dsj_catalog_statistics", 500)
def _catalog_statistics(draw: _Draw, count: int) -> Iterator[Row]:
    rng = draw.rng
    departments = draw.world.departments
    months = draw.months(max(1, count // len(departments)))
    for department in departments:
        catalogs = rng.randint(20, 400)
        mounted_share, api_share = rng.uniform(0.5, 0.9), rng.uniform(0.1, 0.5)
        for month in months:
            catalogs += rng.randint(0, max(1, catalogs // 30))
            yield {
                "department_code": department["code"],
                "stat_month": month,
                "region_code": department["region"],
                "catalog_count": catalogs,
                "mounted_table_count": int(catalogs * mounted_share),
                "api_count": int(catalogs * api_share),
            }


@_source("zrzyt_real_estate_registration", 400)
def _real_estate(draw: _Draw, count: int) -> Iterator[Row]:
    rng = draw.rng
    kinds = {"首次登记": 0.15, "转移登记": 0.4, "变更登记": 0.08, "抵押登记": 0.3}
    kinds |= {"注销登记": 0.04, "更正登记": 0.01, "预告登记": 0.02}
    for index in range(count):
        owner = draw.person(min_age=20)
        county = owner.county if rng.random() < 0.7 else draw.county()
        day = draw.days_back(3 * 365)
        # 不动产单元号: county, cadastral zone and subzone, parcel (GB), building (F), unit
        parcel = f"{rng.randint(1, 999):03d}{rng.randint(1, 999):03d}GB{rng.randint(1, 99999):05d}"
        unit = f"{county.code}{parcel}F{rng.randint(1, 99999999):08d}"
        yield {
            "certificate_no": f"浙（{day.year}）{county.city[:-1]}不动产权第{index + 1:07d}号",
            "unit_no": unit,
            "obligee_name": owner.name,
            "obligee_id_card": owner.id_card,
            "location": draw.address(county, home=True).removeprefix("浙江省"),
            "building_area": None if rng.random() < 0.03 else round(rng.uniform(38, 260), 2),
            "registration_type": draw.weighted(kinds),
            "registration_date": day,
            "region_code": county.code,
        }


YEARBOOK = (
    # code, name, unit, province value of the latest year, yearly growth, per head or share
    ("A0101", "地区生产总值", "亿元", 90100.0, 0.055, False),
    ("A0201", "常住人口", "万人", 6670.0, 0.007, False),
    ("A0301", "城镇居民人均可支配收入", "元", 78000.0, 0.045, True),
    ("A0302", "农村居民人均可支配收入", "元", 43000.0, 0.06, True),
    ("A0401", "一般公共预算收入", "亿元", 8700.0, 0.03, False),
    ("A0501", "社会消费品零售总额", "亿元", 33900.0, 0.045, False),
    ("A0601", "进出口总额", "亿元", 52000.0, 0.05, False),
    ("A0701", "常住人口城镇化率", "%", 75.0, 0.006, True),
)
CITY_SHARE = {
    "330100": 0.24,
    "330200": 0.20,
    "330300": 0.10,
    "330400": 0.085,
    "330500": 0.047,
    "330600": 0.09,
    "330700": 0.07,
    "330800": 0.024,
    "330900": 0.024,
    "331000": 0.076,
    "331100": 0.023,
}


@_source("tjj_statistical_yearbook", 480)
def _yearbook(draw: _Draw, count: int) -> Iterator[Row]:
    rng = draw.rng
    regions = [("330000", 1.0)] + [
        (code, CITY_SHARE.get(code, 0.05)) for code, _ in draw.world.cities
    ]
    years = max(1, count // (len(regions) * len(YEARBOOK)))
    latest = draw.as_of.year - 1
    for code, name, unit, value, growth, relative in YEARBOOK:
        for region, share in regions:
            level = value * (rng.uniform(0.85, 1.15) if relative and region != "330000" else 1.0)
            if not relative:
                level = value * share * (1.0 if region == "330000" else rng.uniform(0.9, 1.1))
            values = [level]
            for _ in range(years - 1):  # back from the latest year, a year's growth at a time
                values.append(values[-1] / (1 + growth * rng.uniform(0.6, 1.4)))
            for back, yearly in reversed(list(enumerate(values))):
                yield {
                    "indicator_code": code,
                    "stat_year": latest - back,
                    "region_code": region,
                    "indicator_name": name,
                    "unit": unit,
                    "indicator_value": round(min(yearly, 99.9) if unit == "%" else yearly, 2),
                }


# HJ 633: individual air quality index breakpoints, and each pollutant's concentrations there
IAQI_STEPS = (0, 50, 100, 150, 200, 300, 400, 500)
IAQI = {
    "PM2.5": (0, 35, 75, 115, 150, 250, 350, 500),
    "PM10": (0, 50, 150, 250, 350, 420, 500, 600),
    "O3": (0, 160, 200, 300, 400, 800, 1000, 1200),
}


def _iaqi(pollutant: str, concentration: float) -> float:
    limits = IAQI[pollutant]
    for (low, high), (low_index, high_index) in zip(
        pairwise(limits), pairwise(IAQI_STEPS), strict=True
    ):
        if concentration <= high:
            return low_index + (high_index - low_index) * (concentration - low) / (high - low)
    return float(IAQI_STEPS[-1])


@_source("sthjt_air_quality_hourly", 480, Layout(headers="name"))
def _air_quality(draw: _Draw, count: int) -> Iterator[Row]:
    rng = draw.rng
    stations = [(f"{1001 + index}A", draw.county(), rng.uniform(18, 48)) for index in range(20)]
    hours = max(1, count // len(stations))
    start = datetime.combine(draw.as_of, time()) - timedelta(hours=hours)
    for hour in range(hours):
        moment = start + timedelta(hours=hour)
        for code, county, base in stations:
            if rng.random() < 0.01:  # the station was offline that hour
                pm25 = pm10 = o3 = aqi = primary = None
            else:
                rush = 1.25 if moment.hour in (7, 8, 9, 18, 19, 20) else 1.0
                pm25 = round(base * rush * rng.lognormvariate(0, 0.25), 1)
                pm10 = round(pm25 * rng.uniform(1.3, 1.9), 1)
                sun = max(0.0, math.sin(math.pi * (moment.hour - 6) / 14))
                o3 = round(rng.uniform(12, 40) + 130 * sun * rng.uniform(0.7, 1.3), 1)
                indexes = {
                    "PM2.5": _iaqi("PM2.5", pm25),
                    "PM10": _iaqi("PM10", pm10),
                    "O3": _iaqi("O3", o3),
                }
                aqi = math.ceil(max(indexes.values()))
                primary = max(indexes, key=indexes.__getitem__) if aqi > 50 else None
            yield {
                "station_code": code,
                "monitor_time": moment,
                "region_code": county.code,
                "aqi": aqi,
                "pm25": pm25,
                "pm10": pm10,
                "o3": o3,
                "primary_pollutant": primary,
            }


# each river or lake, and the city its monitored sections lie in
RIVERS = {
    "钱塘江": "330100", "富春江": "330100", "新安江": "330100", "兰江": "330700",
    "瓯江": "331100", "椒江": "331000", "甬江": "330200", "曹娥江": "330600",
    "东苕溪": "330500", "西苕溪": "330500", "京杭运河": "330400", "浦阳江": "330600",
    "飞云江": "330300", "鳌江": "330300", "千岛湖": "330100", "太湖": "330500",
    "东钱湖": "330200",
}  # fmt: skip
CLASSES = ("Ⅰ类", "Ⅱ类", "Ⅲ类", "Ⅳ类", "Ⅴ类", "劣Ⅴ类")


def _water_class(oxygen: float, ammonia: float, phosphorus: float) -> str:
    """GB 3838: the worst class of the three measures."""
    by_oxygen = 5 - bisect((2, 3, 5, 6, 7.5), oxygen)  # the more oxygen, the better
    by_ammonia = bisect_left((0.15, 0.5, 1.0, 1.5, 2.0), ammonia)
    by_phosphorus = bisect_left((0.02, 0.1, 0.2, 0.3, 0.4), phosphorus)
    return CLASSES[max(by_oxygen, by_ammonia, by_phosphorus)]


@_source("sthjt_surface_water_quality", 400)
def _water_quality(draw: _Draw, count: int) -> Iterator[Row]:
    rng = draw.rng
    sections = []
    for index in range(20):
        river = rng.choice(list(RIVERS))
        county = draw.county(city=RIVERS[river])
        sections.append(
            (
                f"ZJSW{index + 1:04d}",
                f"{river}{county.short}{draw.place()}断面",
                river,
                county,
                rng.uniform(0.6, 1.6),
            )
        )
    weeks = max(1, count // len(sections))
    monday = draw.as_of - timedelta(days=draw.as_of.weekday() + 7 * weeks)
    for week in range(weeks):
        start = monday + timedelta(weeks=week)
        winter = math.cos(2 * math.pi * (start.timetuple().tm_yday - 15) / 365)
        for code, name, river, county, load in sections:
            if rng.random() < 0.02:
                oxygen = ammonia = phosphorus = klass = None
            else:
                oxygen = round(max(2.5, 7.4 + 1.4 * winter - 0.8 * load + rng.gauss(0, 0.5)), 2)
                ammonia = round(0.25 * load * rng.lognormvariate(0, 0.35), 3)
                phosphorus = round(0.06 * load * rng.lognormvariate(0, 0.3), 3)
                klass = _water_class(oxygen, ammonia, phosphorus)
            yield {
                "section_code": code,
                "week_start_date": start,
                "section_name": name,
                "river_name": river,
                "region_code": county.code,
                "dissolved_oxygen": oxygen,
                "ammonia_nitrogen": ammonia,
                "total_phosphorus": phosphorus,
                "water_quality_class": klass,
            }


@_source("scjgj_enterprise_registration", 5000, Layout(format="xlsx"))
def _enterprises(draw: _Draw, count: int) -> Iterator[Row]:
    for enterprise in draw.world.enterprises:
        yield {
            "credit_code": enterprise.credit_code,
            "enterprise_name": enterprise.name,
            "enterprise_type": enterprise.kind,
            "legal_representative": enterprise.representative,
            "registered_capital": enterprise.capital,
            "establishment_date": enterprise.established,
            "registration_authority": draw.agency(enterprise.county, "市场监督管理局"),
            "business_status": enterprise.status,
            "region_code": enterprise.county.code,
        }


SHOPS = {
    "F5211": "超市",
    "F5261": "便利店",
    "F5274": "五金店",
    "F5292": "水果店",
    "H6210": "小吃店",
    "H6220": "面馆",
    "O8010": "理发店",
    "O8052": "洗衣店",
    "F5124": "粮油店",
    "O8111": "汽车维修部",
}


@_source("scjgj_individual_business", 400, duplicates=1)
def _individual_businesses(draw: _Draw, count: int) -> Iterator[Row]:
    rng = draw.rng
    seen: set[str] = set()
    people = draw.distinct_people(min_age=20, max_age=70)
    while len(seen) < count:
        operator = next(people)
        county = operator.county if rng.random() < 0.8 else draw.county()
        day = draw.day(date(2012, 1, 1), draw.as_of)
        code = draw.credit_code("92", county, day.year >= 2015)
        if code in seen:
            continue
        seen.add(code)
        industry = rng.choice(list(SHOPS))
        # most take a trade name after the owner's surname; the rest have none
        trade_name = f"{county.full}{operator.name[0]}记{SHOPS[industry]}"
        yield {
            "credit_code": code,
            "business_name": trade_name if rng.random() < 0.7 else None,
            "operator_name": operator.name,
            "operator_id_card": operator.id_card,
            "operator_phone": None if rng.random() < 0.05 else draw.mobile(),
            "business_address": draw.address(county),
            "industry_code": industry,
            "registration_date": day,
            "region_code": county.code,
        }


# multiplicative month factors, January first
SEASON_INDUSTRY = (0.92, 0.72, 1.02, 1.0, 1.02, 1.06, 1.0, 0.98, 1.04, 1.0, 1.06, 1.18)
SEASON_RETAIL = (1.10, 0.98, 0.92, 0.90, 0.97, 1.0, 0.93, 0.95, 1.0, 1.06, 1.12, 1.07)
SEASON_FISCAL = (1.55, 0.75, 0.85, 1.25, 1.15, 1.05, 1.10, 0.80, 0.85, 1.10, 0.95, 0.60)
SEASON_GDP = (0.86, 0.74, 0.98, 0.97, 0.99, 1.06, 0.98, 0.97, 1.02, 1.0, 1.04, 1.39)


@_source("jxt_industrial_output_monthly", 480)
def _industrial_output(draw: _Draw, count: int) -> Iterator[Row]:
    rng = draw.rng
    months = draw.months(12)
    pool = [e for e in draw.world.enterprises if e.industry[0] == "C" and e.status == "存续"]
    pool = sorted(pool or draw.world.enterprises)
    chosen = rng.sample(pool, min(len(pool), max(1, count // len(months))))
    for enterprise in chosen:
        level = rng.lognormvariate(math.log(2500), 0.9)  # 万元 a month
        workers = max(20, int(level / rng.uniform(15, 40)))
        for index, month in enumerate(months):
            gross = (
                level
                * (1.004**index)
                * SEASON_INDUSTRY[month.month - 1]
                * rng.lognormvariate(0, 0.06)
            )
            yield {
                "credit_code": enterprise.credit_code,
                "stat_month": month,
                "enterprise_name": enterprise.name,
                "industry_code": enterprise.industry,
                "gross_output_value": round(gross, 2),
                "sales_output_value": round(gross * rng.uniform(0.93, 1.0), 2),
                "employee_count": None if rng.random() < 0.02 else workers + rng.randint(-5, 5),
                "region_code": enterprise.county.code,
            }


@_source("jxt_digital_economy_core_enterprise", 300)
def _digital_economy(draw: _Draw, count: int) -> Iterator[Row]:
    rng = draw.rng
    pool = sorted(e for e in draw.world.enterprises if e.industry[0] in "ICLM")
    chosen = rng.sample(pool, min(len(pool), max(1, count // 2)))
    years = (draw.as_of.year - 2, draw.as_of.year - 1)
    for enterprise in chosen:
        if enterprise.industry[0] == "I":
            category = rng.choice(["数字技术应用业", "数字产品服务业"])
        elif enterprise.industry[0] == "C":
            category = "数字产品制造业"
        else:
            category = rng.choice(["数字要素驱动业", "数字技术应用业"])
        revenue = rng.lognormvariate(math.log(8000), 1.2)
        for year in years:
            revenue *= rng.uniform(0.9, 1.3)
            yield {
                "credit_code": enterprise.credit_code,
                "list_year": year,
                "enterprise_name": enterprise.name,
                "core_industry_category": category,
                "operating_revenue": None if rng.random() < 0.03 else round(revenue, 2),
                "region_code": enterprise.county.code,
            }


SECTORS = {
    # share of a city's consumption, month factors
    "第一产业": (0.006, (0.9, 0.8, 0.9, 1.0, 1.1, 1.2, 1.3, 1.3, 1.1, 0.9, 0.8, 0.8)),
    "第二产业": (0.60, SEASON_INDUSTRY),
    "第三产业": (0.20, (1.05, 0.9, 0.9, 0.9, 0.95, 1.05, 1.25, 1.25, 1.0, 0.9, 0.9, 1.0)),
    "城乡居民生活": (0.19, (1.3, 1.25, 0.95, 0.8, 0.8, 0.95, 1.3, 1.35, 1.0, 0.8, 0.8, 1.0)),
}


@_source("nyj_electricity_consumption", 500)
def _electricity(draw: _Draw, count: int) -> Iterator[Row]:
    rng = draw.rng
    months = draw.months(24)
    # about 650 billion kWh a year for the province, in 万千瓦时 a month
    province = 6.5e7 / 12
    for city, _ in draw.world.cities:
        for sector, (share, season) in SECTORS.items():
            growth = rng.uniform(0.03, 0.09)
            values = [
                province
                * CITY_SHARE.get(city, 0.05)
                * share
                * (1 + growth) ** (index / 12)
                * season[month.month - 1]
                * rng.lognormvariate(0, 0.03)
                for index, month in enumerate(months)
            ]
            for index in range(12, 24):
                yield {
                    "region_code": city,
                    "stat_month": months[index],
                    "sector": sector,
                    "consumption_kwh": round(values[index], 2),
                    "yoy_growth": round((values[index] / values[index - 12] - 1) * 100, 2),
                }


@_source("fgw_public_credit_evaluation", 400)
def _credit_evaluation(draw: _Draw, count: int) -> Iterator[Row]:
    rng = draw.rng
    pool = sorted(e for e in draw.world.enterprises if e.status == "存续")
    chosen = rng.sample(pool, min(len(pool), max(1, count // 2)))
    dates = draw.months(2)
    for enterprise in chosen:
        score = min(1000.0, max(300.0, rng.gauss(780, 70)))
        for day in dates:
            score = min(1000.0, max(0.0, score + rng.gauss(0, 12)))
            grade = ("较差", "中等", "良好", "优秀")[bisect((600, 750, 850), score)]
            yield {
                "credit_code": enterprise.credit_code,
                "evaluation_date": day,
                "enterprise_name": enterprise.name,
                "evaluation_score": round(score, 1),
                "evaluation_grade": grade,
                "region_code": enterprise.county.code,
            }


COUNTY_SERIES = {
    # base for a county of average size (亿元 a month), yearly growth and its spread, noise, season
    "gdp": (77.0, 0.055, 0.012, 0.015, SEASON_GDP),
    "retail_sales": (30.0, 0.045, 0.015, 0.02, SEASON_RETAIL),
    "fiscal_revenue": (8.0, 0.03, 0.03, 0.06, SEASON_FISCAL),
}
# 城镇登记失业率: graduates in July and August, job changes after the Spring Festival
UNEMPLOYMENT_SEASON = (0.05, 0.15, 0.12, 0.0, -0.05, 0.0, 0.1, 0.12, 0.0, -0.05, -0.08, -0.06)
COUNTY_SERIES_MONTHS = 36


@_source("tjj_county_monthly_indicator", 0, Layout(encoding="utf-8-sig"))
def _county_series(draw: _Draw, count: int) -> Iterator[Row]:
    """Per county, four series with trend, season and noise, for forecasting to work on.

    A couple of counties turn down in the last months, so that warnings have something to find.
    """
    rng = draw.rng
    world = draw.world
    counties = world.counties
    wanted = max(3, round(len(counties) * world.scale))
    if wanted < len(counties):
        counties = sorted(rng.sample(counties, wanted))
    slowing = {county.code for county in rng.sample(counties, min(2, len(counties)))}
    months = draw.months(COUNTY_SERIES_MONTHS)
    mean = world.mean_weight()
    for county in counties:
        size = county.weight / mean
        late = county.code in slowing
        for code, (base, growth, spread, noise, season) in COUNTY_SERIES.items():
            level = base * size * rng.lognormvariate(0, 0.15)
            yearly = rng.gauss(growth, spread)
            wander = 0.0
            for index, month in enumerate(months):
                wander = 0.5 * wander + rng.gauss(0, noise)
                value = level * (1 + yearly) ** (index / 12) * season[month.month - 1]
                if late and code != "gdp" and index >= len(months) - 4:
                    value *= 0.9
                yield {
                    "region_code": county.code,
                    "month": month,
                    "indicator_code": code,
                    "value": round(value * math.exp(wander), 2),
                }
        rate = rng.uniform(1.7, 2.8)
        for index, month in enumerate(months):
            value = rate - 0.004 * index + UNEMPLOYMENT_SEASON[month.month - 1]
            if late and index >= len(months) - 4:
                value += 0.4
            yield {
                "region_code": county.code,
                "month": month,
                "indicator_code": "registered_unemployment",
                "value": round(max(0.5, value + rng.gauss(0, 0.04)), 2),
            }


@_source("gat_resident_population", 20000, Layout(encoding="gbk"), duplicates=2)
def _population(draw: _Draw, count: int) -> Iterator[Row]:
    rng = draw.rng
    ethnicities = list(ETHNICITIES)
    ethnic_weights = list(ETHNICITIES.values())
    end = datetime.combine(draw.as_of, time(23, 59))
    for person in draw.world.people:
        county = person.county if rng.random() < 0.85 else draw.county()
        home = draw.address(county, home=True)
        moved = rng.random()
        if moved < 0.7:
            residence: str | None = home
        elif moved < 0.75:
            residence = None
        else:
            residence = draw.address(draw.county(), home=True)
        # the record last changed in the past three years, and not before the person was born
        changed = max(end - timedelta(days=3 * 365), datetime.combine(person.birth, time(9)))
        changed += timedelta(seconds=int(rng.random() * (end - changed).total_seconds()))
        ethnicity = rng.choices(ethnicities, ethnic_weights)[0]
        yield {
            "id_card": person.id_card,
            "full_name": person.name,
            "gender": person.gender,
            "birth_date": person.birth,
            "ethnicity": None if rng.random() < 0.01 else ethnicity,
            "household_address": home,
            "residence_address": residence,
            "region_code": county.code,
            "updated_at": changed,
        }


@_source("rlsbt_social_insurance_enrollment", 500)
def _social_insurance(draw: _Draw, count: int) -> Iterator[Row]:
    rng = draw.rng
    made = 0
    for person in draw.distinct_people(min_age=18, max_age=75):
        # one pension scheme each; employees may add unemployment and injury insurance
        scheme = draw.weighted({"企业职工养老": 0.65, "机关事业养老": 0.07, "城乡居民养老": 0.28})
        if scheme == "城乡居民养老":
            employer, kinds = None, [scheme]
        elif scheme == "机关事业养老":
            employer = draw.credit_code(rng.choice(["11", "12"]), person.county, False)
            kinds = [scheme]
        elif rng.random() < 0.2:  # flexible employment: pension only, paid by the person
            employer, kinds = None, [scheme]
        else:
            employer = draw.enterprise().credit_code
            kinds = [scheme] + [kind for kind in ("失业", "工伤") if rng.random() < 0.8]
        adult = person.birth.replace(year=person.birth.year + 18, day=min(person.birth.day, 28))
        joined = draw.day(max(adult, date(1995, 1, 1)), draw.as_of)
        status = draw.weighted({"正常缴费": 0.8, "暂停缴费": 0.12, "终止参保": 0.08})
        for kind in kinds:
            if made >= count:
                return
            made += 1
            yield {
                "id_card": person.id_card,
                "insurance_type": kind,
                "insured_name": person.name,
                "employer_credit_code": employer,
                "enrollment_date": joined if kind == scheme else draw.day(joined, draw.as_of),
                "payment_status": status,
                "region_code": person.county.code,
            }


DIAGNOSES = _words(
    "J06.900、I10.x00、E11.900、K29.700、M54.500、J18.900、N39.000、R50.900、K52.900、J20.900、"
    "I25.103、H10.900、L30.900、Z00.000、M17.900"
)


@_source("ybj_medical_settlement", 500, Layout(headers="name"))
def _medical_settlements(draw: _Draw, count: int) -> Iterator[Row]:
    rng = draw.rng
    institutions = [
        f"H{county.code}{rng.randrange(100000):05d}"
        for county in (draw.county() for _ in range(40))
    ]
    moments = sorted(draw.moment(draw.days_back(30, 1), (7, 21)) for _ in range(count))
    for index, moment in enumerate(moments):
        patient = draw.person()
        total = round(rng.lognormvariate(math.log(260), 1.1) + 12, 2)
        fund = round(total * rng.uniform(0.45, 0.85), 2)
        yield {
            "settlement_id": f"JS{moment:%Y%m%d}{index + 1:08d}",
            "id_card": patient.id_card,
            "patient_name": patient.name,
            "institution_code": rng.choice(institutions),
            "diagnosis_code": None if rng.random() < 0.1 else rng.choice(DIAGNOSES),
            "settlement_time": moment,
            "total_amount": total,
            "fund_payment": fund,
            "personal_payment": round(total - fund, 2),
            "region_code": patient.county.code,
        }


GRADES = ("一年级", "二年级", "三年级", "四年级", "五年级", "六年级", "七年级", "八年级", "九年级")
GRADES += ("高一", "高二", "高三")


@_source("jyt_student_status", 400)
def _students(draw: _Draw, count: int) -> Iterator[Row]:
    rng = draw.rng
    school_year = draw.as_of.year if draw.as_of.month >= 9 else draw.as_of.year - 1
    schools: dict[str, list[str]] = {}
    students = draw.distinct_people(min_age=6, max_age=17)
    for _ in range(count):
        student = next(students)
        county = student.county if rng.random() < 0.9 else draw.county()
        grade = min(max(age(student.birth, date(school_year, 9, 1)) - 6, 0), len(GRADES) - 1)
        stage_start = grade - (0 if grade < 6 else 6 if grade < 9 else 9)
        codes = schools.setdefault(
            county.code, [f"21{county.code[:4]}{rng.randrange(10000):04d}" for _ in range(4)]
        )
        yield {
            "student_no": "G" + student.id_card,
            "id_card": student.id_card,
            "student_name": student.name,
            "school_code": rng.choice(codes),
            "grade_level": GRADES[grade],
            "enrollment_date": date(school_year - stage_start, 9, 1),
            "status": draw.weighted({"在读": 0.93, "休学": 0.01, "转出": 0.04, "毕业": 0.02}),
            "region_code": county.code,
        }


@_source("mzt_marriage_registration", 400)
def _marriages(draw: _Draw, count: int) -> Iterator[Row]:
    rng = draw.rng
    serial = _Serials(rng)
    prefixes = {"结婚": "J", "离婚": "L", "补领结婚证": "BJ", "补领离婚证": "BL"}
    for _ in range(count):
        kind = draw.weighted({"结婚": 0.68, "离婚": 0.24, "补领结婚证": 0.06, "补领离婚证": 0.02})
        male = draw.person(min_age=22, max_age=70, gender="男")
        female = draw.person(min_age=20, max_age=70, gender="女")
        county = rng.choice([male.county, female.county])
        day = draw.days_back(2 * 365)
        number = serial.next((county.code, day.year))
        yield {
            "certificate_no": f"{prefixes[kind]}{county.code}-{day.year}-{number:06d}",
            "registration_type": kind,
            "male_id_card": male.id_card,
            "male_name": male.name,
            "female_id_card": female.id_card,
            "female_name": female.name,
            "registration_date": day,
            "region_code": county.code,
        }


@_source("mzt_subsistence_allowance", 300)
def _subsistence(draw: _Draw, count: int) -> Iterator[Row]:
    rng = draw.rng
    serial = Counter()
    for _ in range(count):
        applicant = draw.person(min_age=18)
        county = applicant.county
        serial[county.code] += 1
        size = rng.choices([1, 2, 3, 4, 5], [0.45, 0.25, 0.15, 0.1, 0.05])[0]
        standard = 1150 + 150 * CITY_WEIGHT.get(county.city, 1.0)
        account = luhn("6228" + "".join(str(rng.randrange(10)) for _ in range(14)))
        yield {
            "family_id": f"DB{county.code}{serial[county.code]:06d}",
            "applicant_id_card": applicant.id_card,
            "applicant_name": applicant.name,
            "family_size": size,
            "monthly_allowance": round(size * standard * rng.uniform(0.35, 1.0)),
            "bank_account": None if rng.random() < 0.1 else account,
            "approval_date": draw.days_back(4 * 365, 10),
            "region_code": county.code,
        }


@_source("hz_bus_passenger_flow", 400)
def _bus_flow(draw: _Draw, count: int) -> Iterator[Row]:
    rng = draw.rng
    districts = [
        c for c in draw.world.counties if c.city_code == "330100" and c.name.endswith("区")
    ]
    lines = []
    for number in rng.sample(range(1, 600), 20):
        lines.append(
            (
                f"HZ{number:04d}",
                f"{number}路",
                rng.choice(districts),
                rng.lognormvariate(math.log(6000), 0.7),
            )
        )
    days = max(1, count // len(lines))
    for back in range(days, 0, -1):
        day = draw.as_of - timedelta(days=back)
        weekday = 1.0 if day.weekday() < 5 else 0.78
        for code, name, district, base in lines:
            passengers = int(base * weekday * rng.lognormvariate(0, 0.08))
            yield {
                "line_code": code,
                "stat_date": day,
                "line_name": name,
                "passenger_count": passengers,
                "trip_count": max(20, int(passengers / rng.uniform(40, 70))),
                "region_code": district.code,
            }


CHILDCARE_KINDS = {
    "全日制托育机构": (0.4, (40, 150)),
    "社区托育点": (0.25, (15, 40)),
    "幼儿园托班": (0.25, (20, 60)),
    "用人单位办托": (0.05, (20, 80)),
    "家庭托育点": (0.05, (3, 5)),
}
CHILDCARE_BRANDS = _words("小天使、贝乐、童心、爱弥儿、七彩、金色摇篮、蓝天、小星星、启蒙、禾苗")


@_source("wjw_childcare_institution", 1000, Layout(encoding="utf-8-sig"))
def _childcare(draw: _Draw, count: int) -> Iterator[Row]:
    rng = draw.rng
    serial = Counter()
    kinds = list(CHILDCARE_KINDS)
    weights = [share for share, _ in CHILDCARE_KINDS.values()]
    for _ in range(count):
        kind = rng.choices(kinds, weights)[0]
        employer = draw.enterprise() if kind == "用人单位办托" else None
        county = employer.county if employer else draw.county()
        serial[county.code] += 1
        # who runs it: public institutions (12), private non-profits (52), companies (91)
        if kind == "全日制托育机构":
            name = f"{county.short}{rng.choice(CHILDCARE_BRANDS)}{draw.brand()}托育中心"
            ownership = draw.weighted({"公办": 0.1, "民办普惠": 0.5, "民办非普惠": 0.4})
            runner = "12" if ownership == "公办" else rng.choice(["52", "91"])
            code = draw.credit_code(runner, county, runner != "12")
        elif kind == "社区托育点":
            name = f"{county.full}{draw.place()}社区托育点"
            ownership = draw.weighted({"公办": 0.6, "民办普惠": 0.4})
            runner = "12" if ownership == "公办" else "52"
            code = None if rng.random() < 0.6 else draw.credit_code(runner, county)
        elif kind == "幼儿园托班":
            name = f"{county.full}{draw.place()}幼儿园托班"
            ownership = draw.weighted({"公办": 0.6, "民办普惠": 0.3, "民办非普惠": 0.1})
            code = draw.credit_code("12" if ownership == "公办" else "52", county, False)
        elif employer is not None:
            name = f"{employer.name}职工托育点"
            ownership = "民办普惠"
            code = employer.credit_code
        else:
            name = f"{county.full}{draw.fake.last_name()}家庭托育点"
            ownership = draw.weighted({"民办普惠": 0.5, "民办非普惠": 0.5})
            code = draw.credit_code("92", county)
        places = rng.randint(*CHILDCARE_KINDS[kind][1])
        yield {
            "institution_code": f"TY{county.code}{serial[county.code]:04d}",
            "institution_name": name,
            "credit_code": code,
            "institution_type": kind,
            "ownership": ownership,
            "address": draw.address(county),
            "places": places,
            "occupied": round(places * min(1.0, rng.betavariate(5, 2.2))),
            "contact_email": None if rng.random() < 0.15 else draw.email(),
            "filing_date": draw.day(date(2020, 1, 1), draw.as_of),
            "region_code": county.code,
        }


SCENIC_AREAS = (
    ("西湖风景名胜区", "330106", "5A", 120000),
    ("千岛湖风景区", "330127", "5A", 60000),
    ("乌镇古镇旅游区", "330483", "5A", 60000),
    ("普陀山风景名胜区", "330903", "5A", 50000),
    ("雁荡山风景旅游区", "330382", "5A", 40000),
    ("横店影视城", "330783", "5A", 50000),
    ("溪口—滕头旅游景区", "330213", "5A", 40000),
    ("南浔古镇景区", "330503", "5A", 40000),
    ("西塘古镇旅游景区", "330421", "5A", 50000),
    ("天台山景区", "331023", "5A", 30000),
    ("江郎山·廿八都景区", "330881", "5A", 20000),
    ("神仙居景区", "331024", "5A", 25000),
    ("鲁迅故里·沈园景区", "330602", "5A", 40000),
    ("安吉余村景区", "330523", "4A", 20000),
    ("莫干山风景名胜区", "330521", "4A", 30000),
    ("仙都风景名胜区", "331122", "5A", 25000),
    ("天目山景区", "330112", "4A", 20000),
    ("瑶琳仙境景区", "330122", "4A", 15000),
    ("西施故里旅游区", "330681", "4A", 15000),
    ("诸葛八卦村景区", "330781", "4A", 15000),
    ("嘉兴南湖旅游区", "330402", "5A", 40000),
    ("江心屿景区", "330302", "4A", 20000),
    ("楠溪江风景名胜区", "330324", "4A", 30000),
    ("根宫佛国文化旅游区", "330824", "5A", 20000),
    ("刘伯温故里景区", "330328", "5A", 20000),
    ("东钱湖旅游度假区", "330212", "4A", 30000),
    ("仙华山景区", "330726", "4A", 8000),
    ("云和梯田景区", "331125", "4A", 15000),
    ("桐庐大奇山景区", "330122", "3A", 6000),
    ("缙云河阳古民居", "331122", "3A", 6000),
)


@_source("whlyt_scenic_passenger_flow", 300, Layout(format="json", headers="name"))
def _scenic_flow(draw: _Draw, count: int) -> Iterator[Row]:
    rng = draw.rng
    hours = max(1, count // len(SCENIC_AREAS))
    day = draw.as_of - timedelta(days=1)
    for step in range(hours):
        hour = 8 + step * 10 // hours
        moment = datetime.combine(day, time(hour, (step * 10 % hours) * 60 // hours))
        curve = math.exp(-(((hour - 12.5) / 3.2) ** 2))
        for index, (name, region, level, capacity) in enumerate(SCENIC_AREAS):
            yield {
                "scenic_code": f"JQ{region}{index + 1:03d}",
                "report_time": moment,
                "scenic_name": name,
                "a_level": level,
                "current_visitors": int(capacity * 0.45 * curve * rng.uniform(0.7, 1.2)),
                "max_capacity": capacity,
                "region_code": region,
            }


# kind of venue: share, typical floor area (m²)
VENUES = {"图书馆": (0.1, 9000), "文化馆": (0.08, 6000), "博物馆": (0.12, 5000)}
VENUES |= {"文化站": (0.3, 1200), "文化礼堂": (0.4, 400)}
OPENING_HOURS = _words(
    "周二至周日 9:00-17:00、每日 8:30-20:30、周一闭馆，其余 9:00-16:30、节假日及周末开放"
)


@_source("whlyt_public_cultural_venue", 400)
def _cultural_venues(draw: _Draw, count: int) -> Iterator[Row]:
    rng = draw.rng
    serial = Counter()
    for _ in range(count):
        county = draw.county()
        kind = draw.weighted({kind: share for kind, (share, _) in VENUES.items()})
        serial[county.code] += 1
        town = draw.place() + rng.choice(["镇", "街道", "乡"])
        branch = "" if serial[county.code] == 1 else draw.place() + "分馆"
        theme = rng.choice(["", "民俗", "青瓷", "名人", "非遗", "农耕"])
        name = {
            "图书馆": f"{county.full}图书馆{branch}",
            "文化馆": f"{county.full}文化馆",
            "博物馆": f"{county.full}{theme}博物馆",
            "文化站": f"{county.full}{town}综合文化站",
            "文化礼堂": f"{county.full}{town}{draw.place()}村文化礼堂",
        }[kind]
        area = round(VENUES[kind][1] * rng.lognormvariate(0, 0.5), 1)
        hours = rng.choice(OPENING_HOURS)
        yield {
            "venue_code": f"WH{county.code}{serial[county.code]:04d}",
            "venue_name": name,
            "venue_type": kind,
            "venue_address": draw.address(county),
            "opening_hours": None if rng.random() < 0.1 else hours,
            "floor_area": None if rng.random() < 0.05 else area,
            "region_code": county.code,
            "updated_date": draw.days_back(365),
        }


HERITAGE = {
    "民间文学": _words("传说、故事、歌谣"),
    "传统音乐": _words("丝竹、山歌、锣鼓、吹打"),
    "传统舞蹈": _words("龙舞、狮舞、马灯舞、板凳龙"),
    "传统戏剧": _words("越剧、婺剧、绍剧、瓯剧、甬剧、木偶戏"),
    "曲艺": _words("道情、莲花落、评话、鼓词"),
    "传统体育、游艺与杂技": _words("船拳、武术、高跷、抬阁"),
    "传统美术": _words("剪纸、木雕、竹编、石雕、刺绣、灯彩"),
    "传统技艺": _words("青瓷烧制技艺、黄酒酿制技艺、绿茶制作技艺、竹纸制作技艺、锡雕技艺"),
    "传统医药": _words("中医正骨疗法、膏方制作技艺、针灸疗法"),
    "民俗": _words("庙会、灯会、龙舟竞渡、祭典、立夏习俗"),
}
ROMAN = "ⅠⅡⅢⅣⅤⅥⅦⅧⅨⅩ"
NATIONAL_BATCHES = (
    date(2006, 5, 20),
    date(2008, 6, 7),
    date(2011, 5, 23),
    date(2014, 11, 11),
    date(2021, 5, 24),
)
PROVINCIAL_BATCHES = (
    date(2005, 5, 30),
    date(2007, 6, 1),
    date(2009, 6, 3),
    date(2012, 6, 8),
    date(2016, 12, 15),
    date(2023, 1, 10),
)


@_source("whlyt_intangible_heritage", 250)
def _heritage(draw: _Draw, count: int) -> Iterator[Row]:
    rng = draw.rng
    serial = Counter()
    categories = list(HERITAGE)
    for _ in range(count):
        category = rng.choice(categories)
        serial[category] += 1
        county = draw.county()
        national = rng.random() < 0.25
        unit = rng.choice([f"{county.full}文化馆", f"{county.full}非物质文化遗产保护中心"])
        yield {
            "project_code": f"{ROMAN[categories.index(category)]}-{serial[category]}",
            "project_name": f"{county.short}{rng.choice(HERITAGE[category])}",
            "category": category,
            "heritage_level": "国家级" if national else "省级",
            "protection_unit": None if rng.random() < 0.05 else unit,
            "announced_date": rng.choice(NATIONAL_BATCHES if national else PROVINCIAL_BATCHES),
            "region_code": county.code,
        }


RELICS = {
    "古遗址": _words("遗址、窑址、古城遗址"),
    "古墓葬": _words("墓、墓群"),
    "古建筑": _words("宗祠、古桥、塔、寺、古民居、古城墙、书院"),
    "石窟寺及石刻": _words("造像、摩崖石刻、石窟"),
    "近现代重要史迹及代表性建筑": _words("旧址、故居、纪念馆"),
    "其他": _words("古井、古道"),
}
ERAS = _words("新石器时代、商周、春秋战国、汉、六朝、唐、五代、宋、元、明、清、民国")


@_source("wwj_protected_cultural_relic", 300)
def _relics(draw: _Draw, count: int) -> Iterator[Row]:
    rng = draw.rng
    for index in range(count):
        category = rng.choice(list(RELICS))
        county = draw.county()
        national = rng.random() < 0.3
        modern = category.startswith("近现代")
        yield {
            "relic_code": f"{'G' if national else 'S'}{rng.randint(1, 8)}-{index + 1:04d}",
            "relic_name": f"{county.short}{draw.place()}{rng.choice(RELICS[category])}",
            "relic_category": category,
            "era": None if rng.random() < 0.05 else ("民国" if modern else rng.choice(ERAS)),
            "protection_level": "全国重点文物保护单位" if national else "省级文物保护单位",
            "designated_date": draw.day(date(1961, 3, 4), date(2019, 10, 7)),
            "region_code": county.code,
        }


ENFORCERS = {
    # agency: its abbreviation in decision numbers, the violations it punishes
    "市场监督管理局": (
        "市监",
        _words("虚假宣传、销售不合格产品、无照经营、食品安全违法、价格违法"),
    ),
    "综合行政执法局": ("综执", _words("违法建设、占道经营、乱倒建筑垃圾、违规设置户外广告")),
    "生态环境分局": ("环", _words("超标排放水污染物、未批先建、未落实扬尘防治措施")),
    "应急管理局": ("应急", _words("未落实安全生产责任制、安全培训不到位、未按规定排查隐患")),
    "交通运输局": ("交", _words("非法营运、超限运输、未按规定维护车辆")),
    "卫生健康局": ("卫", _words("非法行医、未取得许可开展诊疗、公共场所卫生违法")),
    "自然资源和规划局": ("资规", _words("非法占用土地、非法采矿")),
}


@_source("sft_administrative_penalty", 2000, duplicates=2)
def _penalties(draw: _Draw, count: int) -> Iterator[Row]:
    rng = draw.rng
    serial = _Serials(rng)
    types = {
        "警告": 0.14,
        "通报批评": 0.03,
        "罚款": 0.62,
        "没收违法所得": 0.1,
        "没收非法财物": 0.03,
    }
    types |= {"暂扣许可证件": 0.01, "吊销许可证件": 0.01, "责令停产停业": 0.03, "责令关闭": 0.01}
    types |= {"限制开展生产经营活动": 0.01, "降低资质等级": 0.005, "限制从业": 0.005}
    agencies = list(ENFORCERS)
    for _ in range(count):
        agency = rng.choice(agencies)
        abbreviation, violations = ENFORCERS[agency]
        if rng.random() < 0.6:
            party = draw.enterprise()
            county, name, code, id_card = party.county, party.name, party.credit_code, None
        else:
            person = draw.person(min_age=18, max_age=80)
            county = person.county if rng.random() < 0.8 else draw.county()
            name, code, id_card = person.name, None, person.id_card
        day = draw.days_back(2 * 365)
        penalty = draw.weighted(types)
        prefix = f"{CITY_ABBREVIATION[county.city]}{county.short[0]}{abbreviation}罚决字"
        number = serial.next((prefix, day.year))
        amount = None
        if penalty not in ("警告", "通报批评", "责令关闭", "限制从业"):
            amount = round(rng.lognormvariate(math.log(0.8), 1.2), 4)
        yield {
            "decision_no": f"{prefix}〔{day.year}〕{number}号",
            "party_name": name,
            "credit_code": code,
            "party_id_card": id_card,
            "violation_type": rng.choice(violations),
            "penalty_type": penalty,
            "penalty_amount": amount,
            "enforcement_agency": draw.agency(county, agency),
            "decision_date": day,
            "region_code": county.code,
        }


CAUSES = _words(
    "民间借贷纠纷、买卖合同纠纷、离婚纠纷、机动车交通事故责任纠纷、劳动争议、物业服务合同纠纷、"
    "金融借款合同纠纷、房屋租赁合同纠纷、服务合同纠纷、追索劳动报酬纠纷、信用卡纠纷、"
    "建设工程施工合同纠纷"
)


@_source("gy_court_judgment_document", 300)
def _judgments(draw: _Draw, count: int) -> Iterator[Row]:
    rng = draw.rng
    serial = _Serials(rng)
    for _ in range(count):
        county = draw.county()
        day = draw.days_back(2 * 365)
        if rng.random() < 0.8:
            prefix = f"（{day.year}）浙{county.code[2:]}民初"
            court, region = f"{county.full}人民法院", county.code
        else:
            prefix = f"（{day.year}）浙{county.code[2:4]}民终"
            court, region = f"浙江省{county.city}中级人民法院", county.city_code
        number = serial.next(prefix)
        parties = [draw.person(min_age=18).name]
        parties.append(
            draw.enterprise().name if rng.random() < 0.4 else draw.person(min_age=18).name
        )
        case = f"{prefix}{number}号"
        result = draw.weighted({"判决": 0.45, "调解": 0.3, "撤诉": 0.2, "驳回起诉": 0.05})
        document = f"/wenshu/{day.year}/{region}/{number:06d}.pdf"
        yield {
            "case_no": case,
            "court_name": court,
            "cause_of_action": rng.choice(CAUSES),
            "litigant_names": ";".join(parties),
            "judgment_result": None if rng.random() < 0.01 else result,
            "closing_date": day,
            "document_file": None if rng.random() < 0.1 else document,
            "region_code": region,
        }


OFFENCES = {
    # kind of case: offences, how they end
    "治安案件": (
        _words("殴打他人、盗窃、赌博、吸毒、扰乱公共秩序、寻衅滋事"),
        _words("行政拘留、罚款、警告"),
    ),
    "刑事案件": (
        _words("盗窃、诈骗、故意伤害、危险驾驶、帮助信息网络犯罪活动"),
        _words("刑事拘留、取保候审、逮捕、判处刑罚"),
    ),
}


@_source("gat_criminal_record", 300)
def _criminal_records(draw: _Draw, count: int) -> Iterator[Row]:
    rng = draw.rng
    for index in range(count):
        person = draw.person(min_age=16, max_age=75)
        county = person.county if rng.random() < 0.7 else draw.county()
        kind = "治安案件" if rng.random() < 0.65 else "刑事案件"
        offences, results = OFFENCES[kind]
        if county.name.endswith("区"):
            agency = f"{county.city}公安局{county.name}分局"
        else:
            agency = f"{county.name}公安局"
        if rng.random() < 0.5:
            agency += f"{draw.place()}派出所"
        day = draw.days_back(5 * 365)
        yield {
            "record_id": f"WF{county.code}{day:%Y%m%d}{index + 1:05d}",
            "id_card": person.id_card,
            "person_name": person.name,
            "case_category": f"{kind}（{rng.choice(offences)}）",
            "handling_result": rng.choice(results),
            "handling_agency": agency,
            "handling_date": day,
            "region_code": county.code,
        }


@_source("nb_video_surveillance_point", 300)
def _video_points(draw: _Draw, count: int) -> Iterator[Row]:
    rng = draw.rng
    kinds = {"枪机": 0.45, "球机": 0.25, "半球": 0.1, "人脸识别": 0.1, "车辆卡口": 0.1}
    for index in range(count):
        county = draw.county(city="330200")
        kind = draw.weighted(kinds)
        device_type = "132" if kind in ("枪机", "球机", "半球") else "131"
        a, b = draw.fake.street_name(), draw.fake.street_name()
        yield {
            "device_code": f"{county.code}{rng.randint(1, 99):02d}00{device_type}0{index + 1:06d}",
            "point_name": rng.choice(
                [f"{a}与{b}交叉口", f"{a}{rng.randint(1, 300)}号", f"{draw.place()}社区东门"]
            ),
            "camera_type": kind,
            "longitude": round(rng.uniform(121.0, 122.1), 6),
            "latitude": round(rng.uniform(29.2, 30.3), 6),
            "online": rng.random() < 0.95,
            "check_time": draw.moment(draw.days_back(1), (0, 23)),
            "region_code": county.code,
        }


EVENTS = {
    "矛盾纠纷": "反映{place}村两户村民因宅基地边界发生争执",
    "安全隐患": "{street}沿街店铺电动自行车室内充电，存在火灾隐患",
    "环境卫生": "{street}垃圾分类投放点垃圾满溢未及时清运",
    "治安防范": "{place}小区地下车库有陌生人员夜间逗留",
    "消防安全": "{street}某出租房消防通道被杂物堵塞",
    "违章建筑": "{place}村村民在自家屋顶搭建彩钢棚",
    "道路交通": "{street}路灯损坏多日，夜间通行不便",
    "民生服务": "{place}社区独居老人行动不便，需上门帮扶",
}


EVENT_STATES_RECENT = {"待受理": 0.3, "处置中": 0.5, "已办结": 0.2}
EVENT_STATES_OLDER = {"处置中": 0.05, "已办结": 0.45, "已评价": 0.5}


@_source("zfw_grid_event", 500)
def _grid_events(draw: _Draw, count: int) -> Iterator[Row]:
    rng = draw.rng
    moments = sorted(draw.moment(draw.days_back(180)) for _ in range(count))
    for index, moment in enumerate(moments):
        county = draw.county()
        category = rng.choice(list(EVENTS))
        reporter = draw.person(min_age=20, max_age=70) if rng.random() < 0.8 else None
        recent = (draw.as_of - moment.date()).days < 10
        status = draw.weighted(EVENT_STATES_RECENT if recent else EVENT_STATES_OLDER)
        town, village = rng.randint(1, 30), rng.randint(1, 40)
        yield {
            "event_id": f"SJ{moment:%Y%m%d}{index + 1:06d}",
            "grid_code": f"{county.code}{town:03d}{village:03d}{rng.randint(1, 12):02d}",
            "event_category": category,
            "event_description": EVENTS[category].format(
                place=draw.place(), street=draw.fake.street_name()
            ),
            "reporter_name": reporter.name if reporter else None,
            "reporter_phone": draw.mobile() if reporter and rng.random() < 0.9 else None,
            "report_time": moment,
            "handle_status": status,
            "region_code": county.code,
        }


DISPUTES = _words(
    "婚姻家庭纠纷、邻里纠纷、劳动争议、物业纠纷、土地承包纠纷、消费纠纷、交通事故纠纷、征地拆迁纠纷"
)


@_source("zfw_dispute_mediation", 400)
def _disputes(draw: _Draw, count: int) -> Iterator[Row]:
    rng = draw.rng
    for index in range(count):
        applicant = draw.person(min_age=18)
        county = applicant.county if rng.random() < 0.85 else draw.county()
        accepted = draw.days_back(365)
        closed = accepted + timedelta(days=int(rng.expovariate(1 / 12)))
        if closed > draw.as_of or rng.random() < 0.05:
            result, closed_on = None, None
        else:
            result = draw.weighted({"调解成功": 0.82, "调解不成转诉讼": 0.12, "终止调解": 0.06})
            closed_on = closed
        yield {
            "dispute_id": f"TJ{county.code}{accepted:%Y%m}{index + 1:05d}",
            "dispute_type": rng.choice(DISPUTES),
            "applicant_name": applicant.name,
            "applicant_phone": None if rng.random() < 0.1 else draw.mobile(),
            "accept_date": accepted,
            "mediation_result": result,
            "close_date": closed_on,
            "region_code": county.code,
        }


MATERIALS = (
    ("WZ0101", "帐篷", "顶", 300),
    ("WZ0102", "棉被", "床", 1500),
    ("WZ0103", "折叠床", "张", 600),
    ("WZ0201", "冲锋舟", "艘", 6),
    ("WZ0202", "救生衣", "件", 800),
    ("WZ0301", "发电机", "台", 12),
    ("WZ0302", "抽水泵", "台", 20),
    ("WZ0401", "编织袋", "条", 20000),
    ("WZ0402", "应急照明灯", "盏", 200),
    ("WZ0501", "方便食品", "箱", 500),
)


@_source("yjt_emergency_supply_reserve", 360)
def _supplies(draw: _Draw, count: int) -> Iterator[Row]:
    rng = draw.rng
    months = draw.months(3)
    warehouses = max(1, count // (len(MATERIALS) * len(months)))
    for index in range(warehouses):
        county = draw.county()
        stock = {code: int(base * rng.lognormvariate(0, 0.5)) for code, _, _, base in MATERIALS}
        for month in months:
            for code, name, unit, _ in MATERIALS:
                stock[code] = max(0, int(stock[code] * rng.uniform(0.85, 1.1)))
                yield {
                    "warehouse_code": f"CB{county.code}{index + 1:02d}",
                    "material_code": code,
                    "check_month": month,
                    "material_name": name,
                    "quantity": stock[code],
                    "unit": unit,
                    "region_code": county.code,
                }


HAZARDS = _words(
    "消防通道堆放杂物、配电箱未设置防护、有限空间作业未审批、危化品储存未分区、特种作业人员无证上岗、"
    "安全警示标志缺失、粉尘清扫不及时、叉车未定期检验"
)


@_source("yjt_work_safety_hazard", 400)
def _hazards(draw: _Draw, count: int) -> Iterator[Row]:
    rng = draw.rng
    for index in range(count):
        enterprise = draw.enterprise("CEGH")
        found = draw.days_back(365)
        major = rng.random() < 0.05
        rectified = rng.random() < min(0.95, (draw.as_of - found).days / 60)
        yield {
            "hazard_id": f"YH{found:%Y%m%d}{index + 1:05d}",
            "credit_code": enterprise.credit_code,
            "enterprise_name": enterprise.name,
            "hazard_level": "重大隐患" if major else "一般隐患",
            "hazard_description": rng.choice(HAZARDS),
            "found_date": found,
            "rectified": rectified,
            "region_code": enterprise.county.code,
        }


@_source("wz_urban_rural_community", 400)
def _communities(draw: _Draw, count: int) -> Iterator[Row]:
    rng = draw.rng
    seen: set[str] = set()
    quarter_start = date(draw.as_of.year, 3 * ((draw.as_of.month - 1) // 3) + 1, 1)
    quarter_end = quarter_start - timedelta(days=1)  # of the last full quarter
    while len(seen) < count:
        county = draw.county(city="330300")
        kind = draw.weighted({"城市社区": 0.3, "农村社区": 0.15, "行政村": 0.55})
        village = rng.randint(1, 99) + (0 if kind != "行政村" else 200)
        code = f"{county.code}{rng.randint(1, 30):03d}{village:03d}"
        if code in seen:
            continue
        seen.add(code)
        households = int(rng.lognormvariate(math.log(900 if kind == "行政村" else 2500), 0.5))
        workers = max(1, households // rng.randint(250, 500))
        yield {
            "community_code": code,
            "community_name": f"{draw.place()}{'村' if kind == '行政村' else '社区'}",
            "community_type": kind,
            "grid_count": max(1, households // rng.randint(250, 400)),
            "household_count": None if rng.random() < 0.03 else households,
            "worker_count": None if rng.random() < 0.05 else workers,
            "stat_date": quarter_end,
            "region_code": county.code,
        }


HOTLINE_TOPICS = {
    # topic: the department that handles it, what callers say
    "城乡建设": (
        "住房和城乡建设局",
        _words(
            "反映{place}小区电梯故障长期未修复、反映{place}小区楼顶渗水，物业推诿、咨询老旧小区改造进度"
        ),
    ),
    "生态环境": (
        "生态环境分局",
        _words(
            "反映{street}附近工地夜间施工噪音扰民、反映{street}餐饮店油烟扰民、反映{place}河道有异味"
        ),
    ),
    "交通运输": (
        "交通运输局",
        _words("建议{street}公交线路增加班次、反映出租车拒载、反映{street}路面破损"),
    ),
    "市场监管": (
        "市场监督管理局",
        _words(
            "反映{street}某健身房关门，预付卡要求退款、反映购买的商品存在质量问题、反映超市销售过期食品"
        ),
    ),
    "劳动社保": (
        "人力资源和社会保障局",
        _words("反映{place}某公司拖欠工资、咨询社保关系转移办理、咨询灵活就业人员参保"),
    ),
    "医疗卫生": ("卫生健康局", _words("咨询疫苗接种时间、反映医院挂号难、咨询托育机构备案")),
    "教育": ("教育局", _words("咨询义务教育入学政策、反映校外培训机构退费难")),
    "城市管理": (
        "综合行政执法局",
        _words("反映{street}占道经营、反映{place}小区违章搭建、反映{street}垃圾清运不及时"),
    ),
    "民政": ("民政局", _words("咨询高龄津贴申领、咨询低保申请条件")),
    "公共安全": ("公安分局", _words("反映{street}夜间飙车扰民、咨询户口迁移办理")),
}
HOTLINE_CHANNELS = {"电话": 0.55, "浙里办": 0.2, "网站": 0.08, "微信": 0.12, "短信": 0.03}
HOTLINE_CHANNELS["信件"] = 0.02
HOTLINE_MONTH = (0.85, 0.8, 0.95, 1.0, 1.0, 1.1, 1.25, 1.25, 1.1, 0.95, 0.9, 0.85)
# calls by hour of day: a morning peak, a lunch dip, an afternoon peak
HOTLINE_HOUR = (0.2,) * 7 + (0.6, 1.4, 1.8, 1.7, 1.1, 0.9, 1.3, 1.6, 1.6, 1.4, 1.0, 0.7, 0.6)
HOTLINE_HOUR += (0.5, 0.4, 0.3, 0.2)


@_source("zfw_hotline_12345_order", 10000, Layout(format="jsonl", headers="name"), duplicates=2)
def _hotline(draw: _Draw, count: int) -> Iterator[Row]:
    rng = draw.rng
    first = draw.as_of - timedelta(days=364)
    days = [first + timedelta(days=offset) for offset in range(365)]
    weights = [HOTLINE_MONTH[d.month - 1] * (1.0 if d.weekday() < 5 else 0.7) for d in days]
    per_day = Counter(rng.choices(days, weights, k=count))
    topics = list(HOTLINE_TOPICS)
    hours = range(24)
    end = datetime.combine(draw.as_of, time(23, 59, 59))
    for day in days:
        moments = sorted(
            datetime.combine(day, time(hour, rng.randrange(60), rng.randrange(60)))
            for hour in rng.choices(hours, HOTLINE_HOUR, k=per_day[day])
        )
        for serial, received in enumerate(moments, start=1):
            county = draw.county()
            topic = rng.choice(topics)
            department, sayings = HOTLINE_TOPICS[topic]
            channel = draw.weighted(HOTLINE_CHANNELS)
            handler = draw.agency(county, department)
            content = rng.choice(sayings).format(place=draw.place(), street=draw.fake.street_name())
            if rng.random() < 0.02:
                category, content = "表扬", f"表扬{handler}工作人员办事耐心、答复及时"
            elif content.startswith(("咨询", "建议")):
                category = content[:2]
            else:
                category = draw.weighted({"投诉": 0.6, "求助": 0.3, "举报": 0.1})
            caller = None if rng.random() < 0.15 else draw.person(min_age=16)
            # callers by phone leave their number; online, most do
            reachable = caller is not None and (channel == "电话" or rng.random() < 0.7)
            handled = received + timedelta(hours=rng.lognormvariate(math.log(30), 1.0))
            closed: datetime | None = handled
            satisfied = None
            if rng.random() < 0.01 and (end - received).days < 5:
                status, closed = "待派单", None
            elif handled > end:
                status, closed = "办理中", None
            elif (end - handled).days >= 3 and rng.random() < 0.8:
                quick = handled - received < timedelta(days=2)
                status, satisfied = "已回访", rng.random() < (0.96 if quick else 0.84)
            else:
                status = "已办结"
            yield {
                "order_id": f"{received:%Y%m%d}{serial:05d}",
                "received_at": received,
                "channel": channel,
                "category": category,
                "topic": topic,
                "content": content,
                "caller_name": caller.name if caller else None,
                "caller_phone": draw.mobile() if reachable else None,
                "handling_department": handler,
                "status": status,
                "closed_at": closed,
                "satisfied": satisfied,
                "region_code": county.code,
            }


# ---------------------------------------------------------------------------------------------
# the counties' monthly monitoring returns, which the brain's indicators are computed from

MONITORING = "dsj_county_monthly_monitoring"
# item code -> the provincial department that checks and reports it
MONITORING_ITEMS = {
    "resident_population": "省统计局",
    "childcare_places": "省卫生健康委",
    "elderly_population": "省民政厅",
    "elderly_care_beds": "省民政厅",
    "urban_income": "省统计局",
    "rural_income": "省统计局",
    "online_services": "省大数据局",
    "online_services_done_online": "省大数据局",
    "enforcement_cases_closed": "省司法厅",
    "enforcement_cases_on_time": "省司法厅",
    "business_openings": "省市场监管局",
    "business_opening_days": "省市场监管局",
    "disputes_mediated": "省委政法委",
    "disputes_resolved": "省委政法委",
    "criminal_cases": "省公安厅",
    "grid_events": "省委政法委",
    "grid_events_on_time": "省委政法委",
    "hotline_orders": "省委政法委",
    "hotline_orders_on_time": "省委政法委",
    "hotline_visited": "省委政法委",
    "hotline_satisfied": "省委政法委",
    "pm25": "省生态环境厅",
    "good_air_days": "省生态环境厅",
    "hazards_found": "省应急管理厅",
    "hazards_rectified": "省应急管理厅",
    "party_members_trained": "省委组织部",
    "cultural_visits": "省文化和旅游厅",
    "digital_core_revenue": "省经信厅",
}
# a part and the whole it is counted in, in the same county and month
MONITORING_PARTS = {
    "online_services_done_online": "online_services",
    "enforcement_cases_on_time": "enforcement_cases_closed",
    "disputes_resolved": "disputes_mediated",
    "grid_events_on_time": "grid_events",
    "hotline_orders_on_time": "hotline_orders",
    "hotline_visited": "hotline_orders",
    "hotline_satisfied": "hotline_visited",
    "hazards_rectified": "hazards_found",
}
# what goes wrong, from their first bad month on, in the counties the plan picks
DETERIORATING_ITEMS = {
    "childcare_places": "托位数停滞并逐月减少约0.6%",
    "hotline_orders_on_time": "按时办结率下降约6个百分点",
    "pm25": "PM2.5浓度上升约25%",
    "enforcement_cases_on_time": "按期办结率下降约7个百分点",
}
# seasonal factors, January to December, each averaging about 1
SEASON_INCOME_URBAN = (1.22, 0.93, 0.95, 0.96, 0.95, 0.98, 0.99, 0.96, 0.97, 0.98, 0.99, 1.12)
SEASON_INCOME_RURAL = (1.25, 0.95, 0.92, 0.93, 0.95, 0.97, 0.98, 0.97, 1.0, 1.02, 0.99, 1.07)
SEASON_SERVICES = (1.05, 0.7, 1.15, 1.05, 1.0, 1.05, 1.0, 0.98, 1.0, 0.9, 1.02, 1.1)
SEASON_ENFORCEMENT = (0.9, 0.6, 1.0, 1.0, 1.05, 1.1, 1.0, 1.0, 1.05, 0.9, 1.1, 1.3)
SEASON_OPENINGS = (0.95, 0.55, 1.2, 1.1, 1.05, 1.05, 1.0, 0.95, 1.0, 0.85, 1.05, 1.25)
SEASON_DISPUTES = (1.3, 1.2, 1.05, 0.95, 0.95, 0.95, 1.0, 0.95, 0.9, 0.9, 0.9, 0.95)
SEASON_CRIME = (0.95, 0.85, 0.95, 0.95, 1.0, 1.05, 1.1, 1.1, 1.05, 1.0, 1.0, 1.0)
SEASON_GRID = (0.9, 0.75, 1.0, 1.0, 1.05, 1.1, 1.1, 1.1, 1.05, 1.0, 0.98, 0.97)
SEASON_PM25 = (1.32, 1.2, 1.1, 0.97, 0.88, 0.76, 0.72, 0.73, 0.8, 0.93, 1.14, 1.28)
# ozone keeps summer days from being good even when particles are low
OZONE_BAD_SHARE = (0.0, 0.0, 0.01, 0.03, 0.06, 0.07, 0.06, 0.06, 0.05, 0.03, 0.01, 0.0)
# June is 安全生产月; the checks before the Spring Festival fill January
SEASON_HAZARDS = (1.15, 0.7, 1.05, 1.05, 1.05, 1.25, 0.95, 0.9, 1.0, 0.95, 0.95, 1.0)
SEASON_PARTY = (0.9, 0.6, 1.0, 1.05, 1.0, 1.25, 1.3, 0.95, 1.0, 1.0, 1.0, 0.95)
SEASON_CULTURE = (0.95, 1.2, 0.9, 0.95, 1.05, 0.9, 1.2, 1.25, 0.85, 1.1, 0.85, 0.8)


def _monitoring_plan(world: _World) -> tuple[list[County], dict[str, int]]:
    """The counties that report (all of them at scale 1.0) and, of those, the two to four
    that deteriorate, each with the index of its first bad month (three to five before the
    end). Drawn apart from the figures so that ``deteriorating_counties`` can tell them."""
    rng = random.Random(f"{world.seed}:{MONITORING}:plan")
    counties = world.counties
    wanted = max(3, round(len(counties) * world.scale))
    if wanted < len(counties):
        counties = sorted(rng.sample(counties, wanted))
    how_many = min(rng.randint(2, 4), len(counties) - 1)
    worse = sorted(rng.sample(counties, how_many))
    return counties, {c.code: COUNTY_SERIES_MONTHS - rng.randint(3, 5) for c in worse}


def deteriorating_counties(
    *, seed: int = DEFAULT_SEED, scale: float = 1.0, as_of: date = AS_OF
) -> dict[str, date]:
    """The counties whose items of ``DETERIORATING_ITEMS`` go wrong in the monitoring returns
    written with this seed, scale and ``as_of``, each with its first bad month."""
    world = _World(seed=seed, scale=scale, as_of=as_of)
    _, worse = _monitoring_plan(world)
    months = _Draw(world, MONITORING).months(COUNTY_SERIES_MONTHS)
    return {code: months[index] for code, index in worse.items()}


def _clamp(value: float, low: float, high: float) -> float:
    return min(high, max(low, value))


@_source(MONITORING, 0)
def _monitoring(draw: _Draw, count: int) -> Iterator[Row]:
    """Every county's monthly returns for three years, one row per county, item and month.

    Stocks (population, places, beds) are month-end values that move slowly; the rest are the
    month's counts, with their own trend and season. Shares of a whole (on time, done online,
    resolved…) wander inside a band and never exceed it.

    Two to four counties, picked by the seed (see ``deteriorating_counties``), deteriorate
    from three to five months before the end: their childcare places stall and then shrink
    by about 0.6% a month, the hotline's on-time share falls by six points, PM2.5 rises by a
    quarter (and with it the good-air days fall), and the enforcement cases' on-time share
    falls by seven points.
    """
    world = draw.world
    counties, worse = _monitoring_plan(world)
    months = draw.months(COUNTY_SERIES_MONTHS)
    mean = world.mean_weight()
    for county in counties:
        series = _monitoring_county(draw.rng, county.weight / mean, months, worse.get(county.code))
        for item, department in MONITORING_ITEMS.items():
            for month, value in zip(months, series[item], strict=True):
                yield {
                    "region_code": county.code,
                    "month": month,
                    "item_code": item,
                    "value": value,
                    "reporting_department": department,
                }


def _monitoring_county(
    rng: random.Random, size: float, months: list[date], onset: int | None
) -> dict[str, list[float]]:
    """One county's series by item; ``onset`` is the first bad month of a deteriorating one."""
    count = len(months)
    years = [index / 12 for index in range(count)]
    bad = [onset is not None and index >= onset for index in range(count)]

    def jitter(spread: float) -> float:
        return rng.lognormvariate(0, spread)

    # stocks: residents and the elderly among them
    base = _clamp(650_000 * size**0.55 * jitter(0.08), 180_000, 1_600_000)
    growth = _clamp(rng.gauss(0.005, 0.006), -0.008, 0.02)
    people = [round(base * (1 + growth) ** t * (1 + rng.gauss(0, 0.0003))) for t in years]
    old = _clamp(0.29 - 0.035 * size**0.5 + rng.gauss(0, 0.015), 0.19, 0.285)
    elderly = [round(p * (old + 0.004 * t)) for p, t in zip(people, years, strict=True)]
    series: dict[str, list[float]] = {"resident_population": people, "elderly_population": elderly}

    def flow(
        per_head: float, per: int, growth: float, season: tuple[float, ...], spread: float
    ) -> list[int]:
        """A month's count, ``per_head`` per ``per`` residents, growing ``growth`` a year."""
        out = []
        for i, month in enumerate(months):
            expected = people[i] / per * per_head * (1 + growth) ** years[i]
            out.append(round(expected * season[month.month - 1] * jitter(spread)))
        return out

    def part(
        whole: list[int],
        start: float,
        yearly: float,
        band: tuple[float, float],
        spread: float,
        drop: float = 0.0,
    ) -> list[int]:
        """A part of ``whole`` whose share starts near ``start`` and moves ``yearly`` a year
        within ``band``; ``drop`` comes off the share in a deteriorating county's bad months."""
        out = []
        for i, total in enumerate(whole):
            share = _clamp(start + yearly * years[i] + rng.gauss(0, spread), *band)
            if bad[i]:
                share -= drop
            out.append(min(total, round(total * share)))
        return out

    # childcare places per 1,000 residents, rising toward the 4.5 target; a few lag behind
    end = _clamp(rng.gauss(4.55, 0.35), 3.6, 5.2)
    rise = min(_clamp(rng.gauss(0.3, 0.07), 0.15, 0.45), (end - 3.1) / ((count - 1) / 12))
    places: list[int] = []
    for i in range(count):
        if bad[i]:
            places.append(round(places[-1] * 0.994))
            continue
        rate = end - rise * (count - 1 - i) / 12
        wanted = round(people[i] * rate / 1000 * (1 + rng.gauss(0, 0.003)))
        places.append(max(wanted, places[-1]) if places else wanted)
    series["childcare_places"] = places

    # beds per 100 elderly: institutions open now and then, so the count moves in steps
    per_hundred = rng.uniform(3.2, 5.4)
    beds: list[int] = []
    for i in range(count):
        target = round(elderly[i] * (per_hundred + 0.12 * years[i]) / 100 * jitter(0.01))
        beds.append(target if not beds or rng.random() < 0.35 else beds[-1])
    series["elderly_care_beds"] = beds

    # income of the month per resident, a year-end and Spring Festival bump
    urban = _clamp(5600 * size**0.12 * jitter(0.07), 4700, 6500)
    urban_growth = rng.gauss(0.05, 0.008)
    ratio = _clamp(rng.gauss(1.85 - 0.08 * (size - 1), 0.1), 1.6, 2.1)
    narrowing = rng.uniform(0.02, 0.04)
    series["urban_income"], series["rural_income"] = [], []
    for i, month in enumerate(months):
        trend = urban * (1 + urban_growth) ** years[i]
        series["urban_income"].append(
            round(trend * SEASON_INCOME_URBAN[month.month - 1] * jitter(0.015))
        )
        rural = trend / (ratio - narrowing * years[i]) * SEASON_INCOME_RURAL[month.month - 1]
        series["rural_income"].append(round(rural * jitter(0.015)))

    services = flow(rng.uniform(35, 60) * size**0.1, 1000, 0.06, SEASON_SERVICES, 0.04)
    series["online_services"] = services
    series["online_services_done_online"] = part(
        services, rng.uniform(0.80, 0.88), rng.uniform(0.02, 0.035), (0.80, 0.97), 0.005
    )

    cases = flow(rng.uniform(2.0, 4.0), 10_000, 0.0, SEASON_ENFORCEMENT, 0.1)
    series["enforcement_cases_closed"] = cases
    series["enforcement_cases_on_time"] = part(
        cases, rng.uniform(0.91, 0.975), 0.005, (0.88, 0.99), 0.008, drop=0.07
    )

    openings = flow(
        rng.uniform(2.5, 5.0) * size**0.3, 10_000, rng.gauss(0.03, 0.03), SEASON_OPENINGS, 0.08
    )
    series["business_openings"] = [max(1, n) for n in openings]
    days, faster = rng.uniform(1.4, 2.5), rng.uniform(0.2, 0.35)
    series["business_opening_days"] = [
        round(n * _clamp(days * math.exp(-faster * t) * jitter(0.05), 0.5, 2.5), 1)
        for n, t in zip(series["business_openings"], years, strict=True)
    ]

    disputes = flow(rng.uniform(5, 12), 10_000, -0.02, SEASON_DISPUTES, 0.06)
    series["disputes_mediated"] = disputes
    series["disputes_resolved"] = part(
        disputes, rng.uniform(0.91, 0.97), 0.003, (0.90, 0.98), 0.006
    )

    series["criminal_cases"] = flow(
        _clamp(rng.uniform(2.5, 6.0) * size**0.1, 2.2, 7.0), 10_000, -0.05, SEASON_CRIME, 0.08
    )

    grid = flow(rng.uniform(60, 140), 10_000, 0.04, SEASON_GRID, 0.05)
    series["grid_events"] = grid
    series["grid_events_on_time"] = part(grid, rng.uniform(0.92, 0.98), 0.004, (0.90, 0.99), 0.006)

    orders = flow(rng.uniform(120, 260), 10_000, 0.03, HOTLINE_MONTH, 0.05)
    series["hotline_orders"] = orders
    series["hotline_orders_on_time"] = part(
        orders, rng.uniform(0.94, 0.985), 0.003, (0.92, 0.99), 0.005, drop=0.06
    )
    visited = part(orders, rng.uniform(0.64, 0.76), 0.0, (0.6, 0.8), 0.01)
    series["hotline_visited"] = visited
    series["hotline_satisfied"] = part(
        visited, rng.uniform(0.90, 0.965), 0.004, (0.88, 0.98), 0.006
    )

    # air: a county's own level, cleaner each year, dirtier in winter
    level = rng.uniform(24, 31)
    series["pm25"], series["good_air_days"] = [], []
    for i, month in enumerate(months):
        pm25 = level * 0.97 ** years[i] * SEASON_PM25[month.month - 1] * jitter(0.05)
        if bad[i]:
            pm25 *= 1.25
        series["pm25"].append(round(pm25, 1))
        length = calendar.monthrange(month.year, month.month)[1]
        poor = 0.015 + 0.011 * max(0.0, pm25 - 20) + OZONE_BAD_SHARE[month.month - 1]
        poor = _clamp(poor + rng.gauss(0, 0.015), 0.0, 0.6)
        series["good_air_days"].append(length - round(length * poor))

    hazards = flow(rng.uniform(15, 45) * size**0.2, 10_000, 0.02, SEASON_HAZARDS, 0.07)
    series["hazards_found"] = hazards
    series["hazards_rectified"] = part(hazards, rng.uniform(0.88, 0.97), 0.005, (0.85, 0.99), 0.01)

    series["party_members_trained"] = flow(rng.uniform(8, 18), 1000, 0.02, SEASON_PARTY, 0.06)
    series["cultural_visits"] = flow(
        rng.uniform(60, 160) * size**0.15, 1000, rng.gauss(0.08, 0.02), SEASON_CULTURE, 0.06
    )

    revenue = 28 * size**1.5 * jitter(0.5)  # 亿元 a month
    revenue_growth = rng.gauss(0.1, 0.03)
    series["digital_core_revenue"] = [
        round(revenue * (1 + revenue_growth) ** t * SEASON_GDP[month.month - 1] * jitter(0.04), 2)
        for t, month in zip(years, months, strict=True)
    ]
    return series


__all__ = [
    "AS_OF",
    "DETERIORATING_ITEMS",
    "MONITORING_ITEMS",
    "MONITORING_PARTS",
    "SOURCES",
    "Layout",
    "SourceFile",
    "demo_resources",
    "deteriorating_counties",
    "layout",
    "write_sources",
]
