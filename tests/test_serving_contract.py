"""Property-based contract test of the serving API against its own /openapi.json, as
tests/test_openapi_contract.py does for the transactional API (same callers and checks): no 5xx
but documented ones, documented status codes, content types, headers and bodies (errors are
application/problem+json), invalid input rejected.

The app serves a small real catalogue (search index and recommendations over it, popularity only:
no model is registered), so valid requests reach the engines rather than a 503."""

from __future__ import annotations

import pytest
import schemathesis
from hypothesis import strategies as st
from schemathesis.specs.openapi.checks import positive_data_acceptance

from serving.app import create_app
from serving.config import SearchSettings
from serving.search.service import SearchService
from tests import recommendation_world as worlds
from tests.test_openapi_contract import (  # noqa: F401 (caller_headers is a fixture)
    CALLERS,
    CONFIG,
    CONTRACT_SETTINGS,
    caller_headers,
)

# The document needs no services: the app is built at import (one test per operation) around an
# unloaded index; the fixture below gives it the loaded catalogue before the first call.
app = create_app(SearchService(SearchSettings()))
schema = schemathesis.openapi.from_asgi("/openapi.json", app, config=CONFIG)


@pytest.fixture(scope="module", autouse=True)
def loaded_catalogue(migrated_database, tmp_path_factory):
    folder = tmp_path_factory.mktemp("serving-contract")
    saved = worlds.use_mlflow_store(folder)
    worlds.build_world()
    app.state.search = worlds.search_service(folder)
    app.state.recommendations = worlds.recommendation_service(app.state.search, "unregistered-model")
    yield
    worlds.restore_environment(saved)


@pytest.mark.slow
@schema.parametrize()
@schema.given(caller=st.sampled_from(CALLERS))
@CONTRACT_SETTINGS
def test_every_serving_response_matches_the_documented_contract(case, caller, caller_headers):  # noqa: F811
    case.call_and_validate(headers=caller_headers[caller], excluded_checks=[positive_data_acceptance])
