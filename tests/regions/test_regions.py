"""The region tree: the shipped Zhejiang divisions, tree queries, and loading CSV files."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from shuzhi.core.db import Database
from shuzhi.core.errors import NotFound, PermissionDenied, ShuzhiError, ValidationFailed
from shuzhi.core.models import ChangeLog
from shuzhi.core.permissions import SYSTEM, Actor
from shuzhi.regions import queries, service
from shuzhi.regions.models import Region
from shuzhi.regions.schemas import RegionLoadResult, RegionNode
from tests.conftest import World

# The eleven prefecture-level cities of Zhejiang (GB/T 2260) and how many county-level
# divisions each has since the 2021 Hangzhou redistricting (Wenzhou counts Longgang).
ZHEJIANG_CITIES = {
    "330100": ("杭州市", 13),
    "330200": ("宁波市", 10),
    "330300": ("温州市", 12),
    "330400": ("嘉兴市", 7),
    "330500": ("湖州市", 5),
    "330600": ("绍兴市", 6),
    "330700": ("金华市", 9),
    "330800": ("衢州市", 6),
    "330900": ("舟山市", 4),
    "331000": ("台州市", 9),
    "331100": ("丽水市", 9),
}

JIANGSU = """code,name,level,parent
320000,江苏省,province,
320100,南京市,city,320000
320102,玄武区,county,320100
"""


def load(
    db: Database, text: str, *, actor: Actor = SYSTEM, source: str = "jiangsu.csv"
) -> RegionLoadResult:
    with db.transaction() as session:
        return service.load_csv(session, actor=actor, text=text, source=source)


def region_count(db: Database) -> int:
    with db.session() as session:
        return queries.count(session)


def region(db: Database, code: str) -> Region | None:
    with db.session() as session:
        return session.get(Region, code)


# the shipped Zhejiang tree ---------------------------------------------------------


def test_zhejiang_has_one_province_eleven_cities_ninety_counties(db: Database) -> None:
    with db.session() as session:
        by_level = {
            level: {r.code: r for r in queries.search(session, level=level)[0]}
            for level in ("province", "city", "county", "town")
        }
        roots = queries.roots(session)

    assert list(by_level["province"]) == ["330000"]
    assert by_level["province"]["330000"].name == "浙江省"
    assert [r.code for r in roots] == ["330000"]
    assert {code: r.name for code, r in by_level["city"].items()} == {
        code: name for code, (name, _) in ZHEJIANG_CITIES.items()
    }
    assert all(r.parent_code == "330000" for r in by_level["city"].values())
    assert len(by_level["county"]) == 90
    assert by_level["town"] == {}
    assert region_count(db) == 1 + 11 + 90


@pytest.mark.parametrize(("city", "expected"), list(ZHEJIANG_CITIES.items()))
def test_each_city_has_its_county_level_divisions(
    db: Database, city: str, expected: tuple[str, int]
) -> None:
    with db.session() as session:
        counties, total = queries.search(session, parent=city)

    assert len(counties) == total == expected[1]
    assert all(r.level == "county" and r.code[:4] == city[:4] for r in counties)


@pytest.mark.parametrize(
    ("code", "name", "parent"),
    [
        ("330383", "龙港市", "330300"),  # county-level city since 2019, out of Cangnan
        ("331127", "景宁畲族自治县", "331100"),  # the only She autonomous county
        ("330114", "钱塘区", "330100"),  # created in 2021
        ("330113", "临平区", "330100"),
        ("330106", "西湖区", "330100"),
    ],
)
def test_known_county_level_divisions(db: Database, code: str, name: str, parent: str) -> None:
    found = region(db, code)

    assert found is not None
    assert (found.name, found.level, found.parent_code) == (name, "county", parent)
    assert found.path == f"/330000/{parent}/{code}/"


def test_abolished_divisions_are_absent(db: Database) -> None:
    # 江干区 and 下城区 were merged away in the 2021 Hangzhou redistricting
    assert region(db, "330104") is None
    assert region(db, "330103") is None


def test_ancestors_run_from_the_root_down(db: Database) -> None:
    with db.session() as session:
        assert [r.code for r in queries.ancestors(session, "330383")] == ["330000", "330300"]
        assert [r.code for r in queries.ancestors(session, "330300")] == ["330000"]
        assert queries.ancestors(session, "330000") == []


def test_subtree_is_the_region_and_everything_under_it(db: Database) -> None:
    with db.session() as session:
        wenzhou = queries.subtree(session, "330300")
        lishui_codes = queries.subtree_codes(session, "331100")
        province_codes = queries.subtree_codes(session, "330000")
        leaf = queries.subtree_codes(session, "330114")

    assert wenzhou[0].code == "330300"
    assert len(wenzhou) == 1 + 12
    assert "330383" in {r.code for r in wenzhou}
    assert all(r.code == "330300" or r.parent_code == "330300" for r in wenzhou)
    assert len(lishui_codes) == 1 + 9 and "331127" in lishui_codes
    assert "330383" not in lishui_codes
    assert len(province_codes) == region_count(db)
    assert leaf == frozenset({"330114"})


def test_tree_nests_cities_and_counties(db: Database) -> None:
    with db.session() as session:
        (province,) = queries.tree(session)
        (lishui,) = queries.tree(session, "331100")

    assert province.code == "330000"
    assert {child.code for child in province.children} == set(ZHEJIANG_CITIES)
    for city in province.children:
        assert len(city.children) == ZHEJIANG_CITIES[city.code][1]
        assert all(county.children == [] for county in city.children)
    assert lishui.code == "331100"
    assert "景宁畲族自治县" in {child.name for child in lishui.children}


def test_search_pages_and_counts_every_match(db: Database) -> None:
    with db.session() as session:
        first, total = queries.search(session, level="county", limit=50)
        rest, again = queries.search(session, level="county", limit=50, offset=50)
        matching = queries.count(session, level="county")

    assert total == again == matching == 90
    assert (len(first), len(rest)) == (50, 40)
    codes = [r.code for r in first + rest]
    assert len(set(codes)) == 90
    assert [r.path for r in first + rest] == sorted(r.path for r in first + rest)


def test_search_by_name_part_or_code_prefix(db: Database) -> None:
    with db.session() as session:
        by_name, named = queries.search(session, q="西湖")
        by_code, coded = queries.search(session, q="3311")

    assert ([r.code for r in by_name], named) == (["330106"], 1)
    assert coded == 1 + 9
    assert all(r.code.startswith("3311") for r in by_code)


@pytest.mark.parametrize("term", ["%", "_", "3301%", "33_1"])
def test_search_terms_are_not_wildcards(db: Database, term: str) -> None:
    with db.session() as session:
        assert queries.search(session, q=term) == ([], 0)
        assert queries.count(session, q=term) == 0


def test_a_percent_sign_in_a_name_is_found_as_itself(db: Database) -> None:
    load(db, JIANGSU + "320199,百分%区,county,320100\n320198,百分之区,county,320100\n")

    with db.session() as session:
        found, total = queries.search(session, q="百分%")

    assert ([r.code for r in found], total) == (["320199"], 1)


def test_unknown_region_is_not_found(db: Database) -> None:
    with db.session() as session:
        for query in (queries.get, queries.ancestors, queries.subtree, queries.subtree_codes):
            with pytest.raises(NotFound, match="999999"):
                query(session, "999999")
        with pytest.raises(NotFound):
            queries.tree(session, "999999")


def test_reloading_the_builtin_tree_changes_nothing(db: Database) -> None:
    before = region_count(db)
    with db.transaction() as session:
        result = service.load_builtin(session, actor=SYSTEM)

    assert (result.created, result.updated, result.unchanged) == (0, 0, before)
    assert region_count(db) == before


def test_unknown_builtin_tree_is_refused(db: Database) -> None:
    with pytest.raises(ValidationFailed, match="zhejiang"), db.transaction() as session:
        service.load_builtin(session, actor=SYSTEM, name="atlantis")


# loading other trees -----------------------------------------------------------------


def test_another_province_loads_beside_zhejiang(db: Database) -> None:
    before = region_count(db)

    result = load(db, JIANGSU)

    assert (result.created, result.updated, result.unchanged) == (3, 0, 0)
    assert region_count(db) == before + 3
    with db.session() as session:
        assert {r.code for r in queries.roots(session)} == {"320000", "330000"}
        assert [r.code for r in queries.ancestors(session, "320102")] == ["320000", "320100"]
        assert queries.subtree_codes(session, "320000") == {"320000", "320100", "320102"}
        assert "320102" not in queries.subtree_codes(session, "330000")
        trees = {node.code: node for node in queries.tree(session)}
        created = list(
            session.scalars(
                select(ChangeLog.object_id).where(
                    ChangeLog.action == "region.create", ChangeLog.object_id.like("32%")
                )
            )
        )
    assert set(trees) == {"320000", "330000"}
    nanjing: RegionNode = trees["320000"].children[0]
    assert (nanjing.code, nanjing.name, [c.code for c in nanjing.children]) == (
        "320100",
        "南京市",
        ["320102"],
    )
    assert region(db, "320102").path == "/320000/320100/320102/"
    assert sorted(created) == ["320000", "320100", "320102"]


def test_rows_may_come_before_their_parents(db: Database) -> None:
    reordered = "code,name,level,parent\n" + "\n".join(reversed(JIANGSU.strip().split("\n")[1:]))

    result = load(db, reordered)

    assert result.created == 3
    assert region(db, "320102").path == "/320000/320100/320102/"


def test_loading_twice_is_idempotent(db: Database) -> None:
    load(db, JIANGSU)
    with db.session() as session:
        logged = len(list(session.scalars(select(ChangeLog.id))))

    again = load(db, JIANGSU)

    assert (again.created, again.updated, again.unchanged) == (0, 0, 3)
    with db.session() as session:
        assert len(list(session.scalars(select(ChangeLog.id)))) == logged, "no change, no log"


def test_a_renamed_region_is_updated(db: Database) -> None:
    load(db, JIANGSU)

    result = load(db, JIANGSU.replace("玄武区", "玄武新区"))

    assert (result.created, result.updated, result.unchanged) == (0, 1, 2)
    assert region(db, "320102").name == "玄武新区"
    with db.session() as session:
        (log,) = session.scalars(select(ChangeLog).where(ChangeLog.action == "region.update"))
    assert (log.object_id, log.before, log.after) == (
        "320102",
        {"name": "玄武区"},
        {"name": "玄武新区"},
    )


def test_a_leaf_may_move_to_another_parent_and_its_path_follows(db: Database) -> None:
    # a county-level unit directly under the province (省直辖) later placed under a city
    load(db, JIANGSU + "320181,直辖县,county,320000\n")
    moved = JIANGSU + "320181,直辖县,county,320100\n"

    result = load(db, moved)

    assert (result.created, result.updated) == (0, 1)
    assert region(db, "320181").path == "/320000/320100/320181/"
    with db.session() as session:
        assert "320181" in queries.subtree_codes(session, "320100")


def test_a_region_with_children_cannot_move(db: Database) -> None:
    # moving it would leave its children's paths pointing at the old parent
    load(db, JIANGSU + "320181,直辖县,county,320000\n320181001,城关镇,town,320181\n")
    before = region_count(db)
    text = JIANGSU + "320181,直辖县,county,320100\n"

    with (
        pytest.raises(ValidationFailed, match=r"jiangsu\.csv:5: .*has children"),
        db.transaction() as session,
    ):
        service.load_csv(session, actor=SYSTEM, text=text, source="jiangsu.csv")

    assert region_count(db) == before
    assert region(db, "320181").parent_code == "320000"
    assert region(db, "320181001").path == "/320000/320181/320181001/"


def test_a_code_must_nest_under_its_parent(db: Database) -> None:
    before = region_count(db)
    text = JIANGSU + "320200,无锡市,city,320000\n320205,锡山区,county,320100\n"

    with (
        pytest.raises(
            ValidationFailed, match=r"jiangsu\.csv:6: code 320205 does not start with 3201"
        ),
        db.transaction() as session,
    ):
        service.load_csv(session, actor=SYSTEM, text=text, source="jiangsu.csv")

    assert region_count(db) == before


def test_towns_load_under_a_shipped_county(db: Database) -> None:
    text = "code,name,level,parent\n330102001,清波街道,town,330102\n"

    load(db, text, source="hangzhou_towns.csv")

    town = region(db, "330102001")
    assert town.path == "/330000/330100/330102/330102001/"
    with db.session() as session:
        assert "330102001" in queries.subtree_codes(session, "330100")


def test_a_byte_order_mark_is_ignored(db: Database) -> None:
    result = load(db, "\ufeff" + JIANGSU)

    assert result.created == 3


HEADER = "code,name,level,parent\n"
NANJING = HEADER + "320000,江苏省,province,\n320100,南京市,city,320000\n"


@pytest.mark.parametrize(
    ("text", "line", "reason"),
    [
        (NANJING + "320102,玄武区,district,320100\n", 4, "level 'district'"),
        (NANJING + "32010,玄武区,county,320100\n", 4, "not a valid county code"),
        (NANJING + "320110,玄武区,city,320000\n", 4, "not a valid city code"),
        (NANJING + "320200,无锡市,county,320100\n", 4, "ends in 00"),
        (NANJING + "320102,玄武区,county,329900\n", 4, "parent 329900 of 320102 is unknown"),
        (NANJING + "320200,无锡市,city,320100\n", 4, "not above a city"),
        (NANJING + "320102,玄武区,county,\n", 4, "without parent"),
        (NANJING + "320102,,county,320100\n", 4, "no name"),
        (NANJING + f"320102,{'玄' * 61},county,320100\n", 4, "61 characters; at most 60"),
        (NANJING + "320102,玄武\x00区,county,320100\n", 4, "control character"),
        (NANJING + '320102,"' + "x" * 200_000 + '",county,320100\n', 4, "not valid CSV"),
        (NANJING + '320102,"玄武\n' + "x" * 200_000 + '",county,320100\n', 5, "field limit"),
        (NANJING + "320100,南京市,city,320000\n", 4, "320100 appears twice"),
        (
            HEADER + "320000,江苏省,province,\n320100,南京市,town,320000\n",
            3,
            "not a valid town code",
        ),
    ],
)
def test_a_bad_row_rejects_the_whole_file(db: Database, text: str, line: int, reason: str) -> None:
    before = region_count(db)

    with pytest.raises(ValidationFailed) as caught, db.transaction() as session:
        service.load_csv(session, actor=SYSTEM, text=text, source="jiangsu.csv")

    assert caught.value.detail.startswith(f"jiangsu.csv:{line}: ")
    assert reason in caught.value.detail
    assert region_count(db) == before
    assert region(db, "320000") is None


def test_a_name_as_wide_as_its_column_loads(db: Database) -> None:
    name = "玄" * 60

    load(db, NANJING + f"320102,{name},county,320100\n")

    assert region(db, "320102").name == name


def test_renaming_a_region_beyond_its_column_is_refused(db: Database) -> None:
    """region.name is 60 characters wide: a longer name for a region already stored is
    refused, neither kept whole (SQLite) nor left to fail in the database (PostgreSQL)."""
    text = HEADER + f"330100,{'杭' * 70},city,330000\n"

    with pytest.raises(ShuzhiError):
        load(db, text, source="long.csv")

    assert len(region(db, "330100").name) <= 60


def test_a_county_directly_under_a_province_is_accepted(db: Database) -> None:
    # 省直辖县级行政单位 (e.g. in Hubei or Hainan) hang a county-level unit on a province
    text = HEADER + "420000,湖北省,province,\n429004,仙桃市,county,420000\n"

    assert load(db, text, source="hubei.csv").created == 2
    assert region(db, "429004").path == "/420000/429004/"


@pytest.mark.parametrize("header", ["code,name,parent", "code,level,parent", "region,name,level"])
def test_a_missing_column_is_refused(db: Database, header: str) -> None:
    before = region_count(db)
    text = header + "\n320000,江苏省,province\n"

    with (
        pytest.raises(ValidationFailed, match="missing column") as caught,
        db.transaction() as session,
    ):
        service.load_csv(session, actor=SYSTEM, text=text, source="jiangsu.csv")

    assert caught.value.detail.startswith("jiangsu.csv")
    assert region_count(db) == before


def test_a_bad_row_after_changes_to_existing_regions_leaves_them_unchanged(db: Database) -> None:
    text = (
        HEADER
        + "330000,浙江省(改),province,\n"
        + "330383,龙港市(改),county,330300\n"
        + "330384,某县,county,339999\n"
    )

    with pytest.raises(ValidationFailed, match=r"regions\.csv:4"), db.transaction() as session:
        service.load_csv(session, actor=SYSTEM, text=text, source="regions.csv")

    assert region(db, "330000").name == "浙江省"
    assert region(db, "330383").name == "龙港市"


@pytest.mark.parametrize("who", ["viewer", "gat_admin", "gat_officer", "auditor"])
def test_only_region_managers_may_load(world: World, who: str) -> None:
    before = region_count(world.database)

    with pytest.raises(PermissionDenied), world.database.transaction() as session:
        service.load_csv(session, actor=world.actors[who], text=JIANGSU, source="jiangsu.csv")

    assert region_count(world.database) == before


def test_platform_admin_may_load_and_is_recorded(world: World) -> None:
    admin = world.actors["admin"]

    load(world.database, JIANGSU, actor=admin)

    with world.database.session() as session:
        logs = list(
            session.scalars(
                select(ChangeLog).where(
                    ChangeLog.action == "region.create", ChangeLog.object_id == "320102"
                )
            )
        )
    assert [(log.actor_id, log.actor_name) for log in logs] == [(admin.id, "admin")]
    assert logs[0].after["path"] == "/320000/320100/320102/"
