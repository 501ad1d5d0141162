"""Opaque keyset cursors for search pages.

A page is the results after the last one shown, in the total order (sort key, product id key), so
a product added or removed between requests never makes the next page repeat or skip a result
that is still there (offsets would). The cursor is bound to the query, filters, sort and shopper
it was made for: replayed on another search it is refused instead of silently mis-paging."""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
from dataclasses import dataclass

from transactional.errors import BadRequest


@dataclass(frozen=True)
class Position:
    key: float
    id_key: int


def fingerprint(*parts: object) -> str:
    return hashlib.blake2b(json.dumps([str(part) for part in parts]).encode(), digest_size=8).hexdigest()


def encode_cursor(search_fingerprint: str, position: Position) -> str:
    raw = json.dumps([search_fingerprint, position.key, position.id_key])
    return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")


def decode_cursor(cursor: str, search_fingerprint: str) -> Position:
    try:
        made_for, key, product_key = json.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
        if made_for != search_fingerprint:
            raise ValueError("cursor of another search")
        return Position(float(key), int(product_key))
    except (ValueError, TypeError, binascii.Error, UnicodeDecodeError) as exc:
        raise BadRequest("the cursor is malformed or belongs to another search (query, filters, sort)",
                         field="cursor") from exc
