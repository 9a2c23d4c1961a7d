"""What every task type provides. One module per type registers an instance in the registry.

The API, the workflow engine, the UI and the exports ask the registry; none of them branch on
the type name.
"""

from __future__ import annotations

import random
from abc import ABC, abstractmethod
from typing import Any, ClassVar


class TaskTypeSpec(ABC):
    """A task type: how to validate its params and responses and how to fake a response.

    Subclasses set ``name`` (the Scale path segment, e.g. ``imageannotation``) and may set
    ``aliases`` (legacy names mapped onto it, e.g. ``annotation``). Methods raise
    ``steelyard.errors.ValidationError`` with ``field`` naming the offending key, as a dotted
    path from the top of the params or response (``geometries.box.min_width``,
    ``annotations.3.left``).
    """

    name: ClassVar[str]
    aliases: ClassVar[tuple[str, ...]] = ()
    #: Which ``steelyard.quality`` consensus applies (``categorical``, ``boxes``, ``spans``,
    #: ``ranking``, ``text``...). The workflow engine reads it to aggregate redundant labels.
    aggregator: ClassVar[str] = "categorical"
    #: Which ``steelyard.quality.gold_scores`` measure compares a response with a gold one
    #: (``choice``, ``objects``, ``spans``, ``fields``, ``preference``): evaluation and training
    #: answers are scored by it.
    scorer: ClassVar[str] = "choice"
    #: The params a labeler is shown (``tasks.serialize.task_for_worker``): what the task asks
    #: and about what. Anything else a customer put in the params stays with the customer.
    worker_params: ClassVar[tuple[str, ...]] = ()

    @abstractmethod
    def validate_params(
        self, params: dict[str, Any], *, alias: str | None = None
    ) -> dict[str, Any]:
        """Check the type-specific params of a create call; return them normalized.

        ``params`` holds every key the customer sent except the common ones the task service
        handles itself (project, batch, callback_url, unique_id, metadata, tags, instruction).
        ``alias`` is the legacy name the task was created under, when it was one. Unknown extra
        keys are kept (Scale echoes what it was sent) unless they contradict the type.
        """

    def merge_params(
        self, defaults: dict[str, Any], own: dict[str, Any], *, alias: str | None = None
    ) -> dict[str, Any]:
        """A task's params before ``validate_params``: its project's ``defaults`` under its
        ``own``. A key the task sends replaces the project's whole (as ``geometries`` does);
        a type whose params come in alternative forms overrides this, so that the form the task
        chose also replaces the project's other form."""
        return {**defaults, **own}

    @abstractmethod
    def validate_defaults(
        self, params: dict[str, Any], *, alias: str | None = None
    ) -> dict[str, Any]:
        """Check a project's params, which are defaults for its tasks; return them unchanged.

        Every key may be left out (a task supplies the rest), and every key present is checked
        as on a task, with the same field paths. Checks that relate two keys run when both are
        present, or refuse a key that can only ever apply together with one that is missing.
        """

    @abstractmethod
    def validate_response(self, params: dict[str, Any], response: Any) -> dict[str, Any]:
        """Check a worker's (or an audit fix's) response against the task's params."""

    @abstractmethod
    def synthetic_response(self, params: dict[str, Any], rng: random.Random) -> dict[str, Any]:
        """A response valid for these params, for test-mode tasks that complete at once."""
