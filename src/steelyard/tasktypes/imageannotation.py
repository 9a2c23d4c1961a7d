"""``imageannotation``: boxes, polygons, lines, points and ellipses on one image.

Params: ``attachment`` (image URL, required), ``attachment_type`` (``image``, the default),
``geometries`` (required; see ``_geometry``), ``annotation_attributes`` (optional; see
``_attributes``). The legacy single-geometry endpoints (``annotation`` for boxes,
``polygonannotation``, ``lineannotation``, ``pointannotation``) take ``objects_to_annotate``,
``with_labels``, the box options (``min_width``, ``min_height``, ``can_rotate``,
``integer_pixels``) and ``min_vertices``/``max_vertices`` at the top level; those become
``geometries`` here while the original keys stay in the params.

Project params are defaults (``merge_params``): a task's ``geometries`` replaces the project's
whole. A legacy task that sends its own top-level keys replaces the project's ``geometries``
too, and the project's options for that geometry (``geometries.box.min_width``...) stay
defaults for the keys the task left out.

Response: ``{"annotations": [{uuid, type, label, attributes, <geometry>}]}`` with box
``left/top/width/height`` (+ ``rotation``), polygon/line/ellipse ``vertices: [{x, y}]`` and
point ``x/y``, in pixels from the image's top-left corner.
"""

from __future__ import annotations

import random
import uuid
from dataclasses import dataclass
from typing import Any

from steelyard.tasktypes._attributes import (
    AttributeDef,
    check_attributes,
    parse_attributes,
    synthetic_attributes,
)
from steelyard.tasktypes._common import (
    at,
    check_attachment_type,
    check_url,
    copy_json,
    describe,
    expect_list,
    expect_object,
    expect_params,
    expect_response,
    expect_str,
    fail,
    new_uuid,
    opt_bool,
    require,
)
from steelyard.tasktypes._geometry import (
    GEOMETRIES,
    GeometryConfig,
    check_shape,
    parse_geometries,
    parse_geometry,
    synthetic_shape,
)
from steelyard.tasktypes.base import TaskTypeSpec
from steelyard.tasktypes.registry import register

#: Legacy endpoint → (geometry, top-level keys that configure it).
LEGACY: dict[str, tuple[str, tuple[str, ...]]] = {
    "annotation": (
        "box",
        ("objects_to_annotate", "min_width", "min_height", "can_rotate", "integer_pixels"),
    ),
    "polygonannotation": ("polygon", ("objects_to_annotate", "min_vertices", "max_vertices")),
    "lineannotation": ("line", ("objects_to_annotate", "min_vertices", "max_vertices")),
    "pointannotation": ("point", ("objects_to_annotate",)),
}


@dataclass(frozen=True)
class _Config:
    geometries: dict[str, GeometryConfig]
    attributes: dict[str, AttributeDef]
    #: Legacy tasks could ask for shapes without labels (``with_labels: false``).
    labels_required: bool


def _check_attachment(params: dict[str, Any], *, partial: bool = False) -> None:
    if not partial or params.get("attachment") is not None:
        image = require(params, "attachment", "", "the URL of the image to annotate")
        check_url(image, "attachment", image=True)
    if params.get("attachment_type") is not None:
        check_attachment_type(params["attachment_type"], "attachment_type", ("image",))


def _parse(params: dict[str, Any], *, partial: bool = False) -> _Config:
    """The task's configuration; ``partial`` (a project's defaults) lets keys be left out."""
    _check_attachment(params, partial=partial)
    geometries: dict[str, GeometryConfig] = {}
    known_labels: set[str] | None = None
    if not partial or params.get("geometries") is not None:
        hint = f"an object with at least one of {', '.join(GEOMETRIES)}"
        geometries = parse_geometries(require(params, "geometries", "", hint))
        known_labels = {name for g in geometries.values() for name in g.taxonomy.parents}
    attributes: dict[str, AttributeDef] = {}
    if params.get("annotation_attributes") is not None:
        attributes = parse_attributes(params["annotation_attributes"], known_labels)
    return _Config(geometries, attributes, opt_bool(params, "with_labels", "", True))


def _check_label(geometry: GeometryConfig, label: Any, path: str) -> str:
    name = expect_str(label, path)
    taxonomy = geometry.taxonomy
    if name in taxonomy.leaf_set:
        return name
    if name in taxonomy.parents:
        children = [leaf for leaf in taxonomy.leaves if name in taxonomy.ancestors(leaf)]
        fail(path, f"{describe(name)} is a parent choice; pick one of {', '.join(children[:10])}")
    shown = ", ".join(taxonomy.leaves[:10]) + (", ..." if len(taxonomy.leaves) > 10 else "")
    fail(path, f"must be one of the {geometry.kind} labels ({shown}), got {describe(name)}")


class ImageAnnotation(TaskTypeSpec):
    name = "imageannotation"
    aliases = tuple(LEGACY)
    scorer = "objects"
    aggregator = "boxes"
    worker_params = (
        "attachment",
        "attachment_type",
        "geometries",
        "annotation_attributes",
        "with_labels",
        "context_attachments",
    )

    def merge_params(
        self, defaults: dict[str, Any], own: dict[str, Any], *, alias: str | None = None
    ) -> dict[str, Any]:
        legacy = LEGACY.get((alias or "").lower())
        if legacy is None or own.get("geometries") is not None:
            return super().merge_params(defaults, own, alias=alias)
        kind, keys = legacy
        if all(own.get(key) is None for key in keys):
            return super().merge_params(defaults, own, alias=alias)
        # The task configures its geometry the legacy way, so the project's ``geometries`` must
        # not shadow it (``validate_params`` builds ``geometries`` from the top-level keys).
        # The project's options for this geometry stay defaults for the keys the task omits.
        lifted: dict[str, Any] = {}
        project_geometries = defaults.get("geometries")
        if isinstance(project_geometries, dict) and isinstance(project_geometries.get(kind), dict):
            lifted = {k: v for k, v in project_geometries[kind].items() if k in keys}
        rest = {k: v for k, v in defaults.items() if k != "geometries"}
        return {**lifted, **rest, **own}

    def validate_defaults(
        self, params: dict[str, Any], *, alias: str | None = None
    ) -> dict[str, Any]:
        out = expect_params(params)
        legacy = LEGACY.get((alias or "").lower())
        if legacy is not None:
            kind, keys = legacy
            top = {key: out[key] for key in keys if out.get(key) is not None}
            if top:
                parse_geometry(kind, top, "", partial=True)
        _parse(out, partial=True)
        return out

    def validate_params(
        self, params: dict[str, Any], *, alias: str | None = None
    ) -> dict[str, Any]:
        out = expect_params(params)
        _check_attachment(out)  # first: a missing image is the likelier mistake
        legacy = LEGACY.get((alias or "").lower())
        if legacy is not None:
            opt_bool(out, "with_labels", "", True)
            if out.get("geometries") is None:
                kind, keys = legacy
                geometry = {key: copy_json(out[key]) for key in keys if out.get(key) is not None}
                # Parse at the top level first so errors name the keys the caller sent.
                parse_geometry(kind, geometry, "")
                out["geometries"] = {kind: geometry}
        _parse(out)
        if out.get("attachment_type") is None:
            out["attachment_type"] = "image"
        return out

    def validate_response(self, params: dict[str, Any], response: Any) -> dict[str, Any]:
        config = _parse(params)
        out = expect_response(response)
        raw = require(out, "annotations", "", "a list of annotations (it may be empty)")
        annotations = []
        for i, item in enumerate(expect_list(raw, "annotations")):
            path = at("annotations", i)
            ann = expect_object(item, path)
            if ann.get("type") is None and len(config.geometries) == 1:
                # Legacy single-geometry responses carry no type; there is only one choice.
                ann["type"] = next(iter(config.geometries))
            kind = require(ann, "type", path, f"one of {', '.join(config.geometries)}")
            if kind not in config.geometries:
                configured = ", ".join(config.geometries)
                fail(
                    at(path, "type"),
                    f"must be a geometry of this task ({configured}), got {describe(kind)}",
                )
            geometry = config.geometries[kind]
            label: str | None = None
            if ann.get("label") is not None:
                label = _check_label(geometry, ann["label"], at(path, "label"))
            elif config.labels_required:
                fail(
                    at(path, "label"),
                    f"is required: one of {', '.join(geometry.taxonomy.leaves[:10])}",
                )
            check_shape(geometry, ann, path)
            ancestors = geometry.taxonomy.ancestors(label) if label is not None else []
            ann["attributes"] = check_attributes(
                config.attributes, label, ancestors, ann.get("attributes"), at(path, "attributes")
            )
            if ann.get("uuid") is None:
                ann["uuid"] = new_uuid()
            else:
                expect_str(ann["uuid"], at(path, "uuid"))
            annotations.append(ann)
        out["annotations"] = annotations
        return out

    def synthetic_response(self, params: dict[str, Any], rng: random.Random) -> dict[str, Any]:
        config = _parse(params)
        annotations = []
        for _ in range(rng.randint(1, 3)):
            kind = rng.choice(sorted(config.geometries))
            geometry = config.geometries[kind]
            label = rng.choice(geometry.taxonomy.leaves)
            ancestors = geometry.taxonomy.ancestors(label)
            annotations.append(
                {
                    # From rng, not uuid4(), so one seed always gives the same response.
                    "uuid": str(uuid.UUID(int=rng.getrandbits(128), version=4)),
                    "type": kind,
                    "label": label,
                    "attributes": synthetic_attributes(config.attributes, label, ancestors, rng),
                    **synthetic_shape(geometry, rng),
                }
            )
        return {"annotations": annotations}


register(ImageAnnotation())
