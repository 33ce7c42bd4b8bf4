"""The public click endpoint: verify the signed token, then redirect to the ad's landing page."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Request
from fastapi.responses import RedirectResponse

from service.clicks.tokens import ClickSigner

router = APIRouter(tags=["clicks"])


def get_click_signer(request: Request) -> ClickSigner:
    signer: ClickSigner = request.app.state.click_signer
    return signer


ClickSignerDep = Annotated[ClickSigner, Depends(get_click_signer)]


@router.get(
    "/c/{token}",
    status_code=302,
    response_class=RedirectResponse,
    responses={404: {"description": "Unknown or tampered link"}, 410: {"description": "Expired link"}},
)
async def click(token: str, signer: ClickSignerDep) -> RedirectResponse:
    target = signer.verify(token)
    return RedirectResponse(target.url, status_code=302, headers={"Cache-Control": "no-store"})
