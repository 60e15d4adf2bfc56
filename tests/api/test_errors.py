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
    ("get", "/runs/1/settlements?level=ROJA", None, 422, "level 'ROJA' unknown"),
    ("get", "/runs/99999/depth.tif", None, 404, "no run 99999"),
    ("get", "/runs/99999/centres", None, 404, "no run 99999"),
    ("get", "/runs/99999/evacuation", None, 404, "no run 99999"),
    ("get", "/runs/99999/summary", None, 404, "no run 99999"),
    ("get", "/alerts/%00.xml", None, 404, "no CAP message"),
    ("get", "/alerts/nope/deliveries", None, 404, "no CAP message 'nope'"),
    ("post", "/runs", None, 422, "body: Field required"),
    ("post", "/runs", {"inbox_file": "../../etc/passwd"}, 422, "no file"),
    ("post", "/runs/upload", None, 422, "body.forecast: Field required"),
    ("post", "/subscriptions", None, 422, "body: Field required"),
    ("post", "/subscriptions", {"municipality_id": "x", "url": "ftp://h", "secret": "s"}, 422,
     "unknown municipality id 'x'"),
    ("post", "/keys", {"role": "god", "name": "x"}, 422, "role 'god' unknown"),
    ("post", "/keys", {"role": "analyst"}, 422, "body.name: Field required"),
])
def test_bad_request_is_a_4xx_with_its_reason(client, method, url, body, status, reason):
    answer = getattr(client, method)(url, **({} if body is None else {"json": body}))
    assert answer.status_code == status, answer.text
    payload = answer.json()
    assert set(payload) == {"error", "detail"}
    assert reason in payload["detail"]


def test_malformed_json_is_a_4xx(client):
    answer = client.post("/subscriptions", content=b"{not json",
                         headers={"Content-Type": "application/json"})
    assert answer.status_code == 422 and "JSON decode error" in answer.json()["detail"]
