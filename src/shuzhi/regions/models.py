from __future__ import annotations

from sqlalchemy import ForeignKey, String
from sqlalchemy.orm import Mapped, mapped_column

from shuzhi.core.db import Base
from shuzhi.core.stamps import ACCESS
from shuzhi.regions.rules import NAME_MAX_LENGTH


class Region(Base):
    """A node of the administrative tree. ``path`` lists the codes from the root,
    slash-separated and slash-ended, so a subtree is one prefix match."""

    __tablename__ = "region"
    __stamp__ = ACCESS

    code: Mapped[str] = mapped_column(String(12), primary_key=True)
    name: Mapped[str] = mapped_column(String(NAME_MAX_LENGTH))
    level: Mapped[str] = mapped_column(String(10), index=True)
    parent_code: Mapped[str | None] = mapped_column(
        ForeignKey("region.code", ondelete="RESTRICT"), index=True
    )
    path: Mapped[str] = mapped_column(String(80), unique=True)

    def __repr__(self) -> str:
        return f"Region({self.code} {self.name})"
