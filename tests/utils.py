"""Test helpers: generated image files and polling."""

from __future__ import annotations

import io
import time
from collections.abc import Callable
from typing import TypeVar

from django.core.files.uploadedfile import SimpleUploadedFile

from assetsearch.demo_model.synthetic import Scene

T = TypeVar("T")


def scene(**changes: object) -> Scene:
    base = dict(shape="circle", colour="red", fill="plain", background="white", size="large", count=1, position="center")
    return Scene(**{**base, **changes})  # type: ignore[arg-type]


def image_file(s: Scene | None = None, *, seed: int = 0, name: str = "image.png", fmt: str = "PNG", size: int = 128) -> SimpleUploadedFile:
    """An uploaded-file object holding a rendered scene."""
    buffer = io.BytesIO()
    (s or scene()).render(seed, size=size).save(buffer, format=fmt)
    return SimpleUploadedFile(name, buffer.getvalue(), content_type=f"image/{fmt.lower()}")


def wait_for(predicate: Callable[[], T], timeout: float = 60.0, interval: float = 0.1, message: str = "") -> T:
    """Poll until ``predicate()`` is truthy; return its value or fail after ``timeout`` s."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {message or predicate}")
        time.sleep(interval)


# A script that marks the page if it ever runs; what a polyglot upload carries.
POLYGLOT_SCRIPT = "<html><body><script>document.title = 'XSS ran';</script></body></html>"


def polyglot_png(name: str) -> SimpleUploadedFile:
    """A valid PNG that is also an HTML page with a script (in a text chunk): the stored-XSS payload."""
    from PIL.PngImagePlugin import PngInfo

    info = PngInfo()
    info.add_text("comment", POLYGLOT_SCRIPT)
    buffer = io.BytesIO()
    scene().render(0, size=64).save(buffer, format="PNG", pnginfo=info)
    data = buffer.getvalue()
    assert POLYGLOT_SCRIPT.encode() in data
    return SimpleUploadedFile(name, data, content_type="text/html")


def store_vectors(objects, vectors, *, alias: str | None = None, content_hash: str = "x", batch_size: int = 2000) -> list:
    """Index entries (ready) holding ``vectors`` for ``objects`` of one registered model, bulk-inserted."""
    from django.contrib.contenttypes.models import ContentType

    from assetsearch.conf import app_settings
    from assetsearch.encoders import get_encoder
    from assetsearch.models import IndexEntry

    objects = list(objects)
    if not objects:
        return []
    encoder = get_encoder(alias)
    content_type = ContentType.objects.get_for_model(type(objects[0]))
    return IndexEntry.objects.bulk_create(
        (
            IndexEntry(
                content_type=content_type, object_id=obj.pk, encoder=alias or app_settings.SEARCH_ENCODER,
                model_key=encoder.key, vector=vector, content_hash=content_hash, status="ready",
                source_key=getattr(getattr(obj, "image", None), "name", "") or "",
            )
            for obj, vector in zip(objects, vectors)
        ),
        batch_size=batch_size,
        update_conflicts=True,
        unique_fields=["content_type", "object_id", "encoder"],
        update_fields=["vector", "model_key", "content_hash", "status"],
    )
