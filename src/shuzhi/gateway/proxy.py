"""业务协同: a consumer calls a department's service through the gateway.

The call is signed, granted (the ``call`` right), limited and logged like a read. It goes
only to the service's registered base URL (on the operator's allow-list), with an allowed
method and path; redirects are never followed; a slow, failing or oversized upstream
answer comes back as a 502 or 504 problem naming the service. The consumer's identity,
purpose and end user travel upstream in ``X-Shuzhi-*`` headers; its signature does not.
"""

from __future__ import annotations

import http.client
from urllib.parse import quote, urlsplit

from shuzhi.core.context import current_request_id
from shuzhi.core.errors import NotFound
from shuzhi.core.settings import Settings
from shuzhi.gateway import signing
from shuzhi.gateway.access import Access
from shuzhi.gateway.calls import Caller, Outcome, check_limits
from shuzhi.gateway.models import Service
from shuzhi.gateway.reads import grant_in_force, shared_resource
from shuzhi.gateway.rules import (
    MethodNotAllowed,
    PathNotAllowed,
    Right,
    UpstreamFailed,
    UpstreamTimeout,
)
from shuzhi.gateway.service import registered_service

# what a consumer may send upstream, and what comes back; nothing else crosses
FORWARDED = ("content-type", "accept", "accept-language")
RETURNED = ("content-type", "content-disposition", "cache-control")


def path_allowed(path: str, patterns: list[str]) -> bool:
    """``*`` stands for one segment, ``**`` for any number (the rest of the path)."""
    parts = [part for part in path.split("/") if part]
    for pattern in patterns:
        wanted = [part for part in pattern.split("/") if part]
        if _match(parts, wanted):
            return True
    return False


def _match(parts: list[str], wanted: list[str]) -> bool:
    if not wanted:
        return not parts
    head, rest = wanted[0], wanted[1:]
    if head == "**":
        return any(_match(parts[index:], rest) for index in range(len(parts) + 1))
    if not parts:
        return False
    return (head == "*" or head == parts[0]) and _match(parts[1:], rest)


def call(
    access: Access,
    caller: Caller,
    outcome: Outcome,
    *,
    code: str,
    path: str,
    method: str,
    query: list[tuple[str, str]],
    body: bytes,
    headers: dict[str, str],
    settings: Settings,
) -> None:
    resource = shared_resource(access, code)
    grant = grant_in_force(access, caller, resource, Right.call, outcome)
    service = registered_service(access.session, resource.id)
    if service is None:
        raise NotFound(f"resource {code} has no service registered at the gateway")
    if method not in service.methods:
        raise MethodNotAllowed(f"service {code} takes {', '.join(service.methods)}, not {method}")
    clean = "/" + path.strip("/")
    if any(part in ("..", ".") for part in clean.split("/")) or not path_allowed(
        clean, service.paths
    ):
        raise PathNotAllowed(f"service {code} offers no path {clean[:200]}")
    check_limits(access, grant, exact=True)
    # the call goes out once: the rules it was decided on are checked first, and it is
    # logged as decided whatever changes while the department answers
    access.confirm()
    outcome.final = True
    status, media_type, answer, passed = _forward(
        service, code, method, clean, query, body, headers, caller
    )
    outcome.status = status
    outcome.body = answer
    outcome.media_type = media_type
    outcome.headers = passed


def _forward(
    service: Service,
    code: str,
    method: str,
    path: str,
    query: list[tuple[str, str]],
    body: bytes,
    headers: dict[str, str],
    caller: Caller,
) -> tuple[int, str, bytes, dict[str, str]]:
    url = urlsplit(service.base_url)
    connection_type = (
        http.client.HTTPSConnection if url.scheme == "https" else http.client.HTTPConnection
    )
    target = quote(url.path.rstrip("/") + path, safe="/-._~!$&'()*+,;=:@%")
    encoded = signing.canonical_query(query)
    if encoded:
        target += f"?{encoded}"
    sent = {name: value for name, value in headers.items() if name in FORWARDED}
    sent["X-Request-ID"] = current_request_id() or ""
    sent["X-Shuzhi-Consumer"] = caller.consumer_code
    if caller.purpose:
        sent[signing.HEADER_PURPOSE] = caller.purpose
    if caller.end_user:
        sent[signing.HEADER_USER] = caller.end_user
    limit = service.max_response_kb * 1024
    where = f"{url.hostname}{f':{url.port}' if url.port else ''}"
    connection = connection_type(url.hostname, url.port, timeout=service.timeout_seconds)
    try:
        connection.request(method, target, body=body or None, headers=sent)
        response = connection.getresponse()
        answer = response.read(limit + 1)
    except TimeoutError:
        raise UpstreamTimeout(
            f"service {code} at {where} did not answer within {service.timeout_seconds} s"
        ) from None
    except (OSError, http.client.HTTPException) as exc:
        reason = getattr(exc, "strerror", None) or type(exc).__name__
        raise UpstreamFailed(f"service {code} at {where} cannot be reached: {reason}") from None
    finally:
        connection.close()
    if len(answer) > limit:
        raise UpstreamFailed(
            f"service {code} at {where} answered more than {service.max_response_kb} KiB"
        )
    if 300 <= response.status < 400:
        raise UpstreamFailed(
            f"service {code} at {where} answered {response.status} (a redirect), which the "
            "gateway does not follow"
        )
    if response.status >= 500:
        raise UpstreamFailed(f"service {code} at {where} failed with {response.status}")
    passed = {name: value for name, value in response.getheaders() if name.lower() in RETURNED[1:]}
    media_type = response.getheader("content-type") or "application/octet-stream"
    return response.status, media_type, answer, passed
