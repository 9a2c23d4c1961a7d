"""Projects (task type + versioned params) and batches."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Boolean, ForeignKey, Index, Integer, String, UniqueConstraint, text
from sqlalchemy.orm import Mapped, mapped_column

from steelyard.db.base import Base, JSONDoc, NullableJSON, UTCDateTime, new_id, utcnow

_HAS_QUALITY = text("quality_settings IS NOT NULL")


class Project(Base):
    __tablename__ = "projects"
    __table_args__ = (
        UniqueConstraint("org_id", "is_test", "name"),
        # "Which of the organization's projects serve gold or qualify": read on every next.
        Index(
            "ix_projects_quality",
            "org_id",
            "is_test",
            sqlite_where=_HAS_QUALITY,
            postgresql_where=_HAS_QUALITY,
        ),
    )

    id: Mapped[str] = mapped_column(String(24), primary_key=True, default=new_id)
    org_id: Mapped[str] = mapped_column(ForeignKey("organizations.id", ondelete="CASCADE"))
    is_test: Mapped[bool] = mapped_column(Boolean)
    name: Mapped[str] = mapped_column(String(300))
    type: Mapped[str] = mapped_column(String(60))
    #: Every version of the params, oldest first: ``{...params, "version", "created_at"}``.
    param_history: Mapped[list[dict[str, Any]]] = mapped_column(JSONDoc, default=list)
    rapid: Mapped[bool] = mapped_column(Boolean, default=False)
    studio: Mapped[bool] = mapped_column(Boolean, default=False)
    archived: Mapped[bool] = mapped_column(Boolean, default=False)
    dataset_id: Mapped[str | None] = mapped_column(String(200), nullable=True)
    #: Workflow and pay settings (redundancy, review, rates) used by the workflow engine.
    settings: Mapped[dict[str, Any]] = mapped_column(JSONDoc, default=dict)
    #: Gold rate and qualification (``workflow_settings.QualitySettings.to_doc``), copied from
    #: the params at each change so that ``next`` reads them without decoding the params;
    #: NULL for a project that never had them (``next`` then does nothing more for it).
    quality_settings: Mapped[dict[str, Any] | None] = mapped_column(
        NullableJSON, nullable=True, default=None
    )
    template_version: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    @property
    def params(self) -> dict[str, Any]:
        return current_params(self.param_history)


def current_params(param_history: list[dict[str, Any]] | None) -> dict[str, Any]:
    """The params now in force: the last version, without its bookkeeping keys."""
    if not param_history:
        return {}
    current = dict(param_history[-1])
    current.pop("version", None)
    current.pop("created_at", None)
    return current


class Batch(Base):
    __tablename__ = "batches"
    __table_args__ = (
        UniqueConstraint("org_id", "is_test", "name"),
        Index("ix_batches_project_created", "org_id", "is_test", "project_id", "created_at"),
        Index("ix_batches_org_created", "org_id", "is_test", "created_at"),
        # Next reads the open (held back, prioritized, group-restricted) batches every call.
        Index("ix_batches_scope_status", "org_id", "is_test", "status"),
    )

    id: Mapped[str] = mapped_column(String(24), primary_key=True, default=new_id)
    org_id: Mapped[str] = mapped_column(ForeignKey("organizations.id", ondelete="CASCADE"))
    is_test: Mapped[bool] = mapped_column(Boolean)
    project_id: Mapped[str] = mapped_column(ForeignKey("projects.id", ondelete="CASCADE"))
    name: Mapped[str] = mapped_column(String(300))
    status: Mapped[str] = mapped_column(String(20))
    callback: Mapped[str | None] = mapped_column(String(2000), nullable=True)
    calibration_batch: Mapped[bool] = mapped_column(Boolean, default=False)
    self_label_batch: Mapped[bool] = mapped_column(Boolean, default=False)
    metadata_: Mapped[dict[str, Any]] = mapped_column("metadata", JSONDoc, default=dict)
    priority: Mapped[int | None] = mapped_column(Integer, nullable=True)
    archived: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    completed_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
