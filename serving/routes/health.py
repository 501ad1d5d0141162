from fastapi import APIRouter, Request, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from pydantic import BaseModel

from serving.search.service import SearchService, SearchUnavailable

router = APIRouter(tags=["health"])


class Readiness(BaseModel):
    status: str
    products: int
    seconds_since_refresh: float | None


@router.get("/healthz", summary="Liveness: the process is up")
def healthz() -> dict[str, str]:
    return {"status": "ok"}


@router.get("/readyz", summary="Readiness: the search index is loaded",
            responses={503: {"description": "not ready"}})
def readyz(request: Request) -> Readiness:
    service: SearchService = request.app.state.search
    if not service.ready:
        raise SearchUnavailable(f"the search index is {service.state}", field="index")
    return Readiness(status="ready", products=len(service.engine.index),
                     seconds_since_refresh=service.seconds_since_refresh())


@router.get("/metrics", summary="Prometheus metrics", response_class=Response)
def metrics() -> Response:
    return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)
