"""`marketlake demo --no-serve` does everything the demo does, then exits 0 with a summary."""

import pytest
from typer.testing import CliRunner

from orchestration.cli import app
from orchestration.processes import free_port


@pytest.mark.slow
def test_demo_without_serving_loads_simulates_and_summarises(db):
    from orchestration.demo import marketplace_counts

    result = CliRunner().invoke(
        app, ["demo", "--no-serve", "--scale", "tiny", "--shoppers", "2", "--simulate-seconds", "3",
              "--port", str(free_port())],
    )
    assert result.exit_code == 0, result.output
    counts = marketplace_counts()
    assert counts["tenants"] > 0 and counts["products"] > 0 and counts["orders"] > 0 and counts["shopper_events"] > 0
    for label in ("tenants", "products", "orders", "shopper_events", "simulation:"):
        assert label in result.output
