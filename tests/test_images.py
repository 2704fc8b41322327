"""Decoding as a person sees the image: orientation, wide and alpha modes, bombs, concurrency.

Embeddings are compared through the real pipeline (``embed_assets`` with the
bundled model, vectors read back from pgvector).
"""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
import threading
from pathlib import Path

import numpy as np
import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from PIL import Image, ImageDraw

from assetsearch import images
from assetsearch.encoders import get_encoder
from assetsearch.images import InvalidImage, decode_for_model, decode_slot
from assetsearch.models import Asset, EmbeddingStatus, IndexEntry
from assetsearch.pipeline import embed_assets

from .api_helpers import assetsearch_settings
from .utils import scene

ROOT = Path(__file__).resolve().parent.parent
# Peak memory one search image may add to a web process.
SEARCH_IMAGE_MEMORY_BOUND_MB = 40


def upright() -> Image.Image:
    """An asymmetric scene: turned sideways, its pixels are another picture (the model reads it as near)."""
    return scene(shape="triangle", colour="blue", position="left", size="large").render(3, size=256)


def encoded(image: Image.Image, fmt: str = "PNG", **options: object) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format=fmt, **options)
    return buffer.getvalue()


def exif_rotated_jpeg(image: Image.Image) -> bytes:
    """``image`` stored sideways, with EXIF orientation 6 ("rotate 90 degrees clockwise to display")."""
    exif = Image.Exif()
    exif[0x0112] = 6
    return encoded(image.transpose(Image.Transpose.ROTATE_90), "JPEG", quality=95, exif=exif)


def sixteen_bit_png(image: Image.Image) -> bytes:
    grey = np.asarray(image.convert("L")).astype(np.uint16) * 257  # full 16-bit range
    sixteen = Image.fromarray(grey)
    assert sixteen.mode.startswith("I;16")
    return encoded(sixteen)


def embedded_vectors(*files: bytes) -> list[np.ndarray]:
    """Store each file as an asset, embed them with the pipeline, return their stored vectors."""
    assets = [Asset.objects.create(image=SimpleUploadedFile(f"f{i}.img", data)) for i, data in enumerate(files)]
    result = embed_assets([a.pk for a in assets])
    assert sorted(result.embedded) == sorted(a.pk for a in assets), result
    entries = IndexEntry.objects.for_objects(Asset, [a.pk for a in assets]).search_alias()
    vectors = dict(entries.values_list("object_id", "vector"))
    return [np.asarray(vectors[a.pk], dtype=np.float64) for a in assets]


def cosine(a: np.ndarray, b: np.ndarray) -> float:
    return float(a @ b / (np.linalg.norm(a) * np.linalg.norm(b)))


@pytest.mark.django_db
def test_an_exif_rotated_photo_embeds_like_its_upright_version_and_reports_its_displayed_size():
    image = upright()
    rotated, straight, sideways = embedded_vectors(
        exif_rotated_jpeg(image), encoded(image, "JPEG", quality=95), encoded(image.transpose(Image.Transpose.ROTATE_90), "JPEG", quality=95)
    )
    assert cosine(rotated, straight) >= 0.99
    # Sideways pixels embed measurably apart, so the line above fails if the orientation is not applied. They
    # are still close: the model is trained to read a turned shape as that shape (issue #20), and since stage 8
    # (a loss that pulls pictures of one colour and shape together) a turned scene is 0.975 from the upright
    # one (stage 6: 0.951). Under 0.985 keeps a margin below the 0.99 that the EXIF-rotated copy must reach.
    assert cosine(sideways, straight) < 0.985

    wide = Image.new("RGB", (200, 100), "white")  # stored 100 x 200, sideways
    assert Image.open(io.BytesIO(exif_rotated_jpeg(wide))).size == (100, 200)
    asset = Asset.objects.create(image=SimpleUploadedFile("phone.jpg", exif_rotated_jpeg(wide)))
    assert (asset.width, asset.height) == (200, 100)


@pytest.mark.django_db
def test_a_16_bit_greyscale_png_embeds_like_its_8_bit_version_not_as_a_blank():
    image = upright()
    sixteen, eight, blank = embedded_vectors(
        sixteen_bit_png(image), encoded(image.convert("L")), encoded(Image.new("L", image.size, 255))
    )
    assert cosine(sixteen, eight) >= 0.99
    assert cosine(sixteen, blank) < 0.95
    assert Asset.objects.ready().count() == 3


@pytest.mark.parametrize(
    ("mode", "fmt"),
    [("LA", "PNG"), ("RGBA", "PNG"), ("P", "PNG"), ("CMYK", "JPEG"), ("CMYK", "TIFF"), ("I", "TIFF"), ("F", "TIFF"), ("1", "PNG")],
)
def test_each_mode_decodes_to_the_colours_a_viewer_shows(mode, fmt):
    image = upright().resize((128, 128))
    if mode == "LA":
        source = image.convert("LA")
        want = image.convert("L").convert("RGB")
    elif mode == "RGBA":
        source = image.convert("RGBA")
        source.putalpha(Image.linear_gradient("L").resize(image.size))  # transparent at the top
        want = Image.alpha_composite(Image.new("RGBA", image.size, "white"), source).convert("RGB")
    elif mode == "P":
        source = image.convert("P", palette=Image.Palette.ADAPTIVE, colors=64)
        source.info["transparency"] = source.getpixel((0, 0))  # the background colour becomes transparent
        want = Image.alpha_composite(Image.new("RGBA", image.size, "white"), source.convert("RGBA")).convert("RGB")
    elif mode == "CMYK":
        source = image.convert("CMYK")
        want = image
    elif mode == "I":  # 32-bit integers holding a 16-bit range
        source = Image.fromarray(np.asarray(image.convert("L")).astype(np.int32) * 257)
        want = image.convert("L").convert("RGB")
    elif mode == "F":  # floats on 0..1
        source = Image.fromarray(np.asarray(image.convert("L")).astype(np.float32) / 255)
        want = image.convert("L").convert("RGB")
    else:
        source = image.convert("1")
        want = source.convert("RGB")
    data = encoded(source, fmt, **({"transparency": source.info["transparency"]} if mode == "P" else {}))
    decoded = decode_for_model(io.BytesIO(data), side=128)
    assert decoded.mode == "RGB" and decoded.size == (128, 128)
    difference = np.abs(np.asarray(decoded, dtype=np.float64) - np.asarray(want, dtype=np.float64)).mean()
    tolerance = 4.0 if fmt == "JPEG" else 1.0
    assert difference <= tolerance, f"{mode} {fmt}: mean difference {difference:.2f}"


@pytest.mark.parametrize("bits", [1, 2, 4])
def test_low_bit_depth_pngs_decode_packed_to_the_same_pixels(bits):
    image = upright().convert("L").resize((301, 157))  # odd width: rows end mid-byte
    levels = (1 << bits) - 1
    quantised = image.point(lambda v: round(v * levels / 255) * (255 // levels))
    source = quantised.convert("1") if bits == 1 else quantised.quantize(colors=levels + 1)
    data = encoded(source, bits=bits) if bits > 1 else encoded(source)
    assert Image.open(io.BytesIO(data)).tile[0].args in {"1", "P;2", "P;4"}
    decoded = decode_for_model(io.BytesIO(data), side=300)
    want = source.convert("RGB")
    assert decoded.size == want.size
    assert np.array_equal(np.asarray(decoded), np.asarray(want))


@pytest.mark.django_db
def test_an_image_with_detail_that_converts_to_one_flat_colour_fails_instead_of_being_ready(monkeypatch):
    detailed, flat = upright(), Image.new("RGB", (256, 256), (200, 30, 30))
    broken = lambda image: (lambda strip: Image.new("RGB", strip.size, "white"))  # noqa: E731 - a conversion bug
    monkeypatch.setattr(images, "_colour_converter", broken)
    with pytest.raises(InvalidImage, match="flat colour"):
        decode_for_model(io.BytesIO(encoded(detailed)), side=128)
    # A picture that is one flat colour is fine: there was no detail to lose.
    decode_for_model(io.BytesIO(encoded(flat)), side=128)

    asset = Asset.objects.create(image=SimpleUploadedFile("detail.png", encoded(detailed)))
    result = embed_assets([asset.pk])
    asset.refresh_from_db()
    assert result.failed and asset.embedding_status == EmbeddingStatus.FAILED
    assert "flat colour" in asset.embedding_error


def bomb_png(path: Path) -> Path:
    """The decompression bomb: a 1-bit PNG of 6300 x 6300 pixels in a few KB."""
    image = Image.new("1", (6300, 6300), 0)
    ImageDraw.Draw(image).rectangle((1000, 1000, 3000, 3000), fill=1)
    image.save(path, optimize=True)
    return path


MEASURE_SEARCH_IMAGE = """
import json, resource, sys
import django
django.setup()
from PIL import Image
from assetsearch.encoders import get_encoder
from assetsearch.search import decode_query_image

def peak_mb():
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024

encoder = get_encoder()
encoder.embed_images([Image.new("RGB", (512, 512), "white")])  # the model and its buffers, loaded once
data = open(sys.argv[1], "rb").read()
before = peak_mb()
image = decode_query_image(data)
encoder.embed_images([image])
print(json.dumps({"added_mb": peak_mb() - before, "size": image.size}))
"""


def search_image_peak_memory(path: Path) -> dict:
    """Peak memory a fresh web-like process adds to decode and embed one search image."""
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "project.settings", "PYTHONPATH": str(ROOT)}
    # The child only decodes and encodes: no database or broker behind these.
    env.update(DATABASE_URL="postgres://nobody@localhost:1/none", CELERY_BROKER_URL="redis://localhost:1/0")
    done = subprocess.run(
        [sys.executable, "-c", MEASURE_SEARCH_IMAGE, str(path)], env=env, cwd=ROOT, capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_a_decompression_bomb_search_image_stays_under_the_memory_bound(tmp_path):
    path = bomb_png(tmp_path / "bomb.png")
    assert path.stat().st_size < 16_000
    measured = search_image_peak_memory(path)
    print(f"bomb search image: {measured}")
    assert measured["added_mb"] < SEARCH_IMAGE_MEMORY_BOUND_MB, measured
    assert min(measured["size"]) == get_encoder().image_size


def test_a_24_megapixel_jpeg_search_image_stays_under_the_memory_bound(tmp_path):
    path = tmp_path / "big.jpg"
    rng = np.random.default_rng(0)
    Image.fromarray(rng.integers(0, 255, (4000, 6000, 3), dtype=np.uint8)).save(path, quality=80)
    measured = search_image_peak_memory(path)
    print(f"24 MP JPEG search image: {measured}")
    assert measured["added_mb"] < SEARCH_IMAGE_MEMORY_BOUND_MB, measured


# Formats Pillow decodes only in full, in the mode that costs the most memory for each.
FULL_DECODE_FORMATS = [("PNG", "RGBA"), ("WEBP", "RGB"), ("TIFF", "RGB"), ("GIF", "P")]


def detailed_image(mode: str, width: int, height: int) -> Image.Image:
    """A smooth gradient with shapes: real detail, yet quick to encode at millions of pixels."""
    x = np.linspace(0, 255, width, dtype=np.float32)[None, :]
    y = np.linspace(0, 255, height, dtype=np.float32)[:, None]
    rgb = np.stack([np.broadcast_to(x, (height, width)), np.broadcast_to(y, (height, width)), (x + y) / 2 * np.ones((height, 1))], axis=2)
    image = Image.fromarray(rgb.astype(np.uint8), "RGB")
    ImageDraw.Draw(image).ellipse((width // 4, height // 4, width // 2, height // 2), fill="red")
    return image.convert(mode) if mode != "P" else image.quantize(64)


@pytest.mark.parametrize("fmt, mode", FULL_DECODE_FORMATS, ids=[f for f, _ in FULL_DECODE_FORMATS])
def test_full_decode_search_images_up_to_the_pixel_limit_stay_under_the_memory_bound(tmp_path, fmt, mode):
    limit = images.app_settings.MAX_QUERY_IMAGE_PIXELS
    unit = int((limit / 12) ** 0.5)
    width, height = 4 * unit, 3 * unit  # 4:3, just under the limit
    path = tmp_path / f"big.{fmt.lower()}"
    detailed_image(mode, width, height).save(path, fmt)
    measured = search_image_peak_memory(path)
    print(f"{fmt} {mode} {width}x{height} search image: {measured}")
    assert measured["added_mb"] < SEARCH_IMAGE_MEMORY_BOUND_MB, measured
    assert min(measured["size"]) == get_encoder().image_size


@pytest.mark.parametrize("fmt, mode", FULL_DECODE_FORMATS, ids=[f for f, _ in FULL_DECODE_FORMATS])
def test_full_decode_search_images_over_the_pixel_limit_are_refused_before_decoding(fmt, mode):
    buffer = io.BytesIO()
    detailed_image(mode, 2000, 1000).save(buffer, fmt)
    with assetsearch_settings(MAX_QUERY_IMAGE_PIXELS=1_999_999):
        with pytest.raises(InvalidImage, match=f"2000x1000 = 2,000,000 pixels; a {fmt} search image is decoded in full, so the limit is 1,999,999"):
            images.decode_search_image(io.BytesIO(buffer.getvalue()), side=128)
        # Uploads (decoded by the worker) and JPEGs (decoded at reduced size) are not limited by it.
        assert min(decode_for_model(io.BytesIO(buffer.getvalue()), side=128).size) == 128
        jpeg = io.BytesIO()
        detailed_image("RGB", 2000, 1000).save(jpeg, "JPEG")
        assert min(images.decode_search_image(io.BytesIO(jpeg.getvalue()), side=128).size) == 128


def test_at_most_max_concurrent_decodes_run_at_once():
    data = encoded(upright())
    finished = threading.Event()

    def decode() -> None:
        decode_for_model(io.BytesIO(data), side=128)
        finished.set()

    with assetsearch_settings(MAX_CONCURRENT_DECODES=1):
        with decode_slot():  # the one slot is taken
            thread = threading.Thread(target=decode)
            thread.start()
            assert not finished.wait(0.5), "a second decode ran while the only slot was taken"
        assert finished.wait(10), "the decode did not run once the slot was free"
        thread.join()
