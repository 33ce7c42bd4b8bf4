"""Documented bounds of one auction request (the README's table); requests outside them get a 422."""

MAX_QUERY_CHARS = 2000
MAX_ADS = 100
MAX_TITLE_CHARS = 200
MAX_URL_CHARS = 2048
MAX_ID_CHARS = 64
MAX_BID = 1_000_000.0
MAX_PROFILE_CHARS = 4000  # the profile as compact JSON
MAX_SAMPLES = 16  # K
MAX_TOKENS = 512  # per sample
