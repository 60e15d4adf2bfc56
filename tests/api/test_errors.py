"""Bad requests get a 4xx with an error and a reason, in one shape; never a 500."""

import pytest
from fastapi.testclient import TestClient

from api.app import create_app
from api.settings import Settings

ADMIN = "fw_admin_key_for_tests_0123456789"


@pytest.fixture(scope="module")
def client(tmp_path_factory):
    app = create_app(Settings(data_dir=tmp_path_factory.mktemp("errors") / "data",
                              run_worker=False, admin_key=ADMIN))
    return TestClient(app, headers={"X-API-Key": ADMIN}, raise_server_exceptions=False)


@pytest.mark.parametrize(("method", "url", "body", "status", "reason"), [
    ("get", "/runs/abc", None, 422, "path.run_id: Input should be a valid integer"),
    ("get", "/runs/-1", None, 422, "greater than or equal to 1"),
    ("get", "/runs/99999999999999999999999", None, 422, "less than or equal to"),
    ("get", "/runs/99999", None, 404, "no run 99999"),
    ("get", "/runs/99999/settlements", None, 404, "no run 99999"),
    ("get", "/runs/1/settlements?level=ROJA", None, 422,
     "query.level: Input should be 'verde', 'amarilla', 'naranja' or 'roja'"),
    ("get", "/runs/99999/depth.tif", None, 404, "no run 99999"),
    ("get", "/runs/99999/centres", None, 404, "no run 99999"),
    ("get", "/runs/99999/evacuation", None, 404, "no run 99999"),
    ("get", "/runs/99999/summary", None, 404, "no run 99999"),
    ("get", "/alerts/%00.xml", None, 404, "no CAP message"),
    ("get", "/alerts/nope/deliveries", None, 404, "no CAP message 'nope'"),
    ("post", "/runs", None, 422, "body: Field required"),
    ("post", "/runs", {"inbox_file": "../../etc/passwd"}, 422,
     "body.inbox_file: String should match pattern"),
    ("post", "/runs", {"inbox_file": "missing.nc"}, 404, "no forecast 'missing.nc' in"),
    ("post", "/runs/upload", None, 422, "an upload is multipart/form-data"),
    ("post", "/subscriptions", None, 422, "body: Field required"),
    ("post", "/subscriptions", {"municipality_id": "x", "url": "ftp://h", "secret": "s"}, 422,
     "body.url: String should match pattern"),
    ("post", "/subscriptions", {"municipality_id": "x", "url": "http://h/cap",
                                "secret": "s" * 16}, 422, "unknown municipality id 'x'"),
    ("post", "/keys", {"role": "god", "name": "x"}, 422, "does not match any of the expected "
     "tags: 'analyst', 'admin', 'committee'"),
    ("post", "/keys", {"role": "analyst"}, 422, "body.analyst.name: Field required"),
    ("post", "/keys", {"role": "committee", "name": "x", "municipality_id": "Soyapango"}, 422,
     "'Soyapango' is a name, not an id: SLV-ADM2-"),
])
def test_bad_request_is_a_4xx_with_its_reason(client, method, url, body, status, reason):
    answer = getattr(client, method)(url, **({} if body is None else {"json": body}))
    assert answer.status_code == status, answer.text
    payload = answer.json()
    assert set(payload) - {"problems"} == {"error", "detail"}
    assert isinstance(payload["detail"], str) and reason in payload["detail"]
    if status == 422 and payload["error"] == "InvalidRequest":  # one entry per field
        assert payload["problems"] and all(set(p) == {"loc", "msg"}
                                           for p in payload["problems"])


def test_malformed_json_is_a_4xx(client):
    answer = client.post("/subscriptions", content=b"{not json",
                         headers={"Content-Type": "application/json"})
    assert answer.status_code == 422 and "JSON decode error" in answer.json()["detail"]
