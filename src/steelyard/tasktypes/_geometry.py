"""Image geometries: the label taxonomy, each geometry's options, and shape checks.

Scale's ``geometries`` param is an object keyed by geometry (``box``, ``polygon``, ``line``,
``point``, ``ellipse``); each value holds ``objects_to_annotate`` plus options of that
geometry. Options are parsed into frozen dataclasses with Scale's defaults filled in, while
the params the customer sent stay untouched (they are echoed back verbatim).
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass
from functools import cached_property
from typing import Any

from steelyard.tasktypes._common import (
    at,
    check_order,
    describe,
    expect_list,
    expect_number,
    expect_object,
    expect_str,
    fail,
    is_int,
    opt_bool,
    opt_int,
    opt_number,
    opt_str,
    require,
)

GEOMETRIES = ("box", "polygon", "line", "point", "ellipse")
#: Fewest vertices that still make the shape; Scale's documented minimums.
_MIN_VERTICES = {"polygon": 3, "line": 2}
#: Synthetic shapes stay inside a notional image this big; real images are rarely smaller.
_CANVAS = 1000.0


@dataclass(frozen=True)
class Taxonomy:
    """``objects_to_annotate``: plain labels or ``{choice, subchoices, display}`` trees.

    Only leaves are selectable (a choice with subchoices is navigation), matching Scale's
    documented rule; ``parents`` lets conditions name a parent choice.
    """

    leaves: tuple[str, ...]
    parents: dict[str, str | None]

    @cached_property
    def leaf_set(self) -> frozenset[str]:
        # Membership per annotation: a tuple scan made a large response against a large
        # taxonomy quadratic (50,000 boxes against 100,000 labels took 25 s).
        return frozenset(self.leaves)

    def ancestors(self, label: str) -> list[str]:
        chain: list[str] = []
        parent = self.parents.get(label)
        while parent is not None:
            chain.append(parent)
            parent = self.parents.get(parent)
        return chain


def parse_taxonomy(value: Any, path: str) -> Taxonomy:
    leaves: list[str] = []
    parents: dict[str, str | None] = {}

    def walk(items: list[Any], items_path: str, parent: str | None) -> None:
        for i, item in enumerate(items):
            item_path = at(items_path, i)
            if isinstance(item, str):
                name, subchoices = expect_str(item, item_path), None
            else:
                obj = expect_object(item, item_path)
                name = expect_str(
                    require(obj, "choice", item_path, "the label's name"), at(item_path, "choice")
                )
                opt_str(obj, "display", item_path)
                raw_sub = obj.get("subchoices")
                subchoices = (
                    None if raw_sub is None else expect_list(raw_sub, at(item_path, "subchoices"))
                )
            if name in parents:
                fail(item_path, f"repeats the label {describe(name)}; labels must be unique")
            parents[name] = parent
            if subchoices:
                walk(subchoices, at(item_path, "subchoices"), name)
            else:
                leaves.append(name)

    walk(expect_list(value, path, non_empty=True), path, None)
    return Taxonomy(leaves=tuple(leaves), parents=parents)


@dataclass(frozen=True)
class GeometryConfig:
    kind: str
    taxonomy: Taxonomy
    min_width: float = 0.0
    min_height: float = 0.0
    can_rotate: bool = False
    integer_pixels: bool = False
    min_vertices: int = 0
    max_vertices: int | None = None


def parse_geometry(kind: str, raw: Any, path: str, *, partial: bool = False) -> GeometryConfig:
    """One geometry's options. ``path`` is ``geometries.box``, or ``""`` for legacy params.

    ``partial`` (a legacy project's defaults) lets ``objects_to_annotate`` be left for the
    task to give."""
    cfg = expect_object(raw, path or kind)
    if partial and cfg.get("objects_to_annotate") is None:
        taxonomy = Taxonomy(leaves=(), parents={})
    else:
        taxonomy = parse_taxonomy(
            require(cfg, "objects_to_annotate", path, "a list of labels"),
            at(path, "objects_to_annotate"),
        )
    if kind == "box":
        return GeometryConfig(
            kind,
            taxonomy,
            min_width=opt_number(cfg, "min_width", path, minimum=0) or 0.0,
            min_height=opt_number(cfg, "min_height", path, minimum=0) or 0.0,
            can_rotate=opt_bool(cfg, "can_rotate", path, False),
            integer_pixels=opt_bool(cfg, "integer_pixels", path, False),
        )
    if kind in _MIN_VERTICES:
        floor = _MIN_VERTICES[kind]
        low = opt_int(cfg, "min_vertices", path, minimum=floor)
        high = opt_int(cfg, "max_vertices", path, minimum=floor)
        check_order(low, high, path, "min_vertices", "max_vertices")
        return GeometryConfig(kind, taxonomy, min_vertices=low or floor, max_vertices=high)
    return GeometryConfig(kind, taxonomy)


def parse_geometries(raw: Any, path: str = "geometries") -> dict[str, GeometryConfig]:
    hint = f"an object with at least one of {', '.join(GEOMETRIES)}"
    geometries = expect_object(raw, path)
    if not geometries:
        fail(path, f"must not be empty: give {hint}")
    configs: dict[str, GeometryConfig] = {}
    for kind, cfg in geometries.items():
        if kind not in GEOMETRIES:
            fail(at(path, kind), f"is not a supported geometry; use {', '.join(GEOMETRIES)}")
        configs[kind] = parse_geometry(kind, cfg, at(path, kind))
    return configs


# -- responses -----------------------------------------------------------------------------


def _coordinate(ann: dict[str, Any], key: str, path: str, integer: bool = False) -> float:
    value = expect_number(require(ann, key, path), at(path, key))
    if integer and not is_int(value):
        fail(at(path, key), f"must be a whole number of pixels (integer_pixels), got {value:g}")
    return value


def _points(value: Any, path: str) -> list[tuple[float, float]]:
    points = []
    for i, raw in enumerate(expect_list(value, path)):
        point = expect_object(raw, at(path, i))
        points.append((_coordinate(point, "x", at(path, i)), _coordinate(point, "y", at(path, i))))
    return points


def check_shape(config: GeometryConfig, ann: dict[str, Any], path: str) -> None:
    """The coordinates of one annotation of ``config.kind``, with that geometry's options."""
    if config.kind == "box":
        integer = config.integer_pixels
        _coordinate(ann, "left", path, integer)
        _coordinate(ann, "top", path, integer)
        for key, least in (("width", config.min_width), ("height", config.min_height)):
            size = _coordinate(ann, key, path, integer)
            if size < 0:
                fail(at(path, key), f"must not be negative, got {size:g}")
            if size < least:
                fail(at(path, key), f"must be at least min_{key} ({least:g}), got {size:g}")
        if ann.get("rotation") is not None:
            if not config.can_rotate:
                fail(at(path, "rotation"), "is not allowed: this box geometry has can_rotate off")
            expect_number(ann["rotation"], at(path, "rotation"))
        if (
            ann.get("vertices") is not None
            and len(_points(ann["vertices"], at(path, "vertices"))) != 4
        ):
            fail(at(path, "vertices"), "of a rotated box must be its 4 corners")
    elif config.kind in _MIN_VERTICES:
        count = len(_points(require(ann, "vertices", path), at(path, "vertices")))
        if count < config.min_vertices:
            fail(
                at(path, "vertices"),
                f"must have at least {config.min_vertices} points, got {count}",
            )
        if config.max_vertices is not None and count > config.max_vertices:
            fail(
                at(path, "vertices"), f"must have at most {config.max_vertices} points, got {count}"
            )
    elif config.kind == "point":
        _coordinate(ann, "x", path)
        _coordinate(ann, "y", path)
    elif config.kind == "ellipse":
        # Scale returns an ellipse as its 4 extremal points (ends of both axes).
        count = len(_points(require(ann, "vertices", path), at(path, "vertices")))
        if count != 4:
            fail(at(path, "vertices"), f"of an ellipse must be its 4 extremal points, got {count}")


def synthetic_shape(config: GeometryConfig, rng: random.Random) -> dict[str, Any]:
    """Coordinates that ``check_shape`` accepts for ``config``."""
    if config.kind == "box":
        width = config.min_width + rng.uniform(0, 200)
        height = config.min_height + rng.uniform(0, 200)
        left, top = rng.uniform(0, _CANVAS), rng.uniform(0, _CANVAS)
        box: dict[str, Any] = {"left": left, "top": top, "width": width, "height": height}
        if config.integer_pixels:
            box = {key: math.ceil(value) for key, value in box.items()}
        else:
            box = {key: round(value, 2) for key, value in box.items()}
            box["width"] = max(box["width"], config.min_width)
            box["height"] = max(box["height"], config.min_height)
        if config.can_rotate and rng.random() < 0.5:
            box["rotation"] = round(rng.uniform(0, math.pi), 4)
        return box
    if config.kind in _MIN_VERTICES:
        most = config.max_vertices if config.max_vertices is not None else config.min_vertices + 4
        count = rng.randint(config.min_vertices, most)
        cx, cy = rng.uniform(200, 800), rng.uniform(200, 800)
        # Points at sorted angles around a centre: a polygon that never crosses itself.
        angles = sorted(rng.uniform(0, 2 * math.pi) for _ in range(count))
        radius = rng.uniform(20, 150)
        vertices = [
            {"x": round(cx + radius * math.cos(a), 2), "y": round(cy + radius * math.sin(a), 2)}
            for a in angles
        ]
        return {"vertices": vertices}
    if config.kind == "point":
        return {"x": round(rng.uniform(0, _CANVAS), 2), "y": round(rng.uniform(0, _CANVAS), 2)}
    cx, cy = rng.uniform(200, 800), rng.uniform(200, 800)
    rx, ry = rng.uniform(10, 150), rng.uniform(10, 150)
    extremes = [(cx - rx, cy), (cx, cy - ry), (cx + rx, cy), (cx, cy + ry)]
    return {"vertices": [{"x": round(x, 2), "y": round(y, 2)} for x, y in extremes]}
