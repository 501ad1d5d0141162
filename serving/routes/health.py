from fastapi import APIRouter, Request, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from pydantic import BaseModel, Field

from serving.recommend.service import RecommendationService, RecommendationsUnavailable
from serving.search.service import SearchService, SearchUnavailable

router = APIRouter(tags=["health"])


class RecommendationReadiness(BaseModel):
    state: str = Field(description="ready, no champion registered, model version N failed to load, ...")
    model_version: str | None = Field(description="the champion version serving; null: popular fallbacks")


class Readiness(BaseModel):
    status: str
    products: int
    seconds_since_refresh: float | None
    recommendations: RecommendationReadiness | None = None


@router.get("/healthz", summary="Liveness: the process is up")
def healthz() -> dict[str, str]:
    return {"status": "ok"}


@router.get("/readyz", summary="Readiness: the search index and the recommendation model are loaded",
            responses={503: {"description": "not ready"}})
def readyz(request: Request) -> Readiness:
    service: SearchService = request.app.state.search
    if not service.ready:
        raise SearchUnavailable(f"the search index is {service.state}", field="index")
    recommender: RecommendationService | None = request.app.state.recommendations
    if recommender is not None and not recommender.ready:
        raise RecommendationsUnavailable(f"recommendations are {recommender.state}", field="recommendations")
    return Readiness(status="ready", products=len(service.engine.index),
                     seconds_since_refresh=service.seconds_since_refresh(),
                     recommendations=RecommendationReadiness(state=recommender.state,
                                                             model_version=recommender.model_version)
                     if recommender is not None else None)


@router.get("/metrics", summary="Prometheus metrics", response_class=Response)
def metrics() -> Response:
    return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)
