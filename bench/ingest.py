"""Ingest a population-register CSV through shuzhi and, side by side in the same run,
through DuckDB's own ``COPY (SELECT * FROM read_csv(...)) TO '...parquet'``.

    .venv/bin/python bench/ingest.py --rows 10000000

Each side runs in its own process so that its peak memory (max RSS) is its own. The CSV
is generated once by DuckDB (valid citizen IDs with check characters, 0.5% broken) and
kept in the work directory for re-runs.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from shuzhi.core.standards import CITIZEN_ID_CHECK, CITIZEN_ID_WEIGHTS

COUNTIES = [
    "330102", "330105", "330106", "330108", "330109", "330110", "330111", "330112",
    "330122", "330127", "330182", "330203", "330205", "330206", "330211", "330212",
    "330302", "330303", "330304", "330381", "330382", "330402", "330411", "330502",
    "330602", "330702", "330781", "330782", "330802", "330902", "331002", "331102",
]  # fmt: skip

HEADER = "公民身份号码,姓名,性别,出生日期,民族,户籍地址,居住地址,行政区划代码,更新时间"


def generate(path: Path, rows: int) -> None:
    import duckdb

    body = "(region || strftime(birth, '%Y%m%d') || lpad(CAST(i % 1000 AS VARCHAR), 3, '0'))"
    total = " + ".join(
        f"{weight} * (ascii(substr(body, {position}, 1)) - 48)"
        for position, weight in enumerate(CITIZEN_ID_WEIGHTS, start=1)
    )
    counties = "[" + ", ".join(f"'{code}'" for code in COUNTIES) + "]"
    con = duckdb.connect()
    con.execute(
        f"""
        COPY (
          SELECT
            body || CASE WHEN i % 200 = 0 THEN 'Y'
                         ELSE substr('{CITIZEN_ID_CHECK}', (({total}) % 11) + 1, 1) END
              AS "公民身份号码",
            ['张', '王', '李', '赵', '陈', '刘', '杨', '黄'][1 + i % 8]
              || ['伟', '芳', '娜', '敏', '静', '丽', '强', '磊', '军', '洋'][1 + (i // 8) % 10]
              AS "姓名",
            CASE WHEN i % 2 = 0 THEN '男' ELSE '女' END AS "性别",
            strftime(birth, '%Y-%m-%d') AS "出生日期",
            '汉族' AS "民族",
            '浙江省某市某区某街道' || (i % 997) || '号' AS "户籍地址",
            CASE WHEN i % 3 = 0 THEN NULL ELSE '浙江省某市某路' || (i % 991) || '号' END
              AS "居住地址",
            region AS "行政区划代码",
            '2026-11-01 08:00:00' AS "更新时间"
          FROM (
            SELECT i, region, birth, {body} AS body FROM (
              SELECT i, {counties}[1 + (hash(i) % {len(COUNTIES)})::INT] AS region,
                     DATE '1940-01-01' + (hash(i * 7) % 29000)::INT AS birth
              FROM range({rows}) t(i)
            )
          )
        ) TO '{path}' (HEADER, DELIMITER ',')
        """
    )


def duckdb_side(csv: Path, out: Path) -> dict:
    import duckdb

    started = time.perf_counter()
    con = duckdb.connect()
    con.execute(
        # exactly the baseline the issue names: DuckDB's defaults, sniffing and types included
        f"COPY (SELECT * FROM read_csv('{csv}')) TO '{out}'"
    )
    return {"seconds": time.perf_counter() - started}


def shuzhi_side(csv: Path, data_dir: Path) -> dict:
    os.environ["SHUZHI_DATA_DIR"] = str(data_dir)
    from shuzhi.catalog import service as catalog
    from shuzhi.catalog.schemas import ResourceCreate
    from shuzhi.core import plugins
    from shuzhi.core.db import get_database
    from shuzhi.core.permissions import SYSTEM
    from shuzhi.lake import service
    from shuzhi.lake.connectors import SourceSpec
    from shuzhi.orgs import service as orgs
    from shuzhi.orgs.schemas import DepartmentCreate
    from shuzhi.regions import service as regions

    db = get_database()
    db.upgrade("head")
    with db.transaction() as session:
        regions.load_builtin(session, actor=SYSTEM)
        orgs.sync_builtin_roles(session)
        orgs.create_department(
            session,
            actor=SYSTEM,
            data=DepartmentCreate(code="zj_gat", name="浙江省公安厅", region="330000"),
        )
        fields = [
            ("id_card", "公民身份号码", "string", "id_card", True),
            ("full_name", "姓名", "string", "name", False),
            ("gender", "性别", "string", "none", False),
            ("birth_date", "出生日期", "date", "other", False),
            ("ethnicity", "民族", "string", "other", False),
            ("household_address", "户籍地址", "string", "address", False),
            ("residence_address", "居住地址", "string", "address", False),
            ("region_code", "行政区划代码", "string", "none", False),
            ("updated_at", "更新时间", "datetime", "none", False),
        ]
        resource = catalog.create(
            session,
            actor=SYSTEM,
            data=ResourceCreate(
                code="gat_resident_population",
                name="浙江省常住人口基本信息",
                provider="zj_gat",
                system="digital_society",
                sharing="unconditional",
                region="330000",
                fields=[
                    {
                        "name": name,
                        "title": title,
                        "type": kind,
                        "pii": pii,
                        "primary_key": key,
                        "nullable": name == "residence_address",
                        "format": "region_code" if name == "region_code" else None,
                        "rules": {"values": ["男", "女"]} if name == "gender" else None,
                    }
                    for name, title, kind, pii, key in fields
                ],
            ),
        )
        for name in ("submit", "approve"):
            catalog.transition(session, actor=SYSTEM, code=resource.code, name=name)
    # the plugin registry (entry points of every installed package) is loaded once per
    # process, like the imports above: a server or worker has it before any batch
    plugins.manager()
    started = time.perf_counter()
    batch = service.ingest(
        db, actor=SYSTEM, code="gat_resident_population", source=SourceSpec(location=str(csv))
    )
    seconds = time.perf_counter() - started
    return {
        "seconds": seconds,
        "rows_read": batch.rows_read,
        "rows_loaded": batch.rows_loaded,
        "rows_quarantined": batch.rows_quarantined,
        "duplicates": batch.duplicates,
    }


def run_side(side: str, *args: str) -> dict:
    """One side in a fresh process, which reports its own time, peak memory and CPU."""
    output = subprocess.run(
        [sys.executable, __file__, "--side", side, *args],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    return json.loads(output.strip().splitlines()[-1])


def _own(result: dict) -> dict:
    """What a side's process reports about itself: its peak memory (max RSS) and its CPU
    time, start-up included (on a shared machine CPU time varies less than wall time, so
    it tells a real change from a busy neighbour)."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return {
        **result,
        "peak_rss_mib": round(usage.ru_maxrss / 1024),
        "process_cpu_seconds": round(usage.ru_utime + usage.ru_stime, 2),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rows", type=int, default=10_000_000)
    parser.add_argument("--work", type=Path, default=Path(tempfile.gettempdir()) / "shuzhi-bench")
    parser.add_argument(
        "--memory-limit", default=None, help="SHUZHI_LAKE__MEMORY_LIMIT for the ingest (e.g. 1GB)"
    )
    parser.add_argument(
        "--repeat", type=int, default=3, help="pairs of runs, the two sides alternating"
    )
    parser.add_argument("--side", choices=["duckdb", "shuzhi"])
    parser.add_argument("args", nargs="*")
    options = parser.parse_args()
    if options.side == "duckdb":
        print(json.dumps(_own(duckdb_side(Path(options.args[0]), Path(options.args[1])))))
        return
    if options.side == "shuzhi":
        print(json.dumps(_own(shuzhi_side(Path(options.args[0]), Path(options.args[1])))))
        return

    work = options.work
    work.mkdir(parents=True, exist_ok=True)
    csv = work / f"population-{options.rows}.csv"
    if not csv.exists():
        started = time.perf_counter()
        generate(csv, options.rows)
        print(f"generated {csv} in {time.perf_counter() - started:.1f} s", file=sys.stderr)
    size = csv.stat().st_size / 2**20
    if options.memory_limit:
        os.environ["SHUZHI_LAKE__MEMORY_LIMIT"] = options.memory_limit
    # the two sides alternate, so that a slow minute of a shared machine falls on both
    pairs = []
    for _ in range(options.repeat):
        baseline = run_side("duckdb", str(csv), str(work / "duckdb.parquet"))
        data_dir = Path(tempfile.mkdtemp(prefix="lake-", dir=work))
        try:
            ours = run_side("shuzhi", str(csv), str(data_dir))
        finally:
            shutil.rmtree(data_dir, ignore_errors=True)
        pairs.append((baseline, ours))
        print(json.dumps({"duckdb_copy": baseline, "shuzhi_ingest": ours}), file=sys.stderr)
    copy = statistics.median(baseline["seconds"] for baseline, _ in pairs)
    ingest = statistics.median(ours["seconds"] for _, ours in pairs)
    print(
        json.dumps(
            {
                "rows": options.rows,
                "csv_mib": round(size),
                "runs": len(pairs),
                "duckdb_copy_seconds": [round(baseline["seconds"], 2) for baseline, _ in pairs],
                "shuzhi_ingest_seconds": [round(ours["seconds"], 2) for _, ours in pairs],
                "ratios": [
                    round(ours["seconds"] / baseline["seconds"], 2) for baseline, ours in pairs
                ],
                "ratio_of_medians": round(ingest / copy, 2),
                "peak_rss_mib": {
                    "duckdb": max(baseline["peak_rss_mib"] for baseline, _ in pairs),
                    "shuzhi": max(ours["peak_rss_mib"] for _, ours in pairs),
                },
                "process_cpu_seconds": {
                    "duckdb": [baseline["process_cpu_seconds"] for baseline, _ in pairs],
                    "shuzhi": [ours["process_cpu_seconds"] for _, ours in pairs],
                },
                "counts": {
                    name: pairs[-1][1][name]
                    for name in ("rows_read", "rows_loaded", "rows_quarantined", "duplicates")
                },
                "memory_limit": options.memory_limit or "default (4GB)",
                "cores": os.cpu_count(),
            },
            indent=2,
            ensure_ascii=False,
        )
    )


if __name__ == "__main__":
    main()
