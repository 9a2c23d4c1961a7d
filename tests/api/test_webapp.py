"""The labeling app's pages: index.html for each client-side route, hashed assets cached for
good, a clear page when the app is not built, and the API never shadowed."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest
from fastapi import FastAPI

from steelyard.api import webapp
from tests.api.serving import serving_app
from tests.conftest import LiveServer

INDEX = '<!doctype html><div id="app"></div><script src="/assets/index-abc123.js"></script>'


@pytest.fixture
def built(tmp_path: Path) -> Path:
    (tmp_path / "assets").mkdir()
    (tmp_path / "index.html").write_text(INDEX)
    (tmp_path / "assets" / "index-abc123.js").write_text("console.log(1)")
    return tmp_path


@contextmanager
def _client(directory: Path) -> Iterator[httpx.Client]:
    app = FastAPI()

    @app.get("/api/thing")
    def thing() -> dict[str, str]:
        return {"api": "yes"}

    webapp.install(app, directory)
    with serving_app(app) as url, httpx.Client(base_url=url) as http:
        yield http


@pytest.mark.parametrize("path", ["/", "/login", "/label", "/label?project=a%20b"])
def test_each_client_route_answers_the_app(built: Path, path: str) -> None:
    with _client(built) as c:
        r = c.get(path)
    assert r.status_code == 200
    assert r.text == INDEX
    assert r.headers["content-type"].startswith("text/html")
    assert r.headers["cache-control"] == "no-cache"  # a new build shows on the next load


def test_assets_are_cached_for_good_and_unknown_paths_stay_404(built: Path) -> None:
    with _client(built) as c:
        r = c.get("/assets/index-abc123.js")
        assert r.status_code == 200
        assert "immutable" in r.headers["cache-control"]
        assert c.get("/assets/missing.js").status_code == 404
        assert c.get("/no/such/page").status_code == 404
        assert c.get("/api/thing").json() == {"api": "yes"}


def test_not_built_says_how_to_build(tmp_path: Path) -> None:
    with _client(tmp_path / "nothing-here") as c:
        r = c.get("/label")
    assert r.status_code == 503
    assert "make ui" in r.text


def test_the_app_is_served_beside_the_api(http: httpx.Client, server: LiveServer) -> None:
    """On the real app: the pages are there (built or not) and /api answers as before."""
    assert http.get("/login").status_code in (200, 503)
    assert http.get("/api/work/projects").status_code == 401
    assert http.get("/about").status_code == 200
