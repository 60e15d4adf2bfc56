"""The API documentation pages (Swagger UI at /docs, ReDoc at /redoc) with their scripts,
styles and icon served by the service itself, not a CDN: on an office network without
internet FastAPI's default pages stay blank.

The assets are vendored under ``api/web/static/vendor`` (versions in ``versions.json``) and
served under ``/static/``. See FastAPI's "Custom Docs UI Static Assets (Self-Hosting)".
"""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.openapi.docs import get_redoc_html, get_swagger_ui_html
from fastapi.responses import HTMLResponse

router = APIRouter(include_in_schema=False)

SWAGGER_JS = "/static/vendor/swagger-ui/swagger-ui-bundle.js"
SWAGGER_CSS = "/static/vendor/swagger-ui/swagger-ui.css"
REDOC_JS = "/static/vendor/redoc/redoc.standalone.js"
FAVICON = "/static/favicon.svg"


def _root(request: Request) -> str:
    """The prefix a reverse proxy mounts the service under (``--root-path``), so that the
    pages' links work there too, as FastAPI's own docs pages do."""
    return str(request.scope.get("root_path", "")).rstrip("/")


@router.get("/docs")
async def swagger_ui(request: Request) -> HTMLResponse:
    """Swagger UI. No OAuth2 redirect page: the API authenticates by key header only."""
    root = _root(request)
    return get_swagger_ui_html(
        openapi_url=root + str(request.app.openapi_url),
        title=f"{request.app.title} — Swagger UI",
        swagger_js_url=root + SWAGGER_JS, swagger_css_url=root + SWAGGER_CSS,
        swagger_favicon_url=root + FAVICON,
        # Swagger UI would otherwise send the schema to validator.swagger.io for its badge.
        swagger_ui_parameters={**(request.app.swagger_ui_parameters or {}),
                               "validatorUrl": None})


@router.get("/redoc")
async def redoc(request: Request) -> HTMLResponse:
    """ReDoc, with the system's fonts (Google Fonts would need the internet)."""
    root = _root(request)
    return get_redoc_html(
        openapi_url=root + str(request.app.openapi_url), title=f"{request.app.title} — ReDoc",
        redoc_js_url=root + REDOC_JS, redoc_favicon_url=root + FAVICON,
        with_google_fonts=False)
