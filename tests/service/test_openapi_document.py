"""The OpenAPI document and the page that shows it: the document is encoded once per app, so
clients that ask for it again and again (or pipeline requests for it and never read the
answers) cost the server a copy of the bytes, not a new encoding of 110 KB each time."""

from __future__ import annotations

from typing import Any

import pytest


def test_the_document_is_encoded_once_and_answers_as_json(
    client, monkeypatch: pytest.MonkeyPatch
) -> None:  # type: ignore[no-untyped-def]
    app = client.app
    built: list[dict[str, Any]] = []
    original = app.openapi

    def counted() -> dict[str, Any]:
        built.append(original())
        return built[-1]

    monkeypatch.setattr(app, "openapi", counted)
    answers = [client.get("/openapi.json") for _ in range(3)]
    assert [answer.status_code for answer in answers] == [200, 200, 200]
    assert answers[0].headers["content-type"] == "application/json"
    assert answers[0].content == answers[1].content == answers[2].content
    document = answers[0].json()
    assert {"/digit", "/mpg", "/number"} <= set(document["paths"])
    assert "/openapi.json" not in document["paths"]  # the document does not describe itself
    assert len(built) == 1


def test_the_api_page_reads_the_document(client) -> None:  # type: ignore[no-untyped-def]
    page = client.get("/docs")
    assert page.status_code == 200
    assert "url: '/openapi.json'" in page.text
