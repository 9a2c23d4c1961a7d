"""The labeling app in a real browser: how long from Ctrl+Enter to the next task drawn, the
first load of the labeling screen, and the JavaScript it ships. Prints a table.

    make ui && python bench/ui.py [--tasks 30]

Serves the app in-process (SQLite in a temporary folder), drives Debian's /usr/bin/chromium
headless with Playwright, and times inside the page (performance.now()), so the figures are
the browser's: submit answered, next task leased, drawn.
"""

from __future__ import annotations

import argparse
import gzip
import statistics
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path

# bench/queue.py would shadow the standard library's queue module.
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != Path(__file__).resolve().parent]

import httpx  # noqa: E402
import uvicorn  # noqa: E402
from playwright.sync_api import sync_playwright  # noqa: E402

from steelyard.accounts import security  # noqa: E402
from steelyard.accounts import service as accounts  # noqa: E402
from steelyard.api.app import create_app  # noqa: E402
from steelyard.api.webapp import WEB_DIST  # noqa: E402
from steelyard.config import load_settings  # noqa: E402

CHROMIUM = "/usr/bin/chromium"
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--no-first-run"]
PASSWORD = "amber-kettle-orbit-lantern"

# Resolves with ms from Ctrl+Enter to the moment another task id is in the page.
TIME_NEXT = """async () => {
  const before = document.querySelector('[data-testid=task]')?.dataset.taskId;
  const t0 = performance.now();
  const drawn = new Promise((resolve) => {
    const obs = new MutationObserver(() => {
      const el = document.querySelector('[data-testid=task]');
      const empty = document.querySelector('[data-testid=empty]');
      if ((el && el.dataset.taskId !== before) || empty) { obs.disconnect(); resolve(); }
    });
    obs.observe(document.body, {subtree: true, childList: true, attributes: true});
  });
  window.dispatchEvent(new KeyboardEvent('keydown', {key: 'Enter', ctrlKey: true}));
  await drawn;
  return performance.now() - t0;
}"""


def serve(data: Path) -> tuple[str, uvicorn.Server, object]:
    settings = load_settings(data_dir=data)
    app = create_app(settings)
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=0, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    while not server.started:
        time.sleep(0.02)
    port = server.servers[0].sockets[0].getsockname()[1]
    return f"http://127.0.0.1:{port}", server, app


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--tasks", type=int, default=30)
    args = parser.parse_args()
    if not (WEB_DIST / "index.html").is_file():
        raise SystemExit("Build the app first: make ui")
    with tempfile.TemporaryDirectory() as tmp:
        url, server, app = serve(Path(tmp))
        db = app.state.db  # type: ignore[attr-defined]
        hashed = security.hash_password(PASSWORD)  # slow: never inside the write
        with db.unit_of_work() as session:
            org = accounts.create_organization(session, f"bench-{uuid.uuid4().hex[:8]}")
            accounts.create_user(
                session,
                org_id=org.org.id,
                email="bench@example.com",
                password_hash=hashed,
                role="annotator",
            )
        key = httpx.BasicAuth(org.live_api_key, "")
        with httpx.Client(base_url=url, auth=key, timeout=30) as http:
            body = {"type": "categorization", "name": "bench", "params": {"categories": ["a", "b"]}}
            http.post("/v1/projects", json=body).raise_for_status()
            for i in range(args.tasks + 1):
                task = {"project": "bench", "attachment": f"item {i}", "attachment_type": "text"}
                http.post("/v1/task/categorization", json=task).raise_for_status()
        with sync_playwright() as pw:
            browser = pw.chromium.launch(executable_path=CHROMIUM, headless=True, args=ARGS)
            page = browser.new_page(viewport={"width": 1280, "height": 800})
            page.goto(url + "/login")
            page.get_by_label("Email").fill("bench@example.com")
            page.get_by_label("Password").fill(PASSWORD)
            page.get_by_role("button", name="Sign in").click()
            page.get_by_role("heading", name="Your projects").wait_for()
            loads = []
            for _ in range(5):
                t0 = time.perf_counter()
                page.goto(url + "/label?project=bench")
                page.get_by_test_id("task").wait_for()
                loads.append((time.perf_counter() - t0) * 1000)
            nexts = []
            for _ in range(args.tasks):
                page.keyboard.press("1")
                nexts.append(page.evaluate(TIME_NEXT))
            browser.close()
        server.should_exit = True
    js = sum(len(p.read_bytes()) for p in (WEB_DIST / "assets").glob("*.js"))
    js_gz = sum(len(gzip.compress(p.read_bytes(), 9)) for p in (WEB_DIST / "assets").glob("*.js"))
    print("| measure | value |")
    print("|---|---|")
    print(
        f"| submit to next task drawn, median (p90) of {len(nexts)} | "
        f"{statistics.median(nexts):.1f} ms ({sorted(nexts)[int(0.9 * len(nexts)) - 1]:.1f} ms) |"
    )
    print(
        f"| first load of /label to task drawn, median of {len(loads)} | "
        f"{statistics.median(loads):.0f} ms |"
    )
    print(f"| JavaScript shipped (all of it) | {js / 1024:.1f} KB, {js_gz / 1024:.1f} KB gzip |")


if __name__ == "__main__":
    main()
