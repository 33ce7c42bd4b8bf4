"""Bundled data: ``catalog.json``, a copy of the team's shared synthetic catalogue (60 ads in 12 categories with
typical bid ranges, 24 user profiles, 41 queries) for demos, tests, load tests and training contexts."""

from __future__ import annotations

import json
from functools import cache
from importlib import resources
from typing import Any


@cache
def catalog() -> dict[str, Any]:
    data: dict[str, Any] = json.loads(resources.files(__package__).joinpath("catalog.json").read_text("utf-8"))
    return data
