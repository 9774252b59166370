"""The API against its own OpenAPI document with schemathesis: every operation, generated valid and
invalid requests, all of schemathesis' checks (status codes, content types, response schemas,
negative data rejected, valid data accepted, auth not ignored, no 5xx)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import schemathesis
from hypothesis import HealthCheck, settings

from pool.admin.openapi import build_document
from pool.admin.routes import ROUTES
from tests.admin.conftest import ADMIN, CONFIG_TOML, ServerThread, make_config
from tests.admin.providers import InMemoryPool
from tests.admin.sample import populate

CONFIG = make_config(rate_limit_per_second=10_000.0, rate_limit_burst=10_000)
DOCUMENT = build_document(CONFIG, InMemoryPool().kinds())
# Two checks no schema can state: a port's min <= start <= max (against its current settings) and an
# export's end after start within export_max_days. Schema-valid requests that break them get 400 with
# the reason (test_bad_input.py checks those reasons), so only there is 400 an accepted answer.
SEMANTIC_400 = {
    "include-operation-id": ["setPortDifficulty", "downloadExport"],
    "checks": {"positive_data_acceptance": {"expected-statuses": ["2xx", "400", "401", "403", "404", "409", "429"]}},
}
schema = schemathesis.openapi.from_dict(
    DOCUMENT, config=schemathesis.config.SchemathesisConfig.from_dict({"operations": [SEMANTIC_400]})
)


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerThread]:
    config_file = tmp_path_factory.mktemp("admin") / "pool.toml"
    config_file.write_text(CONFIG_TOML)
    data = populate(InMemoryPool(config_path=config_file))
    with ServerThread(data, CONFIG) as running:
        yield running


def test_document_covers_every_route() -> None:
    documented = {(method.upper(), path) for path, ops in DOCUMENT["paths"].items() for method in ops}
    assert {(r.method, r.path) for r in ROUTES} <= documented
    assert DOCUMENT["components"]["securitySchemes"]["bearer"] == {"type": "http", "scheme": "bearer"}
    export = {p["name"]: p["schema"] for p in DOCUMENT["paths"]["/api/v1/exports/{kind}"]["get"]["parameters"]}
    assert export["kind"]["enum"] == ["ccaf-countries", "regions", "regions-csv", "regions-json"]
    assert export["period"]["enum"] == ["monthly", "daily"] and export["format"]["enum"] == ["csv", "json"]


@schema.parametrize()
@settings(max_examples=15, deadline=None, derandomize=True,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow,
                                 HealthCheck.filter_too_much])
def test_api_conforms(case: schemathesis.Case, server: ServerThread) -> None:
    case.call_and_validate(base_url=server.url, headers=dict(ADMIN))


def test_worker_list_documents_best_shares() -> None:
    """GET /api/v1/workers: each worker carries its best share, all time and this round, described."""
    schemas = DOCUMENT["components"]["schemas"]
    listed = DOCUMENT["paths"]["/api/v1/workers"]["get"]["responses"]["200"]["content"]["application/json"]["schema"]
    page = schemas[listed["$ref"].rsplit("/", 1)[1]]
    item = schemas[page["properties"]["items"]["items"]["$ref"].rsplit("/", 1)[1]]
    refs = {v["$ref"].rsplit("/", 1)[1] for v in item["properties"]["best"]["anyOf"] if "$ref" in v}
    assert refs == {"BestShares"}
    best = schemas["BestShares"]
    assert {"ever", "round", "connection"} <= set(best["properties"])
    assert "current round" in best["description"] and "diff-1" in best["description"]
