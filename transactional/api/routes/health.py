from fastapi import APIRouter, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from sqlalchemy import text

from transactional.db import app_engine
from transactional.errors import ProblemError

router = APIRouter(tags=["health"])


class ServiceUnavailable(ProblemError):
    status, title = 503, "Service unavailable"


@router.get("/healthz", summary="Liveness: the process is up")
def healthz() -> dict[str, str]:
    return {"status": "ok"}


@router.get("/readyz", summary="Readiness: the database answers", responses={503: {"description": "not ready"}})
def readyz() -> dict[str, str]:
    try:
        with app_engine().connect() as connection:
            connection.execute(text("SELECT 1"))
    except Exception as exc:  # any failure to reach the database means "not ready"
        raise ServiceUnavailable(f"database unavailable: {type(exc).__name__}") from exc
    return {"status": "ready"}


@router.get("/metrics", summary="Prometheus metrics", response_class=Response)
def metrics() -> Response:
    return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)
