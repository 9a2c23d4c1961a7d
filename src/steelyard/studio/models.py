"""Studio workforce tables: who works on which project, labeler groups, batch → group."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Boolean, ForeignKey, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from steelyard.db.base import Base, UTCDateTime, new_id, utcnow


class StudioAssignment(Base):
    """A teammate assigned to a project (the environment is the project's)."""

    __tablename__ = "studio_assignments"
    __table_args__ = (UniqueConstraint("org_id", "user_id", "project_id"),)

    id: Mapped[str] = mapped_column(String(24), primary_key=True, default=new_id)
    org_id: Mapped[str] = mapped_column(ForeignKey("organizations.id", ondelete="CASCADE"))
    user_id: Mapped[str] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    project_id: Mapped[str] = mapped_column(
        ForeignKey("projects.id", ondelete="CASCADE"), index=True
    )
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class ProjectGroup(Base):
    """A named group of labelers within one project."""

    __tablename__ = "studio_project_groups"
    __table_args__ = (UniqueConstraint("project_id", "name"),)

    id: Mapped[str] = mapped_column(String(24), primary_key=True, default=new_id)
    org_id: Mapped[str] = mapped_column(
        ForeignKey("organizations.id", ondelete="CASCADE"), index=True
    )
    project_id: Mapped[str] = mapped_column(ForeignKey("projects.id", ondelete="CASCADE"))
    name: Mapped[str] = mapped_column(String(300))
    is_singleton: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class ProjectGroupMember(Base):
    __tablename__ = "studio_group_members"

    group_id: Mapped[str] = mapped_column(
        ForeignKey("studio_project_groups.id", ondelete="CASCADE"), primary_key=True
    )
    user_id: Mapped[str] = mapped_column(
        ForeignKey("users.id", ondelete="CASCADE"), primary_key=True, index=True
    )


class BatchGroup(Base):
    """A batch's work goes to this group (a batch may have several)."""

    __tablename__ = "studio_batch_groups"

    batch_id: Mapped[str] = mapped_column(
        ForeignKey("batches.id", ondelete="CASCADE"), primary_key=True
    )
    group_id: Mapped[str] = mapped_column(
        ForeignKey("studio_project_groups.id", ondelete="CASCADE"), primary_key=True, index=True
    )
