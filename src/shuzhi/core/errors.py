"""The one error hierarchy. The API maps it to problem+json, the CLI to one line and exit 2."""

from __future__ import annotations

from typing import Any


class Message(str):
    """Words for a person: the English text, remembering the template and the values it
    was made from, so that the cockpit can say it in the reader's language
    (``web.i18n.say``). Everywhere else (the API, the CLI, logs) it is the English string
    it is. ``Message("grant {id} is {state}", id=3, state="revoked")``."""

    template: str
    values: dict[str, Any]

    def __new__(cls, template: str, /, **values: Any) -> Message:
        text = super().__new__(cls, template.format(**values))
        text.template = template
        text.values = values
        return text

    def __reduce__(self) -> tuple[Any, ...]:
        # made again from its template (an exception crossing processes is pickled)
        return _message, (self.template, self.values)


def _message(template: str, values: dict[str, Any]) -> Message:
    return Message(template, **values)


class ShuzhiError(Exception):
    """A failure the user can act on. ``slug`` names its problem type."""

    slug = "error"
    title = "Request failed"
    status = 400

    def __init__(self, detail: str, *, field: str | None = None) -> None:
        super().__init__(detail)
        self.detail = detail
        self.field = field

    def reworded(self, detail: str) -> ShuzhiError:
        """The same refusal (its kind, field and headers) said with ``detail``, such as the
        detail prefixed with where in a file it happened."""
        found = type(self).__new__(type(self))
        found.__dict__.update(self.__dict__)
        Exception.__init__(found, detail)
        found.detail = detail
        return found

    @property
    def headers(self) -> dict[str, str]:
        """HTTP headers the answer carries (``WWW-Authenticate``, ``Retry-After``)."""
        return {"WWW-Authenticate": "Bearer"} if self.status == 401 else {}


class ConfigurationError(ShuzhiError):
    slug = "configuration"
    title = "Configuration error"
    status = 500


class DatabaseRevisionError(ConfigurationError):
    slug = "database-revision"
    title = "Database is not at the expected revision"
    status = 503


class ValidationFailed(ShuzhiError):
    slug = "validation"
    title = "Invalid input"
    status = 422


class NotFound(ShuzhiError):
    slug = "not-found"
    title = "Not found"
    status = 404


class Conflict(ShuzhiError):
    slug = "conflict"
    title = "Conflict"
    status = 409


class InvalidTransition(Conflict):
    slug = "invalid-transition"
    title = "Transition not allowed from the current state"


class Unauthenticated(ShuzhiError):
    slug = "unauthenticated"
    title = "Authentication required"
    status = 401


class PermissionDenied(ShuzhiError):
    slug = "forbidden"
    title = "Permission denied"
    status = 403


class TooLarge(ShuzhiError):
    slug = "too-large"
    title = "Payload too large"
    status = 413


class RateLimited(ShuzhiError):
    slug = "rate-limited"
    title = "Too many requests"
    status = 429

    def __init__(self, detail: str, *, retry_after: int) -> None:
        super().__init__(detail)
        self.retry_after = max(int(retry_after), 1)

    @property
    def headers(self) -> dict[str, str]:
        return {"Retry-After": str(self.retry_after)}
