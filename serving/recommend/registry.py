"""Reading item-vector models from the MLflow registry (`models.tracking`).

A registered version points at a model run, whose artifacts are the pickled model
(`model/model.pkl`, for user vectors), the item vectors (`embeddings/item_vectors.npy`), the ids
those vector rows stand for (`embeddings/item_ids.npy`, `user_ids.npy`) and a FAISS index over the
item vectors (`faiss/items.faiss`) with the search effort that reached its recall target."""

from __future__ import annotations

import pickle
import tempfile
from dataclasses import dataclass
from pathlib import Path

import faiss
import numpy as np

from models.base import Recommender
from models.tracking import CHAMPION, tracking_uri

# The registry answers these when the model or the alias does not exist (yet).
_ABSENT = {"RESOURCE_DOES_NOT_EXIST", "INVALID_PARAMETER_VALUE"}


class ModelUnusable(Exception):
    """A registered version that cannot serve (no item vectors, no ids, unreadable artifacts)."""


class IdCodes:
    """Identifier strings -> the dense codes (vector rows) a model was trained with, looked up in
    bulk by binary search over UTF-8 bytes (no per-id Python dictionary, and a quarter of the
    memory of numpy's fixed-width unicode: a million ids cost ~40 MB)."""

    def __init__(self, ids: np.ndarray) -> None:
        encoded = _utf8(ids)
        self._order = np.argsort(encoded, kind="stable")
        self._sorted = encoded[self._order]

    def __len__(self) -> int:
        return len(self._order)

    def codes(self, ids: np.ndarray | list[str]) -> np.ndarray:
        """The code of each id, -1 where unknown."""
        wanted = _utf8(ids)
        if not len(self._sorted) or not len(wanted):
            return np.full(len(wanted), -1, dtype=np.int64)
        positions = np.minimum(np.searchsorted(self._sorted, wanted), len(self._sorted) - 1)
        found = self._sorted[positions] == wanted
        return np.where(found, self._order[positions], -1).astype(np.int64)

    def code(self, identifier: str) -> int:
        return int(self.codes([identifier])[0])


def _utf8(ids: np.ndarray | list[str]) -> np.ndarray:
    return np.char.encode(np.asarray(ids, dtype=str), "utf-8") if len(ids) else np.array([], dtype="S1")


@dataclass(frozen=True)
class ModelArtifacts:
    version: str
    run_id: str
    kind: str  # the model's name (als, item2vec, ...)
    items: IdCodes
    users: IdCodes
    item_vectors: np.ndarray  # float32, row = item code
    index: faiss.Index  # inner product over item_vectors
    model: Recommender

    def user_vector(self, user_key: str) -> np.ndarray | None:
        code = self.users.code(user_key)
        if code < 0:
            return None
        vectors = self.model.user_vectors(np.array([code]))
        return None if vectors is None else np.asarray(vectors[0], dtype=np.float32)


def _client():
    from mlflow import MlflowClient

    return MlflowClient(tracking_uri=tracking_uri(), registry_uri=tracking_uri())


def champion_version(registered_model: str) -> str | None:
    """The version the `champion` alias points at; None when there is no such model or alias."""
    from mlflow.exceptions import MlflowException

    try:
        return str(_client().get_model_version_by_alias(registered_model, CHAMPION).version)
    except MlflowException as error:
        if error.error_code in _ABSENT:
            return None
        raise


def load_version(registered_model: str, version: str) -> ModelArtifacts:
    """Download and open one registered version's model, vectors, ids and FAISS index."""
    import mlflow

    client = _client()
    registered = client.get_model_version(registered_model, version)
    run = client.get_run(registered.run_id)
    with tempfile.TemporaryDirectory(prefix="marketlake-model-") as directory:
        folder = Path(directory)
        for artifact in ("model", "embeddings", "faiss"):
            mlflow.artifacts.download_artifacts(run_id=registered.run_id, artifact_path=artifact,
                                                dst_path=str(folder), tracking_uri=tracking_uri())
        missing = [name for name in ("embeddings/item_vectors.npy", "embeddings/item_ids.npy", "faiss/items.faiss")
                   if not (folder / name).exists()]
        if missing:
            raise ModelUnusable(f"{registered_model} version {version} has no {', '.join(missing)}: "
                                "only item-vector models logged with their ids can serve recommendations")
        with open(folder / "model" / "model.pkl", "rb") as stream:
            model = pickle.load(stream)
        user_ids = folder / "embeddings" / "user_ids.npy"
        index = faiss.read_index(str(folder / "faiss" / "items.faiss"))
        artifacts = ModelArtifacts(
            version=str(version),
            run_id=registered.run_id,
            kind=run.data.params.get("model", type(model).__name__),
            items=IdCodes(np.load(folder / "embeddings" / "item_ids.npy")),
            users=IdCodes(np.load(user_ids) if user_ids.exists() else np.array([], dtype=str)),
            item_vectors=np.ascontiguousarray(np.load(folder / "embeddings" / "item_vectors.npy"), dtype=np.float32),
            index=index,
            model=model,
        )
    _set_search_effort(index, run.data.params)
    if len(artifacts.items) != len(artifacts.item_vectors) or index.ntotal != len(artifacts.item_vectors):
        raise ModelUnusable(f"{registered_model} version {version}: ids, vectors and index disagree in length")
    return artifacts


def _set_search_effort(index: faiss.Index, params: dict[str, str]) -> None:
    """The effort that reached the recall target when the index was built (not every FAISS version
    stores it in the file)."""
    effort = int(params.get("faiss_search_effort", 0) or 0)
    if effort <= 0:
        return
    if isinstance(index, faiss.IndexHNSW):
        index.hnsw.efSearch = effort
    elif isinstance(index, faiss.IndexIVF):
        index.nprobe = min(effort, index.nlist)
