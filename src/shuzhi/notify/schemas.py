from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator

from shuzhi.notify.rules import EVENT_NAME, EVENTS_MAX, EVERY_EVENT, WEBHOOK_NAME


class NotificationPublic(BaseModel):
    id: int
    kind: str
    title: str
    body: str
    link: str
    object_type: str
    object_id: str
    created_at: datetime
    read_at: datetime | None
    read: bool


class NotificationList(BaseModel):
    data: list[NotificationPublic]
    count: int = Field(description="messages matching the filter, on every page")
    unread: int = Field(description="unread messages in the inbox")


class MarkedRead(BaseModel):
    marked: int = Field(description="messages this call marked read")
    unread: int = Field(description="unread messages left in the inbox")


class WebhookCreate(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    name: str = Field(max_length=80)
    url: str = Field(min_length=1, max_length=500, description="http:// or https:// URL")
    events: list[str] = Field(
        default_factory=lambda: [EVERY_EVENT],
        min_length=1,
        max_length=EVENTS_MAX,
        description='event names (problem.assigned, …), or ["*"] for every event',
    )

    @field_validator("name")
    @classmethod
    def _name(cls, value: str) -> str:
        if not WEBHOOK_NAME.match(value):
            raise ValueError(
                "a webhook name is 2 to 80 lower-case letters, digits, _ or -, "
                "starting with a letter"
            )
        return value

    @field_validator("events")
    @classmethod
    def _events(cls, value: list[str]) -> list[str]:
        names = list(dict.fromkeys(item.strip() for item in value))
        if EVERY_EVENT in names:
            return [EVERY_EVENT]
        for name in names:
            if len(name) > 60 or not EVENT_NAME.match(name):
                raise ValueError(
                    f"{name[:60]!r} is not an event name (lower-case words joined by dots, "
                    "such as problem.assigned) or *"
                )
        return names


class WebhookPublic(BaseModel):
    id: int
    name: str
    url: str
    events: list[str]
    active: bool
    created_by: str
    created_at: datetime
    pending: int = Field(description="deliveries waiting or being sent")
    delivered: int
    failed: int
    old_secret_until: datetime | None = Field(
        None, description="after a rotation: until when the old secret signs beside the new one"
    )


class WebhookIssued(WebhookPublic):
    secret: str = Field(description="shown this once; it cannot be read back")


class WebhookList(BaseModel):
    data: list[WebhookPublic]
    count: int


class DeliveryPublic(BaseModel):
    id: int
    webhook_id: int
    webhook: str
    event: str
    payload: dict[str, Any]
    state: str
    attempts: int
    next_at: datetime | None = Field(description="when it is tried next; none once settled")
    last_status: int | None
    last_error: str
    created_at: datetime
    delivered_at: datetime | None


class DeliveryList(BaseModel):
    data: list[DeliveryPublic]
    count: int


class DeliveryRun(BaseModel):
    """What one pass of the delivery job did."""

    delivered: int = 0
    retrying: int = 0
    failed: int = 0

    @property
    def handled(self) -> int:
        return self.delivered + self.retrying + self.failed
