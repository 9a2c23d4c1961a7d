"""``/about``: what is running and how to point the ``scaleapi`` client at it (``/`` is the
labeling app, ``api.webapp``)."""

from __future__ import annotations

import html

from fastapi import Request
from fastapi.responses import HTMLResponse

from steelyard import __version__
from steelyard.api.auth import Credential, credential_router

router = credential_router(Credential.PUBLIC, include_in_schema=False)


@router.get("/about", response_class=HTMLResponse)
def about(request: Request) -> str:
    base = str(request.base_url).rstrip("/")
    db_kind = "PostgreSQL" if not request.app.state.db.is_sqlite else "SQLite"
    v1 = html.escape(f"{base}/v1")
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Steelyard</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<style>
 body {{ font: 16px/1.5 system-ui, sans-serif; max-width: 46rem; margin: 3rem auto; padding: 0 1rem;
        color: #1d232a; }}
 code, pre {{ background: #f2f4f6; border-radius: 4px; }}
 pre {{ padding: 1rem; overflow-x: auto; }}
 h1 {{ margin-bottom: 0; }} .muted {{ color: #5b6570; }}
</style></head>
<body>
<h1>Steelyard</h1>
<p class="muted">Version {__version__} &middot; database: {db_kind} &middot; Scale-compatible API at
<code>{v1}</code></p>
<p>Steelyard is running. Customers send labeling work through the Scale v1 API; workers label
it; callbacks report the results.</p>
<h2>Connect the <code>scaleapi</code> client</h2>
<pre>pip install scaleapi
import scaleapi
client = scaleapi.ScaleClient("YOUR_API_KEY", api_instance_url="{v1}")
client.create_project(project_name="cars", task_type=scaleapi.tasks.TaskType.ImageAnnotation)</pre>
<p>Keys starting <code>test_</code> use the test environment (tasks complete at once with a
synthetic response); <code>live_</code> keys queue tasks for your workers. Create an organization
and its keys with <code>steelyard org create NAME --json</code>; <code>make run</code> prints the
demo organization's keys.</p>
<h2>More</h2>
<ul><li><a href="/">The labeling app</a> (workers sign in there)</li>
<li><a href="/docs">API reference (OpenAPI)</a></li>
<li>Workers sign in with <code>POST /api/auth/login</code> and take tasks with
<code>POST /api/work/next</code>.</li></ul>
</body></html>"""


@router.get("/healthz")
def healthz() -> dict[str, str]:
    return {"status": "ok"}
