"""The generated marketplace as columnar tables: cheap to hold at a million SKUs, and serialisable
byte for byte (Arrow IPC streams), so two runs with one seed can be compared as bytes."""

from __future__ import annotations

import hashlib
import io
import json
import uuid
from dataclasses import dataclass, fields
from pathlib import Path

import polars as pl

DATAGEN_NAMESPACE = uuid.UUID("6f1d7a52-4a3c-5b59-9d0e-3c1b8f2a7e44")


def dataset_namespace(scale: str, seed: int) -> uuid.UUID:
    """Every id of one generated marketplace is a uuid5 in this namespace: deterministic, and
    distinct between scales and seeds."""
    return uuid.uuid5(DATAGEN_NAMESPACE, f"{scale}:{seed}")


def deterministic_ids(namespace: uuid.UUID, kind: str, count: int) -> list[str]:
    return [str(uuid.uuid5(namespace, f"{kind}:{index}")) for index in range(count)]


@dataclass
class MarketplaceData:
    """Tables reference each other by row index (`*_idx` columns); every row that becomes a
    database row carries its own deterministic `id`."""

    scale: str
    seed: int
    categories: pl.DataFrame
    tenants: pl.DataFrame
    warehouses: pl.DataFrame
    products: pl.DataFrame
    skus: pl.DataFrame
    inventory: pl.DataFrame
    buyers: pl.DataFrame
    events: pl.DataFrame
    orders: pl.DataFrame
    sub_orders: pl.DataFrame
    order_items: pl.DataFrame
    payments: pl.DataFrame
    reviews: pl.DataFrame
    currency: str = "USD"

    @property
    def namespace(self) -> uuid.UUID:
        return dataset_namespace(self.scale, self.seed)

    def tables(self) -> dict[str, pl.DataFrame]:
        return {f.name: getattr(self, f.name) for f in fields(self) if isinstance(getattr(self, f.name), pl.DataFrame)}

    def counts(self) -> dict[str, int]:
        return {name: table.height for name, table in self.tables().items()}

    def to_bytes(self) -> bytes:
        """Every table as an uncompressed Arrow IPC stream, in a fixed order."""
        buffer = io.BytesIO()
        buffer.write(json.dumps(self._manifest()).encode())
        for name, table in self.tables().items():
            buffer.write(name.encode())
            table.write_ipc_stream(buffer, compression="uncompressed")
        return buffer.getvalue()

    def _manifest(self) -> dict:
        return {"scale": self.scale, "seed": self.seed, "currency": self.currency}

    def fingerprint(self) -> str:
        return hashlib.sha256(self.to_bytes()).hexdigest()

    def save(self, directory: Path) -> None:
        directory.mkdir(parents=True, exist_ok=True)
        (directory / "manifest.json").write_text(json.dumps(self._manifest()))
        for name, table in self.tables().items():
            table.write_ipc(directory / f"{name}.arrow", compression="uncompressed")

    @classmethod
    def load(cls, directory: Path) -> MarketplaceData:
        manifest = json.loads((directory / "manifest.json").read_text())
        tables = {f.name: pl.read_ipc(directory / f"{f.name}.arrow")
                  for f in fields(cls) if f.name not in manifest}
        return cls(**manifest, **tables)
