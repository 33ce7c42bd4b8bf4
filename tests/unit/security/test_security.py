from __future__ import annotations

import pytest

from service.security.keys import KeyStore, hash_key, new_key, parse_entry


def test_entries_parse_with_default_scope_and_optional_rate() -> None:
    digest = hash_key("secret")
    assert parse_entry(f"partner:{digest}") == (digest, parse_entry(f"partner:{digest}:auctions")[1])
    _, key = parse_entry(f"ops:{digest}:auctions+metrics:0")
    assert key.scopes == {"auctions", "metrics"}
    assert key.per_minute == 0


@pytest.mark.parametrize("entry", ["nohash", "name:short", f"n:{'a' * 64}:root"])
def test_bad_entries_are_refused(entry: str) -> None:
    with pytest.raises(ValueError, match="API key"):
        parse_entry(entry)


async def test_only_the_hash_is_needed_to_recognise_a_key() -> None:
    key = new_key()
    store = KeyStore([f"partner:{hash_key(key)}"], redis=None)
    found = await store.lookup(key)
    assert found is not None
    assert found.name == "partner"
    assert await store.lookup(key + "x") is None
    assert await store.lookup(hash_key(key)) is None  # knowing the stored hash is not enough
