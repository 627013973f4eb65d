"""The demo province's gateway: systems, applications in every state, 回流 grants, a
credential that works as printed, and call history for the usage and audit pages."""

from __future__ import annotations

from pathlib import Path

from fastapi.testclient import TestClient
from sqlalchemy import func, select

from shuzhi.client import Client
from shuzhi.core.db import Database
from shuzhi.core.permissions import SYSTEM
from shuzhi.core.settings import get_settings
from shuzhi.demo.build import build
from shuzhi.gateway import ledger, oversight
from shuzhi.gateway.models import AccessLog, Application, Consumer, Grant
from shuzhi.server import create_app


def test_the_demo_gateway_has_every_state_and_a_working_credential(
    sqlite_db: Database, tmp_path: Path
) -> None:
    data_dir = get_settings().data_dir
    summary = build(sqlite_db, seed=7, data_dir=data_dir, scale=0.02)
    shown = summary["gateway"]
    with sqlite_db.session() as session:
        states = set(session.scalars(select(Application.state)))
        grants = {
            (grant.consumer.code, grant.resource.code): (grant.state, grant.region_code)
            for grant in session.scalars(select(Grant))
        }
        assert ledger.verify(session).intact
        flags = {flag.kind for flag in oversight.flags(session, actor=SYSTEM).data}
    assert states == {"pending", "escalated", "approved", "rejected", "withdrawn"}
    assert {state for state, _ in grants.values()} == {"active", "suspended", "expired"}
    # 回流: provincial resources granted to city and county systems for their own region
    assert grants[("hz_gaj_floating", "gat_resident_population")] == ("active", "330100")
    assert grants[("nb_wjw_childcare", "wjw_childcare_institution")] == ("active", "330200")
    assert grants[("xh_mzj_assist", "gat_resident_population")] == ("active", "330106")
    assert summary["gateway"]["calls"] > 1000
    assert flags == {"distinct_lookups", "machine_regular", "off_hours"}

    with TestClient(create_app(database=sqlite_db)) as http:
        client = Client(
            "http://testserver", key=shown["access_key"], secret=shown["secret"], session=http
        )
        page = client.records("gat_resident_population", limit=3)
    assert page["masking"]["id_card"] == "token" and page["masking"]["full_name"] == "clear"

    again = build(sqlite_db, seed=7, data_dir=data_dir, scale=0)
    assert again["gateway"] == {"consumers": 0}
    with sqlite_db.session() as session:
        assert session.scalar(select(func.count()).select_from(Consumer)) == 7
        assert session.scalar(select(func.count()).select_from(AccessLog)) == shown["calls"] + 1
