"""A JSON response encoded with orjson, for handlers on the hot paths.

Returning a dict makes FastAPI walk it with ``jsonable_encoder`` and then ``json.dumps`` it;
for a task (params, metadata, response) that costs more than the database insert. Documents
built by ``steelyard.*.serialize`` hold JSON values only, which orjson encodes directly.
"""

from __future__ import annotations

from typing import Any

import orjson
from starlette.responses import Response


class JSONDoc(Response):
    media_type = "application/json"

    def render(self, content: Any) -> bytes:
        return orjson.dumps(content)
