"""Signed click links: ``GET /c/{token}`` where the token carries (auction id, ad id, landing URL, price).

Signed with HMAC by itsdangerous; the newest key signs, all configured keys verify (rotation), and tokens
expire. A token is only ever made for an ad of the auction it names, so the redirect can only reach a landing
page that was in that auction: no open redirect.
"""

from __future__ import annotations

from dataclasses import dataclass

from itsdangerous import BadSignature, SignatureExpired, URLSafeTimedSerializer

from service.errors import ExpiredClickToken, InvalidClickToken

SALT = "click-v1"


@dataclass(frozen=True, slots=True)
class ClickTarget:
    auction_id: str
    ad_id: str
    url: str
    price: float  # charged per (first) click: the auction's price per click
    advertiser_id: str | None = None  # whose budget pays (None: the ad id stands for its advertiser)

    @property
    def payer(self) -> str:
        return self.advertiser_id or self.ad_id


class ClickSigner:
    def __init__(self, keys: list[str], base_url: str, ttl_s: int) -> None:
        """``keys``: oldest first, the last one signs."""
        if not keys:
            raise ValueError("at least one click-signing key is needed")
        self._serializer = URLSafeTimedSerializer(keys, salt=SALT)
        self._base_url = base_url.rstrip("/")
        self._ttl_s = ttl_s

    def token(self, target: ClickTarget) -> str:
        payload: list[object] = [target.auction_id, target.ad_id, target.url, target.price]
        if target.advertiser_id is not None:
            payload.append(target.advertiser_id)
        return str(self._serializer.dumps(payload))

    def url(self, target: ClickTarget) -> str:
        return f"{self._base_url}/c/{self.token(target)}"

    def verify(self, token: str) -> ClickTarget:
        try:
            payload = self._serializer.loads(token, max_age=self._ttl_s)
        except SignatureExpired as exc:
            raise ExpiredClickToken("this click link has expired") from exc
        except BadSignature as exc:
            raise InvalidClickToken("unknown click link") from exc
        if not (
            isinstance(payload, list)
            and len(payload) in (4, 5)
            and all(isinstance(p, str) for p in payload[:3])
            and isinstance(payload[3], int | float)
            and (len(payload) == 4 or isinstance(payload[4], str))
        ):
            raise InvalidClickToken("unknown click link")
        advertiser = payload[4] if len(payload) == 5 else None
        return ClickTarget(payload[0], payload[1], payload[2], float(payload[3]), advertiser)
