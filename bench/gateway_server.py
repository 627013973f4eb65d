"""The server the gateway benchmark runs: shuzhi's app, plus one bare endpoint that runs
the same DuckDB query as a gateway read with no signature, grant, masking, limit or log.
It exists only here, for the benchmark; the product has no unchecked read.

    python -m uvicorn bench.gateway_server:app --workers 2
"""

from __future__ import annotations

import socket
from asyncio import base_events

import duckdb
from fastapi import Query, Response

from shuzhi.core.settings import get_settings
from shuzhi.gateway import reads
from shuzhi.gateway.calls import json_body
from shuzhi.lake.engine import reader
from shuzhi.lake.queries import lake_of
from shuzhi.lake.rules import literal, quote
from shuzhi.server import create_app

CODE = "bench_people"
FIELDS = ("id_card", "full_name", "mobile", "region", "gender", "age", "born")


def _set_nodelay(sock: socket.socket) -> None:
    """asyncio sets TCP_NODELAY only on sockets whose proto is IPPROTO_TCP, and the socket
    uvicorn binds for ``--workers`` has proto 0: every second write of a response then
    waits for the client's delayed ACK, 40 ms on Linux. Both endpoints would pay it; it is
    switched off so that the benchmark measures the server, not the stall."""
    if sock.family in (socket.AF_INET, socket.AF_INET6) and sock.type == socket.SOCK_STREAM:
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)


base_events._set_nodelay = _set_nodelay

app = create_app()


@app.get("/bench/bare")
def bare(region: str, limit: int = Query(50, le=500)) -> Response:
    settings = get_settings()
    lake = lake_of(settings)
    snapshot = lake.current(CODE)
    path = lake.snapshot_file(CODE, snapshot)
    con: duckdb.DuckDBPyConnection = reader(settings)
    try:
        rows = con.execute(
            f"SELECT {', '.join(quote(name) for name in FIELDS)} "
            f"FROM read_parquet({literal(str(path))}) WHERE {quote('region')} = ? "
            f"ORDER BY {quote('id_card')} ASC LIMIT {limit + 1} OFFSET 0",
            [region],
        ).fetchall()
    finally:
        con.close()
    body = json_body(
        {
            "resource": CODE,
            "snapshot": snapshot,
            "data": [
                {name: reads._plain(value) for name, value in zip(FIELDS, row, strict=True)}
                for row in rows[:limit]
            ],
        }
    )
    return Response(body, media_type="application/json")


# matched first, as the gateway's own routes are: the limit pays no more routing than they do
app.router.routes.insert(0, app.router.routes.pop())
