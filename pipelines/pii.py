"""Pseudonymisation at the lakehouse's door: no raw email, phone, name or street address enters it.

Each personal value is replaced by a keyed hash (HMAC-SHA256 with a secret the lakehouse never
stores), so equal values still join (the same email gives the same token) but cannot be read back
or guessed by hashing candidate emails without the key. Addresses keep only their coarse location.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import re
import secrets
from functools import lru_cache
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from pipelines.settings import lakehouse_settings
from transactional.config import get_settings

PERSONAL_KEYS = frozenset({
    "email", "phone", "phone_number", "full_name", "first_name", "last_name", "recipient", "recipient_name",
    "ip", "ip_address",
})
# Inside an address only these stay; street lines, names and phones go.
COARSE_LOCATION_KEYS = frozenset({"city", "state", "region", "country", "country_code", "postal_code", "zip"})
TOKEN_PREFIX = "pii:"


@lru_cache
def _key() -> bytes:
    configured = lakehouse_settings().lakehouse_pii_key
    if configured:
        return configured.encode()
    key_file = get_settings().home_dir / "lakehouse-pii-key"
    if not key_file.exists():
        key_file.write_text(secrets.token_urlsafe(32))
        key_file.chmod(0o600)
    return key_file.read_text().strip().encode()


def pseudonym(value: str) -> str:
    """A stable token for a personal value (normalised: trimmed, case-folded)."""
    digest = hmac.new(_key(), value.strip().casefold().encode(), hashlib.sha256).hexdigest()
    return TOKEN_PREFIX + digest[:32]


def _is_address(key: str) -> bool:
    return key == "address" or key.endswith("_address")


def scrub(value: Any) -> Any:
    """`value` (parsed JSON) with every personal field pseudonymised, recursively."""
    if isinstance(value, list):
        return [scrub(item) for item in value]
    if not isinstance(value, dict):
        return value
    cleaned = {}
    for key, item in value.items():
        if key in PERSONAL_KEYS and isinstance(item, str):
            cleaned[key] = pseudonym(item)
        elif _is_address(key) and isinstance(item, dict):
            cleaned[key] = {k: v for k, v in item.items() if k in COARSE_LOCATION_KEYS}
        else:
            cleaned[key] = scrub(item)
    return cleaned


# A JSON text that might hold personal data: one of its keys is personal or an address. Keys are
# matched as PostgreSQL writes them (`"key": `); an escaped quote inside a string value cannot match.
_MAY_BE_PERSONAL = (
    '"(?:' + "|".join(sorted(map(re.escape, PERSONAL_KEYS))) + ')"\\s*:' + '|"(?:[^"\\\\]*_)?address"\\s*:'
)


def scrub_json_column(texts: pa.Array | pa.ChunkedArray) -> pa.Array:
    """JSON texts (null: `{}`) with every personal field pseudonymised (`scrub`). Only the texts that
    may hold personal data are parsed; the rest pass through without a Python object each."""
    texts = pc.fill_null(texts, "{}")
    if isinstance(texts, pa.ChunkedArray):
        texts = texts.combine_chunks()
    suspects = pc.match_substring_regex(texts, _MAY_BE_PERSONAL)
    if not pc.any(suspects).as_py():
        return texts
    scrubbed = [json.dumps(scrub(json.loads(value)), sort_keys=True, default=str)
                for value in pc.filter(texts, suspects).to_pylist()]
    return pc.replace_with_mask(texts, suspects, pa.array(scrubbed, pa.string()))
