"""Gateway enumerations, the application and grant state machines, and the refusals of a
signed call, each with the problem type that names it."""

from __future__ import annotations

import re

from shuzhi.core.enums import LabeledEnum
from shuzhi.core.errors import NotFound, PermissionDenied, ShuzhiError, Unauthenticated
from shuzhi.core.workflow import Machine, State, Transition

CONSUMER_CODE = re.compile(r"^[a-z][a-z0-9_]{2,63}$")
ACCESS_KEY_PREFIX = "SZ"
# the administrative matter (政务服务事项) code; long and varied between provinces
PURPOSE_CODE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._:/-]{1,63}$")


class Right(LabeledEnum):
    read = ("read", "数据查询", "read records")
    verify = ("verify", "数据核验", "verify attributes")
    call = ("call", "接口调用", "call the service")


HTTP_METHODS = ("GET", "POST", "PUT", "PATCH", "DELETE")


class MaskMode(LabeledEnum):
    clear = ("clear", "明文", "clear")
    masked = ("masked", "脱敏", "masked")
    token = ("token", "令牌化", "token")
    hidden = ("hidden", "不提供", "hidden")


class CredentialState(LabeledEnum):
    """A credential's state, derived from its revocation and expiry (never stored)."""

    active = ("active", "有效", "active")
    rotating = ("rotating", "轮换过渡中", "rotating out")
    expired = ("expired", "已过期", "expired")
    revoked = ("revoked", "已撤销", "revoked")


APPLICATION = Machine(
    "access application",
    states=[
        State("pending", "待审批", "pending"),
        State("escalated", "逾期督办", "escalated"),
        State("approved", "已批准", "approved", final=True),
        State("rejected", "已驳回", "rejected", final=True),
        State("withdrawn", "已撤回", "withdrawn", final=True),
    ],
    initial="pending",
    transitions=[
        Transition(
            "approve",
            frozenset({"pending", "escalated"}),
            "approved",
            "gateway.decide",
            "批准",
            "approve",
        ),
        Transition(
            "reject",
            frozenset({"pending", "escalated"}),
            "rejected",
            "gateway.decide",
            "驳回",
            "reject",
            needs_comment=True,
        ),
        Transition(
            "withdraw",
            frozenset({"pending", "escalated"}),
            "withdrawn",
            "gateway.apply",
            "撤回申请",
            "withdraw",
        ),
        Transition(
            "escalate",
            frozenset({"pending"}),
            "escalated",
            "gateway.operate",
            "逾期上报",
            "escalate",
        ),
    ],
)

GRANT = Machine(
    "access grant",
    states=[
        State("active", "有效", "active"),
        State("suspended", "暂停", "suspended"),
        State("revoked", "已撤销", "revoked", final=True),
        State("expired", "已过期", "expired", final=True),
    ],
    initial="active",
    transitions=[
        Transition(
            "suspend",
            frozenset({"active"}),
            "suspended",
            "gateway.decide",
            "暂停",
            "suspend",
            needs_comment=True,
        ),
        Transition(
            "resume", frozenset({"suspended"}), "active", "gateway.decide", "恢复", "resume"
        ),
        Transition(
            "revoke",
            frozenset({"active", "suspended"}),
            "revoked",
            "gateway.decide",
            "撤销",
            "revoke",
            needs_comment=True,
        ),
        Transition(
            "expire",
            frozenset({"active", "suspended"}),
            "expired",
            "gateway.operate",
            "到期",
            "expire",
        ),
    ],
)


# Refusals of a gateway call. Each names itself in the problem type, so a consumer's
# developer sees at once which check failed.


class SignatureRejected(Unauthenticated):
    slug = "signature"
    title = "The call is not signed correctly"

    @property
    def headers(self) -> dict[str, str]:
        return {"WWW-Authenticate": "Shuzhi-HMAC-SHA256"}


class Unsigned(SignatureRejected):
    slug = "unsigned"
    title = "The call carries no signature"


class UnknownKey(SignatureRejected):
    slug = "unknown-key"
    title = "Unknown access key"


class RevokedKey(SignatureRejected):
    slug = "revoked-key"
    title = "The access key is revoked or expired"


class StaleDate(SignatureRejected):
    slug = "stale-date"
    title = "X-Shuzhi-Date is too far from the server's clock"


class ReplayedNonce(SignatureRejected):
    slug = "replayed-nonce"
    title = "The nonce was already used"


class BadSignature(SignatureRejected):
    slug = "bad-signature"
    title = "The signature does not match"


class NoGrant(PermissionDenied):
    slug = "no-grant"
    title = "No grant for this resource"


class GrantInactive(PermissionDenied):
    slug = "grant-inactive"
    title = "The grant is suspended, revoked or expired"


class FieldNotGranted(PermissionDenied):
    slug = "field-not-granted"
    title = "A field outside the grant"


class RightNotGranted(PermissionDenied):
    slug = "right-not-granted"
    title = "The grant does not give this right"


class NotShared(PermissionDenied):
    slug = "not-shared"
    title = "The resource is not shared"


class CursorExpired(NotFound):
    slug = "cursor-expired"
    title = "The page this cursor points into is gone"
    status = 410


class MethodNotAllowed(ShuzhiError):
    slug = "method-not-allowed"
    title = "The service does not take this method"
    status = 405


class PathNotAllowed(PermissionDenied):
    slug = "path-not-allowed"
    title = "The service does not offer this path"


class UpstreamFailed(ShuzhiError):
    slug = "upstream-error"
    title = "The department's service failed"
    status = 502


class UpstreamTimeout(ShuzhiError):
    slug = "upstream-timeout"
    title = "The department's service did not answer in time"
    status = 504


class RulesChanging(ShuzhiError):
    slug = "rules-changing"
    title = "The access rules changed while the call ran"
    status = 503
