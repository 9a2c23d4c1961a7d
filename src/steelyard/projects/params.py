"""Project params: checked before any write transaction, verified by version inside it.

Checking params can be large work (a 10 MiB body of 100,000 labels takes a few hundred
milliseconds), and under SQLite's write lock every other writer waits for it. So the check runs
first, outside any transaction, against the project's params as read beforehand (a read
transaction, or ``DefaultsCache`` for task creates), and the write transaction only compares
the version it was checked against with the project's version now: one number, read in SQL
without decoding the params. When another request changed the params in between, the write
raises ``ParamsChanged`` having written nothing, and the edge reads, checks and writes again
(``ATTEMPTS`` times at most, then the 400 reaches the caller). A project's params only ever
gain versions, so an unchanged version means unchanged params.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any, TypeVar

import orjson
from sqlalchemy import ColumnElement, Integer, cast, func, literal_column
from sqlalchemy.orm import InstrumentedAttribute

from steelyard.errors import InvalidState, ValidationError
from steelyard.projects import workflow_settings
from steelyard.projects.models import Project
from steelyard.projects.workflow_settings import WorkflowSettings
from steelyard.tasktypes import registry
from steelyard.timefmt import iso
from steelyard.validation import (
    json_object,
    optional_bool,
    optional_dict,
    optional_str,
    require_str,
    under,
)

T = TypeVar("T")

#: How often an edge reads, checks and writes before a ``ParamsChanged`` reaches the caller.
ATTEMPTS = 3
#: Bodies (plus the project params they merge with) up to this size are checked on the event
#: loop; bigger ones in a worker thread. A categorization task of this size checks in about
#: half a millisecond, about what the hop to a thread and back costs.
INLINE_BYTES = 16 * 1024


class ParamsChanged(InvalidState):
    """The project's params changed after they were read for a check; nothing was written."""

    def __init__(self) -> None:
        super().__init__(
            "The project's params changed while this request was being checked; try again.",
            field="project",
        )


@dataclass(frozen=True, slots=True)
class ProjectDefaults:
    """A project's params as read for a check, and the version they are."""

    id: str
    name: str
    type: str
    version: int
    params: dict[str, Any]
    #: Roughly how big the params are (bytes of JSON), to choose where to check them.
    weight: int
    #: The workflow settings these params hold (redundancy, review): what a new task records.
    workflow: WorkflowSettings = workflow_settings.DEFAULT


def defaults_of(row: Project | tuple[Any, ...]) -> ProjectDefaults:
    """``ProjectDefaults`` from a project, or from a row of ``id, name, type, param_history``."""
    if isinstance(row, Project):
        values: tuple[Any, ...] = (row.id, row.name, row.type, row.param_history)
    else:
        values = tuple(row)
    history: list[dict[str, Any]] = values[3] or []
    current = dict(history[-1]) if history else {}
    version = int(current.pop("version", 0))
    current.pop("created_at", None)
    weight = len(orjson.dumps(current)) if current else 0
    try:
        workflow = workflow_settings.read(current)
    except ValidationError:
        # Stored before the settings were checked: the project works as a standard one.
        workflow = workflow_settings.DEFAULT
    return ProjectDefaults(values[0], values[1], values[2], version, current, weight, workflow)


def version_column(dialect: str) -> ColumnElement[int]:
    """The project's current params version, read in SQL: the last history entry's ``version``
    (the write side compares it without decoding the history)."""
    history: InstrumentedAttribute[Any] = Project.param_history
    if dialect == "postgresql":
        # Inline constants: a bound -1 leaves PostgreSQL to guess between ``->`` for keys
        # and for positions.
        entry = history.op("->")(literal_column("-1")).op("->>")(literal_column("'version'"))
        return cast(entry, Integer)
    return cast(func.json_extract(history, "$[#-1].version"), Integer)


def retried(attempt: Callable[[], T]) -> T:
    """``attempt()`` (read, check, write) once more each time its write finds the params
    changed, ``ATTEMPTS`` times in all."""
    for _ in range(ATTEMPTS - 1):
        try:
            return attempt()
        except ParamsChanged:
            pass
    return attempt()


async def retried_async(attempt: Callable[[], Awaitable[T]]) -> T:
    """``retried`` for an attempt that awaits."""
    for _ in range(ATTEMPTS - 1):
        try:
            return await attempt()
        except ParamsChanged:
            pass
    return await attempt()


# --- checks (pure: no database, safe to run anywhere) --------------------------------------


def check_defaults(type_name: str, params: dict[str, Any]) -> None:
    """A project's params are defaults for its tasks: any key may be left for the tasks to give
    (``attachment``, even ``geometries``), but every key present must be valid as a task's
    would be, so that a bad template is refused here rather than breaking every later create.
    Errors name the field under ``params`` (``params.geometries.box.min_width``)."""
    instruction = params.get("instruction")
    if instruction is not None and not isinstance(instruction, str):
        raise ValidationError("params.instruction must be a string.", field="params.instruction")
    workflow_settings.read(params)
    spec = registry.get(type_name)
    alias = type_name if type_name in spec.aliases else None
    defaults = {
        k: v for k, v in workflow_settings.task_defaults(params).items() if k != "instruction"
    }
    try:
        spec.validate_defaults(defaults, alias=alias)
    except ValidationError as exc:
        raise under("params", exc) from None


@dataclass(frozen=True, slots=True)
class NewProject:
    """A create-project body, read and checked (``read_new_project``)."""

    name: str
    type: str
    params: dict[str, Any]
    rapid: bool
    studio: bool
    dataset_id: str | None


def read_new_project(body: Any) -> NewProject:
    """Everything a project create checks: needs no database, so it runs before the write."""
    body = json_object(body, empty=True)
    name = require_str(body, "name", max_length=300)
    type_name = require_str(body, "type")
    spec = registry.get(type_name)
    params = optional_dict(body, "params") or {}
    check_defaults(type_name.lower(), params)
    return NewProject(
        name=name,
        type=type_name.lower() if type_name.lower() in spec.aliases else spec.name,
        params=params,
        rapid=optional_bool(body, "rapid") or False,
        studio=optional_bool(body, "studio") or False,
        dataset_id=optional_str(body, "datasetId"),
    )


@dataclass(frozen=True, slots=True)
class ParamsUpdate:
    """A project's history with its next params version appended, checked against ``base``
    (the version it was read at)."""

    project_id: str
    base: int
    history: list[dict[str, Any]]


def read_params_update(project: Project, body: Any, now: datetime) -> ParamsUpdate:
    """What ``setParams`` would store (the current params updated with the body), checked."""
    body = json_object(body, empty=True)
    sent = {k: v for k, v in body.items() if k not in ("version", "created_at")}
    current = defaults_of(project)
    params = {**workflow_settings.superseded(current.params, sent), **sent}
    check_defaults(project.type, params)
    entry = {**params, "version": current.version + 1, "created_at": iso(now)}
    return ParamsUpdate(project.id, current.version, [*(project.param_history or []), entry])


# --- the defaults a task create is checked against ------------------------------------------


class DefaultsCache:
    """Per process: the project each (organization, environment, project, batch) a task create
    names resolved to, with its params. Only a guess to check against: the write verifies the
    project's id and version, so an entry that is stale costs a retry, never a wrong task.

    Bounded by entries and by the params' total size; a project heavier than ``max_entry_bytes``
    is not kept (its tasks read it each time, which is small next to checking them).
    """

    def __init__(
        self,
        *,
        max_entries: int = 1024,
        max_bytes: int = 32 * 1024 * 1024,
        max_entry_bytes: int = 1024 * 1024,
    ) -> None:
        self._entries: OrderedDict[tuple[Any, ...], ProjectDefaults] = OrderedDict()
        self._bytes = 0
        self._lock = threading.Lock()
        self.max_entries = max_entries
        self.max_bytes = max_bytes
        self.max_entry_bytes = max_entry_bytes

    def get(self, key: tuple[Any, ...]) -> ProjectDefaults | None:
        with self._lock:
            found = self._entries.get(key)
            if found is not None:
                self._entries.move_to_end(key)
            return found

    def put(self, key: tuple[Any, ...], defaults: ProjectDefaults) -> None:
        if defaults.weight > self.max_entry_bytes:
            return
        with self._lock:
            self._drop(key)
            self._entries[key] = defaults
            self._bytes += defaults.weight
            while len(self._entries) > self.max_entries or self._bytes > self.max_bytes:
                _, evicted = self._entries.popitem(last=False)
                self._bytes -= evicted.weight

    def forget(self, key: tuple[Any, ...]) -> None:
        with self._lock:
            self._drop(key)

    def _drop(self, key: tuple[Any, ...]) -> None:
        old = self._entries.pop(key, None)
        if old is not None:
            self._bytes -= old.weight


#: The process's cache for task creates.
DEFAULTS = DefaultsCache()
