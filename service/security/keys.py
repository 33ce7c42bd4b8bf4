"""API keys: stored only as SHA-256 hashes, in the configuration (``AUCTION_API_KEYS``) or in Redis (hash
``apikeys``, so keys can be issued and revoked at run time across replicas). Several keys can be valid at once:
rotation is "add the new key, move clients, revoke the old one"."""

from __future__ import annotations

import hashlib
import json
import secrets
import time
from dataclasses import dataclass

import redis.asyncio as aioredis
from redis.exceptions import RedisError

from service.observability import metrics

REDIS_HASH = "apikeys"
SCOPES = frozenset({"auctions", "metrics", "admin"})


@dataclass(frozen=True, slots=True)
class ApiKey:
    name: str
    scopes: frozenset[str]
    per_minute: int | None = None  # overrides the service-wide rate limit; 0 = unlimited


def hash_key(key: str) -> str:
    return hashlib.sha256(key.encode("utf-8")).hexdigest()


def new_key() -> str:
    return "ak_" + secrets.token_urlsafe(32)


def parse_entry(entry: str) -> tuple[str, ApiKey]:
    """``name:sha256hex[:scope+scope[:per_minute]]`` → (hash, key). Default scope: auctions."""
    parts = entry.split(":")
    if len(parts) < 2 or len(parts[1]) != 64:
        raise ValueError(f"API key entry {entry[:20]!r}…: expected name:sha256hex[:scopes[:per_minute]]")
    scopes = frozenset(parts[2].split("+")) if len(parts) > 2 and parts[2] else frozenset({"auctions"})
    if not scopes <= SCOPES:
        raise ValueError(f"API key {parts[0]!r}: unknown scopes {sorted(scopes - SCOPES)}")
    per_minute = int(parts[3]) if len(parts) > 3 and parts[3] else None
    return parts[1].lower(), ApiKey(parts[0], scopes, per_minute)


class KeyStore:
    def __init__(self, entries: list[str], redis: aioredis.Redis | None, cache_ttl_s: float = 30.0) -> None:
        self._configured = dict(parse_entry(e) for e in entries)
        self._redis = redis
        self._cache: dict[str, tuple[ApiKey | None, float]] = {}
        self._cache_ttl_s = cache_ttl_s

    async def lookup(self, key: str) -> ApiKey | None:
        digest = hash_key(key)
        if digest in self._configured:
            return self._configured[digest]
        if self._redis is None:
            return None
        cached = self._cache.get(digest)
        if cached and cached[1] > time.monotonic():
            return cached[0]
        try:
            raw = await self._redis.hget(REDIS_HASH, digest)
        except RedisError:
            metrics.REDIS_ERRORS.labels("key_lookup").inc()
            return cached[0] if cached else None  # Redis down: last known answer, else refuse
        found = None
        if raw is not None:
            value = json.loads(raw)
            found = ApiKey(value["name"], frozenset(value["scopes"]), value.get("per_minute"))
        self._cache[digest] = (found, time.monotonic() + self._cache_ttl_s)
        return found

    async def issue(self, name: str, scopes: frozenset[str], per_minute: int | None = None) -> str:
        """Store a new key's hash in Redis; returns the key (shown once, never stored)."""
        if self._redis is None:
            raise RuntimeError("issuing keys at run time needs Redis")
        key = new_key()
        value = {"name": name, "scopes": sorted(scopes), "per_minute": per_minute}
        await self._redis.hset(REDIS_HASH, hash_key(key), json.dumps(value))
        return key

    async def revoke(self, name: str) -> int:
        if self._redis is None:
            raise RuntimeError("revoking keys at run time needs Redis")
        stored = await self._redis.hgetall(REDIS_HASH)
        doomed = [h for h, v in stored.items() if json.loads(v)["name"] == name]
        if doomed:
            await self._redis.hdel(REDIS_HASH, *doomed)
        return len(doomed)
