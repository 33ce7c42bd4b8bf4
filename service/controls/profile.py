"""Special-category personal data (GDPR Art. 9; the EU DSA Art. 26(3) bans profiling on it for ads) never reaches
the prompt or the CTR model: profile fields whose key names such a category are left out before anything reads
the profile, so each ad's disclosure can truthfully say none was used."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

SPECIAL_CATEGORY_KEYS = re.compile(
    r"(health|medical|diagnos|disab|religio|faith|belief|ethnic|race|racial|sexual|orientation|gender_identity|"
    r"politic|party|union|biometric|genetic)",
    re.IGNORECASE,
)


def strip_special_categories(profile: Mapping[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in profile.items() if not SPECIAL_CATEGORY_KEYS.search(str(k))}
