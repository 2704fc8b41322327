"""Upload -> after commit -> real broker -> real worker with the bundled model -> pgvector -> search."""

from __future__ import annotations

import io
from contextlib import contextmanager
from datetime import timedelta

import pytest
from celery import current_app
from kombu import pools
from django.contrib.postgres.search import SearchQuery
from django.core.checks import run_checks
from django.core.files.uploadedfile import SimpleUploadedFile
from django.core.management import call_command
from django.test import override_settings

from assetsearch.models import Asset, EmbeddingStatus, IndexEntry
from assetsearch.encoders import get_encoder
from assetsearch.pipeline import embed_assets
from assetsearch.tasks import sweep_pending
from assetsearch.search import search_text

from .utils import image_file, scene, wait_for

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("celery_worker")]


def status_of(asset: Asset) -> str:
    asset.refresh_from_db()
    return asset.embedding_status


def wait_until_settled(*assets: Asset, timeout: float = 90) -> None:
    for asset in assets:
        wait_for(lambda: status_of(asset) != EmbeddingStatus.PENDING, timeout=timeout, message=f"asset {asset.pk} to settle")


def test_upload_is_embedded_by_the_worker_and_found_by_a_describing_text():
    scenes = {
        "red circle": scene(colour="red", shape="circle"),
        "blue square": scene(colour="blue", shape="square"),
        "green star": scene(colour="green", shape="star"),
        "yellow triangle": scene(colour="yellow", shape="triangle"),
        "purple heart": scene(colour="purple", shape="heart"),
    }
    assets = {name: Asset.objects.create(image=image_file(s, seed=i), title=f"asset {i}") for i, (name, s) in enumerate(scenes.items())}
    assert all(a.embedding_status == EmbeddingStatus.PENDING for a in assets.values())
    wait_until_settled(*assets.values())
    for asset in assets.values():
        asset.refresh_from_db()
        assert asset.embedding_status == EmbeddingStatus.READY, asset.embedding_error
        assert asset.embedding_attempts == 1
        assert (asset.width, asset.height, asset.mime_type) == (128, 128, "image/png")
    assert IndexEntry.objects.for_model(Asset).with_vector(get_encoder().key).count() == len(scenes)

    for query, name in [("a red circle", "red circle"), ("a green star", "green star"), ("a blue square", "blue square")]:
        hits = search_text(query, limit=3)
        assert hits[0].asset == assets[name], [(h.asset.title, h.score) for h in hits]
        assert hits[0].rank == 1 and hits[0].score > hits[1].score


def test_corrupt_upload_ends_failed_with_a_message_and_is_not_retried():
    not_an_image = Asset.objects.create(image=SimpleUploadedFile("notes.png", b"this is not a png"), title="junk")
    png = image_file().read()
    truncated = Asset.objects.create(image=SimpleUploadedFile("cut.png", png[: len(png) // 2]), title="cut")
    wait_until_settled(not_an_image, truncated)
    assert not_an_image.embedding_status == EmbeddingStatus.FAILED
    assert "not an image" in not_an_image.embedding_error
    assert truncated.embedding_status == EmbeddingStatus.FAILED
    assert "could not be decoded" in truncated.embedding_error
    # Permanent errors are not retried: one attempt, and still one a moment later.
    import time

    time.sleep(1.5)
    for asset in (not_an_image, truncated):
        asset.refresh_from_db()
        assert asset.embedding_attempts == 1
    assert not IndexEntry.objects.for_objects(Asset, [not_an_image.pk, truncated.pk]).with_vector().exists()


def point_producers_at(url: str) -> None:
    app = current_app
    app.conf.broker_url = url
    app._pool = None
    app.amqp._producer_pool = None
    pools.reset()  # kombu keeps producer pools in a global registry


@contextmanager
def broker_down():
    """Point the producer at a port nobody listens on, as if Redis had died."""
    original = current_app.conf.broker_url
    point_producers_at("redis://127.0.0.1:9/0")
    try:
        yield
    finally:
        point_producers_at(original)


def test_upload_while_broker_is_down_is_kept_pending_and_recovered_by_the_sweep():
    with broker_down():
        asset = Asset.objects.create(image=image_file(scene(colour="orange", shape="star")), title="saved during outage")
    asset.refresh_from_db()
    assert asset.pk and asset.embedding_status == EmbeddingStatus.PENDING
    assert sweep_pending(timedelta(hours=1)) == 0  # too recent to sweep
    assert sweep_pending(timedelta(0)) == 1
    wait_until_settled(asset)
    assert asset.embedding_status == EmbeddingStatus.READY
    assert search_text("an orange star", limit=1)[0].asset == asset


def test_sweep_command_reports_what_it_re_enqueued():
    with broker_down():
        Asset.objects.create(image=image_file(), title="a")
    from io import StringIO

    out = StringIO()
    call_command("assetsearch_sweep", older_than=0, stdout=out)
    assert out.getvalue().strip() == "Re-enqueued 1 pending asset(s)."


def test_unchanged_file_is_not_re_embedded_and_a_new_file_is():
    asset = Asset.objects.create(image=image_file(scene(colour="blue", shape="circle"), seed=1), title="blue")
    wait_until_settled(asset)
    first = IndexEntry.objects.for_objects(Asset, [asset.pk]).get()

    result = embed_assets([asset.pk])
    assert result.unchanged == [asset.pk] and result.embedded == []
    assert IndexEntry.objects.for_objects(Asset, [asset.pk]).get().embedded_at == first.embedded_at

    # Re-uploading the same bytes changes nothing.
    asset.image = image_file(scene(colour="blue", shape="circle"), seed=1, name="again.png")
    asset.save()
    assert not asset.file_changed
    assert status_of(asset) == EmbeddingStatus.READY

    # A different file is embedded again, and search follows it.
    asset.image = image_file(scene(colour="green", shape="triangle"), seed=2, name="new.png")
    asset.save()
    assert asset.file_changed and status_of(asset) == EmbeddingStatus.PENDING
    wait_until_settled(asset)
    second = IndexEntry.objects.for_objects(Asset, [asset.pk]).get()
    assert second.content_hash == asset.content_hash != first.content_hash
    assert search_text("a green triangle", limit=1)[0].asset == asset


def test_model_change_is_detected_and_backfilled_beside_the_old_vectors():
    asset = Asset.objects.create(image=image_file(), title="red circle")
    wait_until_settled(asset)
    old_key = get_encoder().key
    assert not [m for m in run_checks(databases=["default"]) if m.id == "assetsearch.W001"]

    vit = {"MODEL": "ViT-B-32", "PRETRAINED": None, "DEVICE": "cpu"}
    with override_settings(ASSETSEARCH={"ENCODERS": {"default": vit}}):
        warnings = [m for m in run_checks(databases=["default"]) if m.id == "assetsearch.W001"]
        assert len(warnings) == 1 and "1 asset(s) have no vector from the configured model ViT-B-32:random" in warnings[0].msg

    # Backfill the next model under another alias while search keeps serving the old one.
    with override_settings(ASSETSEARCH={"ENCODERS": {"next": vit}}):
        call_command("assetsearch_reembed", encoder="next", sync=True, verbosity=0)
        assert set(IndexEntry.objects.for_objects(Asset, [asset.pk]).values_list("model_key", flat=True)) == {old_key, "ViT-B-32:random"}
        assert search_text("a red circle", limit=1)[0].asset == asset


def test_import_command_imports_a_folder_and_the_worker_embeds_it(tmp_path):
    for i, (colour, shape) in enumerate([("red", "circle"), ("blue", "star"), ("green", "square")]):
        scene(colour=colour, shape=shape).render(i).save(tmp_path / f"{colour}_{shape}.png")
    (tmp_path / "broken.jpg").write_bytes(b"\xff\xd8\xff not really a jpeg")
    (tmp_path / "notes.txt").write_text("ignored")
    out = io.StringIO()
    call_command("assetsearch_import", str(tmp_path), tag=["imported"], stdout=out, verbosity=1)
    assert "Imported 4 image(s), skipped 0" in out.getvalue()
    assets = list(Asset.objects.filter(tags__contains=["imported"]))
    assert sorted(a.title for a in assets) == ["blue star", "broken", "green square", "red circle"]
    # The bulk path reads each file as save() does and fills the full-text document.
    by_title = {a.title: a for a in assets}
    assert (by_title["red circle"].mime_type, by_title["red circle"].width) == ("image/png", 128)
    assert by_title["broken"].mime_type == "" and all(len(a.content_hash) == 64 for a in assets)
    assert [a.title for a in Asset.objects.filter(search_document=SearchQuery("star"))] == ["blue star"]
    wait_until_settled(*assets)
    statuses = {a.title: a.embedding_status for a in assets}
    assert statuses == {"blue star": "ready", "broken": "failed", "green square": "ready", "red circle": "ready"}
    assert search_text("a blue star", limit=1)[0].asset.title == "blue star"

    call_command("assetsearch_import", str(tmp_path), skip_existing=True, stdout=out, verbosity=1)
    assert "Imported 0 image(s), skipped 4" in out.getvalue()
