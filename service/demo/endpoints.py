"""A tiny demo chat page (static HTML + JS, no build step) on the streaming auction: ``GET /``."""

from __future__ import annotations

from importlib import resources
from typing import Any

from fastapi import APIRouter
from fastapi.responses import HTMLResponse

from service.data import catalog

router = APIRouter(include_in_schema=False)


@router.get("/", response_class=HTMLResponse)
async def demo_page() -> HTMLResponse:
    html = resources.files(__package__).joinpath("index.html").read_text("utf-8")
    return HTMLResponse(html, headers={"Cache-Control": "no-cache"})


@router.get("/demo/catalog.json")
async def demo_catalog() -> dict[str, Any]:
    return catalog()
