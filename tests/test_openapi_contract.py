"""Property-based contract test of the whole transactional API against its own /openapi.json.

Schemathesis generates valid and invalid requests for every operation and sends each as one of
four callers (anonymous, buyer, seller admin, platform admin), so authorised code paths run
too. Every built-in check applies: no 5xx; documented status codes, content types, headers and
body schemas (errors are application/problem+json); invalid input rejected; authentication
enforced where the document requires it. Only "valid input is accepted" is left out: valid
input still meets 404s for random ids, 403s for the wrong role and 409s for taken names.
"""

from __future__ import annotations

import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from schemathesis.config import SchemathesisConfig
from schemathesis.specs.openapi.checks import positive_data_acceptance

from tests.factories import buyer, platform_admin, seller
from transactional.api.app import create_app

CALLERS = ("anonymous", "buyer", "seller", "platform")

# Tokens come from real callers, not from generation; schemathesis' auth check still sends each
# secured operation once without a token and once with a bogus one and expects 401/403.
CONFIG = SchemathesisConfig.from_dict({"generation": {"with-security-parameters": False}})
# Loaded eagerly (one test per operation): building the app and its document needs no database.
schema = schemathesis.openapi.from_asgi("/openapi.json", create_app(), config=CONFIG)
# Reproducible runs of a bounded size; the fixtures make real callers, which is slow but not wrong.
CONTRACT_SETTINGS = settings(max_examples=30, deadline=None, derandomize=True,
                             suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow,
                                                    HealthCheck.filter_too_much])


@pytest.fixture
def caller_headers(client) -> dict[str, dict[str, str]]:
    return {"anonymous": {}, "buyer": buyer(client), "seller": seller(client)[1], "platform": platform_admin(client)}


@pytest.mark.slow
@schema.parametrize()
@schema.given(caller=st.sampled_from(CALLERS))
@CONTRACT_SETTINGS
def test_every_response_matches_the_documented_contract(case, caller, caller_headers):
    case.call_and_validate(headers=caller_headers[caller], excluded_checks=[positive_data_acceptance])

