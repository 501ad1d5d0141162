"""What search knows about a product: one flat, immutable record per browsable product.

The same record is built from PostgreSQL (the live catalog), from a products file (the generic
evaluation tool) and from a saved index snapshot, so every index part is fed one shape."""

from __future__ import annotations

import hashlib
import unicodedata
from dataclasses import asdict, dataclass, field
from typing import Any

# How much of the description goes into the product's vector: titles, brands and categories carry
# most of the meaning, and MiniLM's cost grows with every token.
EMBEDDED_DESCRIPTION_CHARS = 200


def normalise_text(text: str) -> str:
    """Case- and width-folded text with single spaces (queries, suggestion keys)."""
    return " ".join(unicodedata.normalize("NFKC", text).casefold().split())


@dataclass(frozen=True, slots=True)
class ProductDocument:
    id: str
    title: str
    description: str = ""
    brand: str | None = None
    category: str | None = None  # slug path, e.g. "fashion/shoes/running"
    category_names: tuple[str, ...] = ()  # names from the root to the product's category
    attributes: tuple[str, ...] = ()  # "colour red" pairs of the product and its active SKUs
    tenant_id: str = ""
    store_name: str = ""
    price: float = 0.0
    currency: str = "USD"
    rating_avg: float | None = None
    rating_count: int = 0
    in_stock: bool = True
    created_at: float = 0.0  # epoch seconds
    image: str | None = None
    extra: dict[str, Any] = field(default_factory=dict, compare=False)

    @property
    def category_text(self) -> str:
        return " ".join(self.category_names)

    @property
    def attribute_text(self) -> str:
        return " ".join(self.attributes)

    def embedding_text(self) -> str:
        """The text the product's semantic vector is made from."""
        parts = [self.title, self.brand or "", self.category_names[-1] if self.category_names else "",
                 self.attribute_text, self.description[:EMBEDDED_DESCRIPTION_CHARS]]
        return ". ".join(part for part in parts if part)

    def text_hash(self) -> str:
        """Identifies the embedded text: a price or stock change keeps the vector, a new title does not."""
        return hashlib.blake2b(self.embedding_text().encode(), digest_size=16).hexdigest()

    def as_record(self) -> dict[str, Any]:
        record = asdict(self)
        record["category_names"] = list(self.category_names)
        record["attributes"] = list(self.attributes)
        del record["extra"]
        return record

    @classmethod
    def from_record(cls, record: dict[str, Any]) -> ProductDocument:
        values = {name: record[name] for name in cls.__dataclass_fields__ if name in record and name != "extra"}
        values["category_names"] = tuple(values.get("category_names") or ())
        values["attributes"] = tuple(values.get("attributes") or ())
        return cls(**values)


def attribute_pairs(*attribute_maps: dict[str, Any]) -> tuple[str, ...]:
    """Distinct "key value" strings of product and SKU attributes, in first-seen order."""
    pairs: dict[str, None] = {}
    for attributes in attribute_maps:
        for key, value in (attributes or {}).items():
            if value is None or value is False:
                continue
            pairs[f"{key} {value}" if value is not True else str(key)] = None
    return tuple(pairs)
