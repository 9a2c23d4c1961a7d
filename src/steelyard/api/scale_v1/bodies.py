"""Request-body schemas for the OpenAPI docs of the v1 routes.

The handlers read bodies raw (the Scale client sends empty bodies, bare arrays and bodies on
DELETE, which typed body parameters would refuse), so these models only document; the services
validate, with errors that name the field.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field


class _Open(BaseModel):
    model_config = ConfigDict(extra="allow")


class CreateTaskBody(_Open):
    """Common keys of every task type; the type's own params (``attachment``, ``geometries``,
    ``categories``, ``fields``, ``labels``...) go alongside them."""

    project: str | None = Field(None, description="Project name; its params are the defaults.")
    batch: str | None = Field(None, description="Batch name (implies its project).")
    instruction: str | None = Field(
        None, description="Shown to workers; the project's is appended."
    )
    callback_url: str | None = Field(None, description="http(s) URL or email for the result.")
    unique_id: str | None = Field(None, description="Unique per organization; a repeat is a 409.")
    metadata: dict[str, Any] | None = None
    tags: list[str] | None = None
    priority: int | None = None


class CreateProjectBody(_Open):
    name: str
    type: str = Field(description="Task type, e.g. imageannotation, categorization.")
    params: dict[str, Any] | None = Field(None, description="Defaults merged under task params.")
    rapid: bool = False
    studio: bool = Field(False, description="Studio projects' batches start in staging.")


class CreateBatchBody(_Open):
    project: str
    name: str
    callback: str | None = Field(None, description="URL or email called when the batch completes.")
    calibration_batch: bool = False
    self_label_batch: bool = False
    metadata: dict[str, Any] | None = None


class AuditBody(BaseModel):
    accepted: bool = Field(
        description="false on a live task (without a corrected response) sends it back for "
        "rework by other workers: pending again, its response moved to prior_responses."
    )
    comments: str | None = Field(None, description="Shown to the workers who redo the task.")
    response: dict[str, Any] | None = Field(
        None, description="Steelyard extension: the corrected response (result 'fixed')."
    )


class UniqueIdBody(BaseModel):
    unique_id: str


def body(model: type[BaseModel] | dict[str, Any], description: str = "") -> dict[str, Any]:
    """``openapi_extra`` documenting a JSON body."""
    schema = model if isinstance(model, dict) else model.model_json_schema()
    return {
        "requestBody": {
            "required": False,
            "description": description,
            "content": {"application/json": {"schema": schema}},
        }
    }


TAGS = {"type": "array", "items": {"type": "string"}, "title": "Tags"}
METADATA = {"type": "object", "title": "Metadata", "additionalProperties": True}
