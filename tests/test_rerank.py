"""Retrieve-and-rerank with guardrails.

The vision-language reranker talks to a small local HTTP server that speaks
the chat-completions protocol and returns scripted answers (we cannot run a
vision model here); the CLIP reranker uses real encoders.
"""

from __future__ import annotations

import gc
import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from django.test import override_settings

from assetsearch.models import Asset
from assetsearch.pipeline import embed_assets
from assetsearch.rerank import validate_order
from assetsearch.search import Query, SearchError, search

from .utils import image_file, scene

pytestmark = pytest.mark.django_db


class FakeChatCompletions(BaseHTTPRequestHandler):
    """Answers captions with a fixed sentence and rankings with ``script(ids)``."""

    script = staticmethod(lambda ids: {"order": ids, "reason": "as asked"})
    requests: list[dict] = []

    def do_POST(self) -> None:  # noqa: N802
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        type(self).requests.append(body)
        if "response_format" not in body:
            return self._reply(200, {"choices": [{"message": {"content": "a red circle on white"}}]})
        text = body["messages"][0]["content"][0]["text"]
        ids = [int(x) for x in text.split("Candidate ids: ")[1].split(".")[0].split(", ")]
        answer = type(self).script(ids)
        if isinstance(answer, tuple):  # (status, raw body) or ("sleep", seconds)
            if answer[0] == "sleep":
                time.sleep(answer[1])
                answer = {"order": ids, "reason": "late"}
            else:
                return self._reply(answer[0], answer[1])
        content = answer if isinstance(answer, str) else json.dumps(answer)
        self._reply(200, {"choices": [{"message": {"content": content}}]})

    def _reply(self, status: int, payload) -> None:
        data = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args) -> None:
        pass


@pytest.fixture(scope="module")
def fake_vlm():
    server = ThreadingHTTPServer(("127.0.0.1", 0), FakeChatCompletions)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/v1/chat/completions"
    server.shutdown()


@pytest.fixture
def shapes():
    with override_settings(ASSETSEARCH={"AUTO_EMBED": False}):
        assets = [
            Asset.objects.create(image=image_file(scene(colour=c, shape=s), seed=i), title=f"{c} {s}")
            for i, (c, s) in enumerate([("red", "circle"), ("red", "square"), ("blue", "circle"), ("green", "star"), ("yellow", "heart")])
        ]
    embed_assets([a.pk for a in assets])
    return assets


def settings_for(url: str, **extra):
    return override_settings(ASSETSEARCH={
        "RERANKERS": {"vlm": {"BACKEND": "assetsearch.rerank.OpenAIVisionReranker", "URL": url, "MODEL": "fake-vlm", "TIMEOUT": 5, **extra}},
        "RERANK_TIMEOUT": 1.5,
    })


def run(url: str, script, **extra):
    FakeChatCompletions.script = staticmethod(script)
    with settings_for(url, **extra):
        return search(Query(text="a red circle", image=scene().render(99), rerank="vlm", rerank_top_n=5, limit=5))


def test_correct_reordering_is_applied_with_the_reason(fake_vlm, shapes):
    results = run(fake_vlm, lambda ids: {"order": list(reversed(ids)), "reason": "the last looked best"})
    vector_order = [h.asset.pk for h in search(Query(text="a red circle", image=scene().render(99), limit=5)).hits]
    assert [h.asset.pk for h in results.hits] == list(reversed(vector_order))
    assert results.rerank.applied and not results.rerank.repaired and not results.notices
    assert results.rerank.reasons == {vector_order[-1]: "the last looked best"}
    assert results.hits[0].part_ranks == {"vector": 5, "rerank": 1}


@pytest.mark.parametrize(
    "script, repaired",
    [
        (lambda ids: {"order": ids[1:4], "reason": "dropped some"}, ["appended 2 missing candidate(s) in vector order"]),
        (lambda ids: {"order": [ids[2], 999999, ids[2], ids[0]], "reason": "x"}, ["dropped 1 unknown id(s)", "removed 1 duplicate(s)", "appended 3 missing candidate(s) in vector order"]),
    ],
)
def test_missing_unknown_and_duplicate_ids_still_give_a_full_permutation(fake_vlm, shapes, script, repaired):
    results = run(fake_vlm, script)
    assert sorted(h.asset.pk for h in results.hits) == sorted(a.pk for a in shapes)
    assert results.rerank.applied and results.rerank.repaired == repaired


@pytest.mark.parametrize(
    "script, fallback",
    [
        (lambda ids: "this is not json", "not the JSON asked for"),
        (lambda ids: (500, b'{"error": "boom"}'), "HTTP 500"),
        (lambda ids: ("sleep", 3), "timed out"),  # HTTP timeout or the RERANK_TIMEOUT budget, whichever fires first
    ],
)
def test_failures_fall_back_to_the_vector_order_and_say_so(fake_vlm, shapes, script, fallback):
    vector_order = [h.asset.pk for h in search(Query(text="a red circle", image=scene().render(99), limit=5)).hits]
    started = time.monotonic()
    results = run(fake_vlm, script)
    assert time.monotonic() - started < 3  # bounded by RERANK_TIMEOUT, not by the slow endpoint
    assert [h.asset.pk for h in results.hits] == vector_order
    assert not results.rerank.applied and fallback in results.rerank.fallback
    assert "fell back to the vector order" in results.notices[-1]


def test_vlm_request_uses_json_schema_caption_and_images(fake_vlm, shapes):
    from django.core.cache import cache

    cache.clear()  # no caption cached by earlier tests
    FakeChatCompletions.requests.clear()
    run(fake_vlm, lambda ids: {"order": ids, "reason": "ok"}, IMAGES="grid")
    caption, ranking = FakeChatCompletions.requests[-2:]
    assert "response_format" not in caption and caption["model"] == "fake-vlm"
    assert ranking["response_format"]["type"] == "json_schema"
    parts = ranking["messages"][0]["content"]
    assert "The request image shows: a red circle on white" in parts[0]["text"]
    assert [p["type"] for p in parts] == ["text", "image_url"]  # one labelled grid
    FakeChatCompletions.requests.clear()
    run(fake_vlm, lambda ids: {"order": ids, "reason": "ok"})
    assert len(FakeChatCompletions.requests) == 1  # the caption came from the cache
    assert sum(p["type"] == "image_url" for p in FakeChatCompletions.requests[0]["messages"][0]["content"]) == 5


def test_clip_reranker_with_a_second_encoder_alias(shapes):
    second = {"MODEL": "ViT-B-32", "PRETRAINED": None, "DEVICE": "cpu"}
    with override_settings(ASSETSEARCH={"ENCODERS": {"second": second}, "RERANKERS": {"clip2": {"BACKEND": "assetsearch.rerank.ClipReranker", "ENCODER": "second"}}}):
        from assetsearch.encoders import get_encoder
        from assetsearch.images import decode_for_model

        results = search(Query(text="a red circle", rerank="clip2", rerank_top_n=5, limit=5))
        encoder = get_encoder("second")
        q = encoder.embed_texts(["a red circle"])[0]
        expected = []
        for hit in results.hits:
            with hit.asset.image.open("rb") as f:
                expected.append(float(encoder.embed_images([decode_for_model(f, encoder.image_size)])[0] @ q))
    assert results.rerank.applied and sorted(h.asset.pk for h in results.hits) == sorted(a.pk for a in shapes)
    assert expected == sorted(expected, reverse=True)  # ordered by the second encoder's scores
    default = search(Query(text="a red circle", rerank=True, rerank_top_n=5, limit=5))
    assert default.rerank.reranker == "clip" and default.hits[0].asset.title == "red circle"


def test_unknown_reranker_and_bad_top_n_are_clear_errors(shapes):
    with pytest.raises(SearchError, match="Unknown reranker 'nope'"):
        search(Query(text="a red circle", rerank="nope"))
    with pytest.raises(SearchError, match="rerank_top_n must be an integer between 2 and 100"):
        search(Query(text="a red circle", rerank=True, rerank_top_n=1))


def test_validate_order_is_always_a_permutation():
    assert validate_order([3, 3, "x", True, 1], [1, 2, 3]) == ([3, 1, 2], ["dropped 2 unknown id(s)", "removed 1 duplicate(s)", "appended 1 missing candidate(s) in vector order"])


def test_api_search_reranks_and_reports_how(client, django_user_model, fake_vlm, shapes):
    admin = django_user_model.objects.create_superuser("boss", "b@example.com", "pw")
    client.force_login(admin)
    FakeChatCompletions.script = staticmethod(lambda ids: {"order": list(reversed(ids)), "reason": "best"})
    with settings_for(fake_vlm):
        response = client.post("/api/search/", {"text": "a red circle", "rerank": "vlm", "rerank_top_n": 5, "limit": 5}, content_type="application/json")
        plain = client.post("/api/search/", {"text": "a red circle", "limit": 5}, content_type="application/json")
        bad = client.post("/api/search/", {"text": "a red circle", "rerank": "nope"}, content_type="application/json")
    assert response.status_code == 200, response.content
    body = response.json()
    assert body["rerank"]["applied"] is True and body["rerank"]["reranker"] == "vlm"
    assert [r["asset"]["id"] for r in body["results"]] == list(reversed([r["asset"]["id"] for r in plain.json()["results"]]))
    assert plain.json()["rerank"] is None
    assert bad.status_code == 400 and "Unknown reranker 'nope'" in bad.json()["error"]["fields"]["rerank"][0]


def database_connections() -> int:
    from django.db import connection

    with connection.cursor() as cursor:
        # Statistics views are a snapshot per transaction, and the test runs in one.
        cursor.execute("SELECT pg_stat_clear_snapshot()")
        cursor.execute("SELECT count(*) FROM pg_stat_activity WHERE datname = current_database()")
        return cursor.fetchone()[0]


def test_reranked_queries_do_not_leave_database_connections_open(shapes):
    """The reranker's thread queries stored vectors on its own connection; it closes it when done.

    With the garbage collector off: a connection left to it (Django's wrappers
    sit in reference cycles) would stay open until some later collection.
    """
    query = Query(text="a red circle", rerank=True, rerank_top_n=5, limit=5)
    assert search(query).rerank.applied
    before = database_connections()
    gc.disable()
    try:
        for _ in range(50):
            assert search(query).rerank.applied
        assert database_connections() <= before
    finally:
        gc.enable()
