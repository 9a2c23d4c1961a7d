"""/docs and /redoc work without internet access: every script, style and icon they load is
served by this server."""

from __future__ import annotations

import re

import httpx
import pytest

# src="…", href="…" and ReDoc's spec-url="…" attributes, and the url: '…' Swagger UI fetches
_REFERENCES = re.compile(
    r"""(?:src|href|spec-url)\s*=\s*["']([^"']+)["']|\burl:\s*["']([^"']+)["']"""
)
CONTENT_TYPES = {".js": "javascript", ".css": "text/css", ".png": "image/png"}


def references(page: str) -> list[str]:
    return [a or b for a, b in _REFERENCES.findall(page)]


@pytest.mark.parametrize("page", ["/docs", "/redoc"])
def test_reference_pages_load_only_local_assets(http: httpx.Client, page: str) -> None:
    r = http.get(page)
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("text/html")
    refs = references(r.text)
    assert "/openapi.json" in refs
    assets = [ref for ref in refs if ref != "/openapi.json"]
    assert any(ref.endswith(".js") for ref in assets), refs
    for ref in refs:
        assert ref.startswith("/") and not ref.startswith("//"), f"{page} loads {ref} elsewhere"
    for ref in assets:
        asset = http.get(ref)
        assert asset.status_code == 200, ref
        suffix = ref[ref.rindex(".") :]
        assert CONTENT_TYPES[suffix] in asset.headers["content-type"], (ref, asset.headers)
        assert len(asset.content) > 1000, ref
    # no web fonts or validator badge fetched from elsewhere either
    assert "fonts.googleapis.com" not in r.text
    assert "validator.swagger.io" not in r.text


def test_swagger_ui_is_the_real_bundle(http: httpx.Client) -> None:
    scripts = [ref for ref in references(http.get("/docs").text) if ref.endswith(".js")]
    assert any("SwaggerUIBundle" in http.get(ref).text[:2000] for ref in scripts)


def test_oauth2_redirect_page_is_served(http: httpx.Client) -> None:
    r = http.get("/docs/oauth2-redirect")
    assert r.status_code == 200
    assert "oauth2" in r.text.lower()
