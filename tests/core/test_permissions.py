"""``allowed(actor, action, resource)``: deny by default, grants scoped by department and region."""

from __future__ import annotations

import pytest

from shuzhi.core.errors import PermissionDenied, Unauthenticated
from shuzhi.core.permissions import (
    ALL,
    ANONYMOUS,
    SYSTEM,
    Actor,
    Grant,
    Scope,
    allowed,
    covers,
    require,
)

GAT, HZ_GAJ, WJW = 10, 11, 20
HANGZHOU = frozenset({"330100", "330102", "330114"})


def actor(*grants: Grant, authenticated: bool = True) -> Actor:
    return Actor(id=1, name="someone", grants=grants, authenticated=authenticated)


def test_an_actor_without_grants_may_do_nothing() -> None:
    nobody = actor()

    assert not allowed(nobody, "catalog.edit")
    assert not allowed(nobody, "catalog.edit", Scope(department_id=GAT, region_code="330000"))


def test_a_grant_for_other_actions_does_not_help() -> None:
    reviewer = actor(Grant("reviewer", frozenset({"catalog.review"})))

    assert allowed(reviewer, "catalog.review")
    assert not allowed(reviewer, "catalog.edit")
    assert not allowed(reviewer, "catalog.edit", Scope(department_id=GAT))


def test_anonymous_is_denied_even_with_grants() -> None:
    unrestricted = Grant("platform_admin", frozenset({ALL}))
    anonymous_with_grant = actor(unrestricted, authenticated=False)

    assert not allowed(ANONYMOUS, "catalog.read_draft")
    assert not allowed(anonymous_with_grant, "catalog.edit")
    assert not allowed(anonymous_with_grant, "catalog.edit", Scope(department_id=GAT))


def test_department_grant_covers_only_its_departments() -> None:
    officer = actor(
        Grant("data_officer", frozenset({"catalog.edit"}), departments=frozenset({GAT, HZ_GAJ}))
    )

    assert allowed(officer, "catalog.edit", Scope(department_id=GAT, region_code="330000"))
    assert allowed(officer, "catalog.edit", Scope(department_id=HZ_GAJ, region_code="330100"))
    assert not allowed(officer, "catalog.edit", Scope(department_id=WJW, region_code="330000"))
    assert not allowed(officer, "catalog.edit", Scope(region_code="330000")), (
        "a resource of no department is outside a department grant"
    )


def test_region_grant_covers_only_its_regions() -> None:
    city = actor(Grant("analyst", frozenset({"catalog.edit"}), regions=HANGZHOU))

    assert allowed(city, "catalog.edit", Scope(department_id=WJW, region_code="330114"))
    assert not allowed(city, "catalog.edit", Scope(department_id=WJW, region_code="330200"))
    assert not allowed(city, "catalog.edit", Scope(department_id=WJW)), (
        "a resource of no region is outside a region grant"
    )


def test_department_and_region_grant_needs_both() -> None:
    both = actor(
        Grant(
            "data_officer",
            frozenset({"catalog.edit"}),
            departments=frozenset({GAT}),
            regions=HANGZHOU,
        )
    )

    assert allowed(both, "catalog.edit", Scope(department_id=GAT, region_code="330102"))
    assert not allowed(both, "catalog.edit", Scope(department_id=GAT, region_code="330000"))
    assert not allowed(both, "catalog.edit", Scope(department_id=WJW, region_code="330102"))


def test_platform_wide_action_needs_an_unrestricted_grant() -> None:
    department_auditor = actor(
        Grant("auditor", frozenset({"audit.read"}), departments=frozenset({GAT}))
    )
    region_auditor = actor(Grant("auditor", frozenset({"audit.read"}), regions=HANGZHOU))
    platform_auditor = actor(Grant("auditor", frozenset({"audit.read"})))

    assert not allowed(department_auditor, "audit.read")
    assert not allowed(region_auditor, "audit.read")
    assert allowed(platform_auditor, "audit.read")
    assert allowed(platform_auditor, "audit.read", Scope(department_id=WJW, region_code="330200"))


def test_any_grant_that_fits_is_enough() -> None:
    two_departments = actor(
        Grant("data_officer", frozenset({"catalog.edit"}), departments=frozenset({GAT})),
        Grant("data_officer", frozenset({"catalog.edit"}), departments=frozenset({WJW})),
    )

    assert allowed(two_departments, "catalog.edit", Scope(department_id=GAT))
    assert allowed(two_departments, "catalog.edit", Scope(department_id=WJW))
    assert not allowed(two_departments, "catalog.edit", Scope(department_id=HZ_GAJ))
    assert not allowed(two_departments, "catalog.edit")


def test_star_grants_every_action_within_its_scope() -> None:
    department_admin = actor(Grant("everything", frozenset({ALL}), departments=frozenset({GAT})))

    for action in ("catalog.edit", "audit.read", "a.future.action"):
        assert allowed(department_admin, action, Scope(department_id=GAT))
        assert not allowed(department_admin, action, Scope(department_id=WJW))
        assert not allowed(department_admin, action)
    assert allowed(SYSTEM, "a.future.action")
    assert allowed(SYSTEM, "regions.manage", Scope(department_id=WJW, region_code="330200"))


def test_star_in_the_action_is_not_a_wildcard_for_the_asker() -> None:
    editor = actor(Grant("data_officer", frozenset({"catalog.edit"})))

    assert not allowed(editor, ALL)


def test_require_tells_unauthenticated_from_forbidden() -> None:
    editor = actor(Grant("data_officer", frozenset({"catalog.edit"}), departments=frozenset({GAT})))

    require(editor, "catalog.edit", Scope(department_id=GAT))
    with pytest.raises(Unauthenticated):
        require(ANONYMOUS, "catalog.edit", Scope(department_id=GAT))
    with pytest.raises(PermissionDenied, match=r"someone may not catalog\.edit on resource x"):
        require(editor, "catalog.edit", Scope(department_id=WJW), what="resource x")


def test_covers_needs_one_grant_spanning_the_whole_scope() -> None:
    gat_admin = actor(
        Grant("admin", frozenset({"orgs.manage_users"}), departments=frozenset({GAT, HZ_GAJ}))
    )

    assert covers(gat_admin, "orgs.manage_users", departments=frozenset({HZ_GAJ}), regions=None)
    assert covers(
        gat_admin,
        "orgs.manage_users",
        departments=frozenset({GAT, HZ_GAJ}),
        regions=frozenset({"330100"}),
    )
    # a wider department set, or every department, is beyond it
    assert not covers(
        gat_admin, "orgs.manage_users", departments=frozenset({GAT, WJW}), regions=None
    )
    assert not covers(gat_admin, "orgs.manage_users", departments=None, regions=None)


def test_covers_a_region_scope_only_within_the_grants_regions() -> None:
    hangzhou = actor(Grant("admin", frozenset({"catalog.edit"}), regions=HANGZHOU))

    assert covers(
        hangzhou, "catalog.edit", departments=frozenset({GAT}), regions=frozenset({"330102"})
    )
    # no region named means every region, which a Hangzhou grant does not hold
    assert not covers(hangzhou, "catalog.edit", departments=frozenset({GAT}), regions=None)
    assert covers(SYSTEM, "catalog.edit", departments=None, regions=None)
    assert not covers(ANONYMOUS, "catalog.edit", departments=frozenset({GAT}), regions=None)
