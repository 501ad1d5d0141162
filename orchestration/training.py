"""Recommender training downstream of gold: evaluation -> training -> FAISS index -> registration.

- `ml/model_evaluation`: every configured model (and their blend) tuned on a validation split of
  gold.interactions and scored on a held-out split; the whole table goes to MLflow. The log carries
  gold.sessions as its session log (item2vec's sentences), cut to what each split's training part
  allows, so no held-out interaction reaches a model through a session. The best
  item-vector model by validation is chosen, because serving retrieves with FAISS.
- `ml/recommender`: that model refitted with its chosen hyper-parameters on all interactions (the
  latest ones included), logged as an MLflow run of kind `training` with its embeddings and ids.
- `ml/item_index`: a FAISS index over its item vectors, tuned on its user vectors, added to the
  run; a blocking check demands recall@10 >= 0.95 against exact search on other users.
- `ml/registered_recommender`: the run registered as `models.tracking.REGISTERED_MODEL`; it becomes
  `champion` only when it beats the champion on validation NDCG@10, otherwise `challenger`.

Every step reads gold at the Delta versions the evaluation pinned (time travel), and every run
records them as parameters, so a model always says which data it learnt from."""

import time
from dataclasses import dataclass
from typing import TYPE_CHECKING

import dagster as dg
import numpy as np
import pandas as pd
from pydantic import Field

from orchestration.lakehouse import gold_key
from pipelines import gold, tables

if TYPE_CHECKING:
    from models.data import Interactions

GROUP = "ml"
TRAINING_TABLES = ("interactions", "item_popularity", "sessions")
EVALUATION_KEY = dg.AssetKey(["ml", "model_evaluation"])
RECOMMENDER_KEY = dg.AssetKey(["ml", "recommender"])
INDEX_KEY = dg.AssetKey(["ml", "item_index"])
REGISTERED_KEY = dg.AssetKey(["ml", "registered_recommender"])
RECALL_CHECK = "faiss_recall"
MIN_RECALL = 0.95
CHECK_QUERIES = 1000
# sasrec is left out: minutes of CPU per fit, and the served model must have item vectors anyway.
EVALUATED_MODELS = ("item_pop", "decayed_pop", "category_pop", "tenant_pop", "als", "ease", "item2vec")


class TrainingConfig(dg.Config):
    """What the evaluation compares, and how."""

    models: list[str] = Field(default_factory=lambda: list(EVALUATED_MODELS))
    protocol: str = "leave-last-out"
    k: int = 10
    seed: int = 0
    max_test_users: int = 20_000


@dataclass(frozen=True)
class Evaluated:
    """The evaluation's outcome: the data versions it read and the item-vector model it chose."""

    versions: dict[str, int]
    run_id: str
    model: str
    params: dict[str, object]
    validation: float
    k: int


@dataclass(frozen=True)
class Trained:
    run_id: str
    model: str
    validation: float
    users: int


def version_params(versions: dict[str, int]) -> dict[str, int]:
    """MLflow parameters naming the Delta table versions a run read."""
    return {f"data_version_{table}": version for table, version in versions.items()}


def current_versions() -> dict[str, int]:
    return {f"gold.{name}": tables.delta_table(gold.gold_uri(name)).version() for name in TRAINING_TABLES}


def _read(name: str, version: int, columns: list[str]) -> pd.DataFrame:
    table = tables.delta_table(gold.gold_uri(name))
    table.load_as_version(version)
    return table.to_pandas(columns=columns)


def training_frame(versions: dict[str, int]) -> pd.DataFrame:
    """Positive implicit feedback per (user, item) from gold.interactions with each item's category
    from gold.item_popularity, both as of the given versions, in a stable order."""
    pairs = _read(
        "interactions",
        versions["gold.interactions"],
        ["user_key", "product_id", "tenant_id", "weight", "last_interaction_at"],
    )
    categories = (
        _read(
            "item_popularity", versions["gold.item_popularity"], ["product_id", "category_id", "window_days"]
        )
        .sort_values("window_days")
        .drop_duplicates("product_id", keep="last")[["product_id", "category_id"]]
    )
    frame = (
        pairs[pairs["weight"] > 0]
        .merge(categories, on="product_id", how="left")
        .rename(columns={"user_key": "user", "product_id": "item", "last_interaction_at": "timestamp"})
        .sort_values(["user", "timestamp", "item"], kind="stable")
        .reset_index(drop=True)
    )
    if frame.empty:
        raise ValueError("gold.interactions has no positive interactions to train on")
    return frame


def session_steps(versions: dict[str, int]) -> pd.DataFrame:
    """gold.sessions as of its version, one row per step the shopper chose (an item shown in an
    impression, or taken out of the cart, says nothing about taste: gold gives such events no positive
    weight), timed at the session's start and in the session's order."""
    columns = ["session_id", "user_key", "started_at", "items", "item_events"]
    sessions = _read("sessions", versions["gold.sessions"], columns)
    steps = sessions.explode(["items", "item_events"]).dropna(subset=["items"])
    chosen = steps["item_events"].map(gold.EVENT_WEIGHTS).fillna(0.0) > 0
    return steps[chosen].rename(
        columns={"session_id": "session", "user_key": "user", "items": "item", "started_at": "timestamp"}
    )[["session", "user", "item", "timestamp"]]


def training_data(versions: dict[str, int]) -> "Interactions":
    """gold.interactions (`training_frame`) with gold.sessions as its session log, as of the versions."""
    from models.data import from_frame

    return from_frame(training_frame(versions)).with_sessions(session_steps(versions))


def _context(versions: dict[str, int], config_k: int, **extra: object) -> dict[str, object]:
    return {"dataset": "gold", "k": config_k, **version_params(versions), **extra}


@dg.asset(
    key=EVALUATION_KEY,
    group_name=GROUP,
    deps=[gold_key(name) for name in TRAINING_TABLES],
    kinds={"mlflow"},
    description="Every model and their blend tuned and scored on gold.interactions (item2vec learning "
    "from gold.sessions); the evaluation table in MLflow.",
)
def model_evaluation(context: dg.AssetExecutionContext, config: TrainingConfig) -> dg.Output[Evaluated]:
    from models import experiment, protocols, tracking
    from models.evaluation import Scoring

    versions = current_versions()
    data = training_data(versions)
    split = protocols.split(data, config.protocol, seed=config.seed).with_test_users(config.max_test_users)
    runs = experiment.run(
        [split], config.models, Scoring(k=config.k, seed=config.seed), progress=context.log.info
    )
    evaluation = experiment.table(runs)
    logged = tracking.log_evaluation(
        runs,
        evaluation,
        _context(
            versions,
            config.k,
            protocol=config.protocol,
            seed=config.seed,
            data_fingerprint=data.fingerprint(),
        ),
        config.k,
        encoded=data,
    )
    vector_runs = [run for run in runs if run.model.item_vectors() is not None]
    if not vector_runs:
        raise ValueError(f"none of {config.models} has item vectors: serving needs als or item2vec")
    best = max(vector_runs, key=lambda run: run.validation)
    chosen = Evaluated(
        versions, logged.parent_run_id, best.model_name, best.params, best.validation, config.k
    )
    return dg.Output(
        chosen,
        metadata={
            "mlflow_run_id": logged.parent_run_id,
            "chosen_model": best.model_name,
            "validation_ndcg": best.validation,
            "users": data.n_users,
            "items": data.n_items,
            "interactions": len(data),
            **version_params(versions),
            "evaluation": dg.MetadataValue.md(evaluation.to_markdown(index=False, floatfmt=".4f")),
        },
    )


@dg.asset(
    key=RECOMMENDER_KEY,
    group_name=GROUP,
    ins={"evaluated": dg.AssetIn(EVALUATION_KEY)},
    kinds={"mlflow"},
    description="The chosen item-vector model refitted on all of gold.interactions and gold.sessions "
    "(same Delta versions), logged with its embeddings and ids.",
)
def recommender(context: dg.AssetExecutionContext, evaluated: Evaluated) -> dg.Output[Trained]:
    from models import experiment, tracking

    data = training_data(evaluated.versions)
    started = time.perf_counter()
    model = experiment.MODEL_SPECS[evaluated.model].build(**evaluated.params).fit(data)
    fitted = experiment.ModelRun(
        "all",
        evaluated.model,
        evaluated.params,
        evaluated.validation,
        {},
        time.perf_counter() - started,
        model,
    )
    run_id = tracking.log_training(
        fitted, data, _context(evaluated.versions, evaluated.k, evaluation_run=evaluated.run_id), evaluated.k
    )
    context.log.info(f"{evaluated.model} on {len(data)} interactions: MLflow run {run_id}")
    return dg.Output(
        Trained(run_id, evaluated.model, evaluated.validation, data.n_users),
        metadata={
            "mlflow_run_id": run_id,
            "model": evaluated.model,
            "users": data.n_users,
            "items": data.n_items,
            **version_params(evaluated.versions),
        },
    )


def _sample(count: int, size: int, seed: int) -> np.ndarray:
    return np.sort(np.random.default_rng(seed).choice(count, size=min(size, count), replace=False))


@dg.asset(
    key=INDEX_KEY,
    group_name=GROUP,
    ins={"trained": dg.AssetIn(RECOMMENDER_KEY)},
    kinds={"faiss"},
    check_specs=[
        dg.AssetCheckSpec(
            RECALL_CHECK,
            asset=INDEX_KEY,
            blocking=True,
            description=f"recall@10 >= {MIN_RECALL} against exact search, on user "
            "vectors the index was not tuned on",
        )
    ],
    description="FAISS index over the recommender's item vectors (flat, HNSW or IVF by catalogue size), "
    "stored with its MLflow run.",
)
def item_index(context: dg.AssetExecutionContext, trained: Trained):
    from models import tracking
    from models.ann import build_index, exact_index, recall_at_k

    model = tracking.load_model(trained.run_id)
    vectors = np.ascontiguousarray(model.item_vectors(), dtype=np.float32)
    index = build_index(
        vectors,
        queries=model.user_vectors(_sample(trained.users, 5 * CHECK_QUERIES, seed=0)),
        k=10,
        target_recall=MIN_RECALL,
    )
    tracking.log_index(trained.run_id, index, k=10)
    # Measured again on other users than those the search effort was tuned on.
    queries = np.ascontiguousarray(
        model.user_vectors(_sample(trained.users, CHECK_QUERIES, seed=1)), np.float32
    )
    k = min(10, len(vectors))
    recall = recall_at_k(index.search(queries, k), exact_index(vectors).search(queries, k)[1])
    yield dg.MaterializeResult(
        metadata={
            "kind": index.kind,
            "search_effort": index.search_effort,
            "items": len(vectors),
            "tuning_recall_at_10": index.recall,
            "mlflow_run_id": trained.run_id,
        }
    )
    yield dg.AssetCheckResult(
        check_name=RECALL_CHECK,
        passed=recall >= MIN_RECALL,
        severity=dg.AssetCheckSeverity.ERROR,
        metadata={"recall_at_10": recall, "queries": len(queries), "kind": index.kind},
    )


@dg.asset(
    key=REGISTERED_KEY,
    group_name=GROUP,
    ins={"trained": dg.AssetIn(RECOMMENDER_KEY)},
    deps=[INDEX_KEY],
    kinds={"mlflow"},
    description="The recommender registered in MLflow: champion when it beats the "
    "champion on validation NDCG@10, otherwise challenger.",
)
def registered_recommender(context: dg.AssetExecutionContext, trained: Trained) -> dg.MaterializeResult:
    from models import tracking

    registration = tracking.register(tracking.REGISTERED_MODEL, trained.run_id, trained.validation)
    context.log.info(
        f"{tracking.REGISTERED_MODEL} version {registration.version} ({trained.model}): {registration.alias}"
    )
    return dg.MaterializeResult(
        metadata={
            "registered_model": tracking.REGISTERED_MODEL,
            "version": registration.version,
            "alias": registration.alias,
            "model": trained.model,
            "validation_ndcg": trained.validation,
            "champion_validation_before": registration.champion_validation,
            "mlflow_run_id": trained.run_id,
        }
    )


TRAINING = dg.AssetSelection.groups(GROUP)

# The lakehouse brought up to date first, so a model learns from every settled change.
train_job = dg.define_asset_job(
    "train",
    selection=TRAINING.upstream().required_multi_asset_neighbors(),
    description="Bronze ingest -> silver -> gold -> model evaluation -> training -> FAISS index -> registration.",
)

defs = dg.Definitions(
    assets=[model_evaluation, recommender, item_index, registered_recommender], jobs=[train_job]
)
