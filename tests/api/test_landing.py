"""``/`` and every unknown path answer JSON, whatever DEBUG is (the embedded default runs with it on,
where Django would otherwise serve its HTML debug page listing every URL pattern)."""

import pytest


@pytest.mark.django_db
@pytest.mark.parametrize("debug", [False, True])
def test_the_root_names_the_api_its_docs_schema_and_admin(client, settings, debug):
    settings.DEBUG = debug
    response = client.get("/")
    assert response.status_code == 200 and response["Content-Type"] == "application/json"
    body = response.json()
    assert body["api"] == "/api/v2.1/"
    for key in ("docs", "schema", "admin", "health"):
        # Each advertised path really answers (admin redirects to its login page).
        assert client.get(body[key]).status_code in (200, 302), key


@pytest.mark.django_db
@pytest.mark.parametrize("debug", [False, True])
@pytest.mark.parametrize("path", ["/nope", "/favicon.ico", "/v2.1/jobs", "/healthz/extra", "/static-ish/x.css"])
def test_an_unknown_path_anywhere_answers_the_json_error_shape(client, settings, debug, path):
    settings.DEBUG = debug
    for method in ("get", "post"):
        response = getattr(client, method)(path)
        assert response.status_code == 404 and response["Content-Type"] == "application/json", (method, path)
        assert response.json()["error"]["code"] == "NOT_FOUND"


@pytest.mark.django_db
def test_admin_without_its_slash_still_redirects(client):
    response = client.get("/admin")
    assert response.status_code == 301 and response["Location"] == "/admin/"
