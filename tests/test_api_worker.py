"""The client's whole journey through the real worker: upload, poll until ready, find by text.

Upload via the API -> after commit -> real Redis -> real Celery worker with
the bundled model -> pgvector -> search via the API.
"""

from __future__ import annotations

import time

import pytest

from assetsearch.models import Asset

from .api_helpers import _fresh_throttles, assetsearch_settings, editor, make_user, token_client, viewer  # noqa: F401  (fixtures)
from .utils import image_file, scene, wait_for

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("celery_worker")]


def test_upload_poll_until_ready_then_find_it_by_text(editor, viewer):
    uploader, reader = token_client(editor), token_client(viewer)
    scenes = {
        "red circle": scene(colour="red", shape="circle"),
        "blue square": scene(colour="blue", shape="square"),
        "green star": scene(colour="green", shape="star"),
    }
    uploaded = {}
    for i, (name, s) in enumerate(scenes.items()):
        response = uploader.post("/api/assets/", {"image": image_file(s, seed=i, name=f"{name}.png"), "title": name}, format="multipart")
        assert response.status_code == 201, response.content
        assert response.json()["embedding"]["status"] == "pending"
        uploaded[name] = response.json()["id"]

    def settled(pk: int) -> dict | None:
        body = reader.get(f"/api/assets/{pk}/").json()
        return body if body["embedding"]["status"] != "pending" else None

    for name, pk in uploaded.items():
        body = wait_for(lambda pk=pk: settled(pk), timeout=120, message=f"{name} to be embedded")
        assert body["embedding"]["status"] == "ready", body["embedding"]
        assert body["embedding"]["attempts"] == 1 and body["embedding"]["error"] == ""

    response = reader.get("/api/search/", {"q": "a red circle", "limit": 3})
    assert response.status_code == 200, response.content
    results = response.json()["results"]
    assert [r["asset"]["id"] for r in results][0] == uploaded["red circle"], [(r["asset"]["title"], r["score"]) for r in results]
    assert results[0]["rank"] == 1 and results[0]["score"] > results[1]["score"]
    assert Asset.objects.ready().filter(pk__in=uploaded.values()).count() == 3


def test_status_polls_never_stall_an_upload_s_visibility(editor):
    """Poll the way the README documents (the asset's status), and a search by
    the asset meanwhile: once the worker has stored the vector, the very next
    search finds it, however many polls came before, on a small search budget."""
    client = token_client(editor)
    uploads = 4
    with assetsearch_settings(THROTTLE_RATES={"search": f"{uploads}/min", "upload": None}):
        polls, answers = 0, []
        for i in range(uploads):
            response = client.post("/api/assets/", {"image": image_file(scene(), seed=100 + i), "title": f"u{i}"}, format="multipart")
            assert response.status_code == 201, response.content
            pk = response.json()["id"]
            deadline = time.monotonic() + 120
            while True:
                polls += 1
                status = client.get(f"/api/assets/{pk}/").json()["embedding"]["status"]
                search = client.post("/api/search/", {"asset_id": pk, "limit": 1}, format="json")
                answers.append(search.status_code)
                if search.status_code == 200:
                    break
                # Ready means stored: searchable at once, not after a throttle's Retry-After.
                assert status == "pending" and search.status_code == 409, (status, search.status_code, search.content)
                assert time.monotonic() < deadline
                time.sleep(0.01)
        assert 429 not in answers and answers.count(200) <= uploads, answers
        assert polls >= uploads
