"""The OpenAPI schema is a contract the service keeps: Schemathesis generates valid and
invalid requests for every operation and runs all of its checks (no server error, statuses,
content types and bodies as documented, schema-valid data accepted, invalid data rejected,
authentication enforced). Examples are bounded and, under CI, derandomised."""

import os
import tempfile
from datetime import UTC, datetime
from pathlib import Path

import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.specs.openapi.checks import positive_data_acceptance

from api.app import create_app
from api.settings import Settings
from api.store.models import Run

ADMIN = "fw_schema_admin_0123456789abcdef"

_data = Path(tempfile.mkdtemp(prefix="floodwarn-schema-"))
app = create_app(Settings(data_dir=_data / "data", run_worker=False, admin_key=ADMIN))
with app.state.sessions.begin() as _session:  # a run without outputs and one still queued
    _session.add(Run(id=1, status="succeeded", rain_path="a.nc", created_at=datetime.now(UTC)))
    _session.add(Run(id=2, status="queued", rain_path="b.nc", created_at=datetime.now(UTC)))

schema = schemathesis.openapi.from_asgi("/openapi.json", app)

#: Operations whose acceptance depends on more than the schema can say: an upload's content
#: (a file's bytes are a valid forecast or not) and a map tile's x and y (0 … 2^z − 1, bounded
#: by the zoom z) cannot be expressed in OpenAPI.
CONTENT_DEPENDENT = {"POST /runs/upload", "GET /runs/{run_id}/tiles/{layer}/{z}/{x}/{y}.png",
                     "GET /terrain/tiles/hillshade/{z}/{x}/{y}.png"}


@schema.parametrize()
@settings(max_examples=int(os.environ.get("FLOODWARN_SCHEMA_EXAMPLES", "15")), deadline=None,
          suppress_health_check=list(HealthCheck))
def test_the_service_keeps_its_schema(case):
    excluded = []
    if f"{case.method.upper()} {case.path}" in CONTENT_DEPENDENT:
        excluded = [positive_data_acceptance]
    # A negative case whose headers were made invalid by leaving the key out must go without
    # it (401 is the right answer); adding the key would make the invalid request valid.
    negative_headers = case.meta is not None and any(
        location.name.lower() == "header" and info.mode.is_negative
        for location, info in case.meta.components.items())
    missing = case.headers is None or "X-API-Key" not in case.headers
    headers = {"X-API-Key": ADMIN} if missing and not negative_headers else None
    case.call_and_validate(headers=headers, excluded_checks=excluded)


def test_every_error_status_is_documented_with_the_error_shape():
    spec = app.openapi()
    for path, operations in spec["paths"].items():
        for method, operation in operations.items():
            documented = set(operation["responses"])
            assert "500" in documented, (method, path)
            if operation.get("parameters") or operation.get("requestBody"):
                assert "422" in documented, (method, path)
            if operation.get("security"):
                assert {"401", "403"} <= documented, (method, path)
            for status in documented - {"200", "201", "202"}:
                body = operation["responses"][status]["content"]["application/json"]["schema"]
                assert body["$ref"].rsplit("/", 1)[1] in ("ErrorBody", "Health"), (path, status)
