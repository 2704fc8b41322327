"""ONNX Runtime and OpenVINO encoders: same vectors as torch, torch-free inputs, refusals, torch-free web.

Exports are cached in ``ENCODER_EXPORT_DIR`` (the var folder), keyed by
model, weights and versions, so a session exports each model once.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.core.management import call_command
from django.db import connection
from PIL import Image

from assetsearch.clip_inputs import CLIPTokenizer, preprocess_image
from assetsearch.encoders import OpenCLIPEncoder, get_encoder
from assetsearch.runtime_encoders import MIN_PROBE_COSINE, ONNXRuntimeEncoder, OpenVINOEncoder, ProbeMismatch
from assetsearch.demo_model.synthetic import random_scene

from .api_helpers import assetsearch_settings
from .utils import scene

ROOT = Path(__file__).resolve().parent.parent
CLASSES = {"onnxruntime": ONNXRuntimeEncoder, "openvino": OpenVINOEncoder}
BACKENDS = {name: f"{cls.__module__}.{cls.__qualname__}" for name, cls in CLASSES.items()}
MODELS = {"bundled": ("assetsearch-demo", "bundled"), "vit-b-32-random": ("ViT-B-32", None)}
TEXTS = [
    "a red circle",
    "three small blue stars in the top left corner on a striped grey background",
    "Ünïcödé, emoji 🙂 and &lt;html&gt; entities",
    "word " * 100,  # longer than the context: truncated, ending with end-of-text
    "",
]


def backend_settings(backend: str, *, batch_size: int | None = None, **changes):
    """The project's ASSETSEARCH with the default encoder on ``backend`` (and a batch size: a fresh encoder)."""
    default = {**settings.ASSETSEARCH["ENCODERS"]["default"], "BACKEND": backend}
    if batch_size is not None:
        default["BATCH_SIZE"] = batch_size
    return assetsearch_settings(ENCODERS={**settings.ASSETSEARCH["ENCODERS"], "default": default}, **changes)



def photos(count: int, seed: int = 0) -> list[Image.Image]:
    """Generated scenes of assorted sizes and aspect ratios, as decoded images."""
    import random

    rng = random.Random(seed)
    sizes = [(640, 480), (300, 500), (128, 128), (96, 200), (1024, 768)]
    return [random_scene(rng).render(i, size=max(sizes[i % 5])).resize(sizes[i % 5]).convert("RGB") for i in range(count)]


def torch_and_runtime(backend: str, model: str, precision: str = "fp32"):
    name, pretrained = MODELS[model]
    options = {"MODEL": name, "PRETRAINED": pretrained, "DEVICE": "cpu", "BATCH_SIZE": 8}
    return OpenCLIPEncoder("torch", options), CLASSES[backend]("runtime", {**options, "PRECISION": precision})


@pytest.mark.parametrize("context_length", [32, 77])
def test_tokenizer_gives_open_clip_s_ids_without_torch(context_length):
    import open_clip

    theirs = open_clip.tokenizer.SimpleTokenizer(context_length=context_length)
    texts = TEXTS + ["It's a dog's LIFE... isn't it?", "naïve café façade", "12 345 6.78", "\tspaces\n  and\ttabs "]
    np.testing.assert_array_equal(CLIPTokenizer(context_length)(texts), theirs(texts).numpy())


@pytest.mark.parametrize("mode", ["RGB", "L", "RGBA", "P"])
def test_preprocess_gives_open_clip_s_pixels_without_torch(mode):
    reference = OpenCLIPEncoder("torch", {"MODEL": "assetsearch-demo", "PRETRAINED": "bundled", "DEVICE": "cpu"})
    model, preprocess, _, _ = reference.load()
    for image in photos(5):
        image = image.convert(mode)
        theirs = preprocess(image).numpy()
        ours = preprocess_image(image, dict(model.visual.preprocess_cfg))
        assert ours.shape == theirs.shape == (3, 128, 128)
        assert np.abs(ours - theirs).max() < 1e-6


@pytest.mark.parametrize("model", list(MODELS))
@pytest.mark.parametrize("backend", list(BACKENDS))
def test_runtime_vectors_match_torch(backend, model):
    torch_encoder, runtime = torch_and_runtime(backend, model)
    assert runtime.key == torch_encoder.key  # interchangeable: no re-embedding on a switch
    assert (runtime.dimensions, runtime.context_length, runtime.image_size) == (
        torch_encoder.dimensions,
        torch_encoder.context_length,
        torch_encoder.image_size,
    )
    assert runtime.logit_scale == pytest.approx(torch_encoder.logit_scale)
    images = photos(10, seed=3)  # more than a batch: the dynamic batch and the batching are covered
    image_cosines = (runtime.embed_images(images) * torch_encoder.embed_images(images)).sum(axis=1)
    text_cosines = (runtime.embed_texts(TEXTS) * torch_encoder.embed_texts(TEXTS)).sum(axis=1)
    assert image_cosines.min() >= MIN_PROBE_COSINE["fp32"], image_cosines
    assert text_cosines.min() >= MIN_PROBE_COSINE["fp32"], text_cosines
    assert [runtime.count_tokens(text) for text in TEXTS] == [torch_encoder.count_tokens(text) for text in TEXTS]


def test_runtime_refuses_to_serve_an_export_that_does_not_match_torch(tmp_path):
    _, runtime = torch_and_runtime("onnxruntime", "bundled")
    runtime.warm_up(images=False)  # exported
    # A copy of the export whose torch vectors are a different image's.
    copied = tmp_path / "exports"
    shutil.copytree(runtime.folder.parent.parent, copied)
    with assetsearch_settings(ENCODER_EXPORT_DIR=str(copied)):
        _, broken = torch_and_runtime("onnxruntime", "bundled")
        probe = dict(np.load(broken.folder / "probe.npz"))
        probe["image_vectors"] = probe["image_vectors"][::-1].copy()
        np.savez(broken.folder / "probe.npz", **probe)
        with pytest.raises(ProbeMismatch, match=r"does not reproduce torch's image vectors .* cosine .* 0\.9999 needed\. Refusing to serve"):
            broken.embed_images(photos(1))
        assert broken.embed_texts(["a red circle"]).shape == (1, 512)  # the text tower's probe still holds


def test_precision_must_be_one_the_runtime_and_cpu_support():
    with pytest.raises(ImproperlyConfigured, match=r"ONNXRuntimeEncoder .* supports PRECISION 'fp32', not 'bf16'"):
        torch_and_runtime("onnxruntime", "bundled", precision="bf16")
    with pytest.raises(ImproperlyConfigured, match=r"supports PRECISION 'fp32', 'bf16', not 'fp16'"):
        torch_and_runtime("openvino", "bundled", precision="fp16")
    torch_encoder, bf16 = torch_and_runtime("openvino", "bundled", precision="bf16")
    if "BF16" in bf16.core.get_property("CPU", "OPTIMIZATION_CAPABILITIES"):
        images = photos(4)
        assert (bf16.embed_images(images) * torch_encoder.embed_images(images)).sum(axis=1).min() >= MIN_PROBE_COSINE["bf16"]
    else:
        with pytest.raises(ImproperlyConfigured, match=r"PRECISION 'bf16' .* needs a CPU with bf16 instructions .* Use PRECISION 'fp32'"):
            bf16.embed_texts(["a red circle"])


@pytest.mark.django_db
def test_export_command_exports_and_checks_the_configured_runtime_encoders(capsys):
    backend = {"BACKEND": BACKENDS["openvino"]}
    with assetsearch_settings(ENCODERS={"fast": backend}):
        call_command("assetsearch_export")
        out = capsys.readouterr().out
        folder = get_encoder("fast").folder
    assert f"fast: {get_encoder().key} for openvino (fp32) in {folder}" in out
    assert {"image.onnx", "text.onnx", "manifest.json", "probe.npz"} <= {path.name for path in folder.iterdir()}
    assert list(folder.glob("openvino-*/image.xml")) and list(folder.glob("openvino-*/text.bin"))
    manifest = json.loads((folder / "manifest.json").read_text())
    # An export is of the weights, whatever the fit (the default's key adds ";fit=tiles+1;pool=20x0.5"): one serves every fit.
    assert manifest["key"] == get_encoder().weights_key != get_encoder().key and manifest["dimensions"] == 512


def _database_url() -> str:
    """The test database as a URL, for a subprocess (connection options such as a socket folder kept)."""
    from urllib.parse import quote, urlencode

    db = connection.settings_dict
    netloc = f"{quote(db['USER'] or '')}:{quote(db['PASSWORD'] or '')}@{db['HOST'] or ''}" + (f":{db['PORT']}" if db["PORT"] else "")
    return f"postgres://{netloc}/{db['NAME']}?{urlencode(db['OPTIONS'])}"


WEB_PROCESS = """
import json, sys
import django
django.setup()
from django.conf import settings
from django.test import Client, override_settings
from django.urls import resolve
resolve("/api/search/")  # the whole URLconf: views, serializers, admin
with override_settings(ASSETSEARCH={**settings.ASSETSEARCH, "API_ANONYMOUS_SEARCH": True}):
    client = Client()
    responses = [client.get("/api/search/", {"q": query, "limit": 3}) for query in sys.argv[1:]]
print(json.dumps({
    "status": [r.status_code for r in responses],
    "first": [r.json()["results"][0]["asset"]["id"] for r in responses],
    "loaded": sorted(name for name in ("torch", "open_clip", "torchvision") if name in sys.modules),
}))
"""


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("backend", list(BACKENDS))
def test_web_process_serves_text_search_without_importing_torch(backend):
    from assetsearch.models import Asset
    from assetsearch.pipeline import embed_assets

    from .utils import image_file

    with backend_settings(BACKENDS[backend], AUTO_EMBED=False):
        assets = {
            (colour, shape): Asset.objects.create(title=f"{colour} {shape}", image=image_file(scene(colour=colour, shape=shape)))
            for colour, shape in [("red", "circle"), ("blue", "star"), ("green", "triangle")]
        }
        assert sorted(embed_assets([asset.pk for asset in assets.values()]).embedded) == sorted(a.pk for a in assets.values())
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "project.settings",
        "DATABASE_URL": _database_url(),
        "ASSETSEARCH_ENCODER_BACKEND": BACKENDS[backend],
        "DJANGO_MEDIA_ROOT": settings.MEDIA_ROOT,
    }
    queries = ["a red circle", "a blue star", "a green triangle"]
    run = subprocess.run([sys.executable, "-c", WEB_PROCESS, *queries], cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr
    result = json.loads(run.stdout.strip().splitlines()[-1])
    assert result["status"] == [200, 200, 200]
    assert result["first"] == [assets["red", "circle"].pk, assets["blue", "star"].pk, assets["green", "triangle"].pk]
    assert result["loaded"] == [], f"the web process imported {result['loaded']}"


def test_worker_processes_load_the_default_encoder_when_they_start():
    from celery.signals import worker_process_init

    with backend_settings(BACKENDS["onnxruntime"], batch_size=7):  # a fresh encoder
        encoder = get_encoder()
        assert encoder._towers == {}
        worker_process_init.send(sender=None)
        assert set(encoder._towers) == {"image", "text"}


def test_web_warm_up_loads_only_the_text_tower():
    from assetsearch.encoders import warm_up

    with backend_settings(BACKENDS["openvino"], batch_size=7):  # a fresh encoder
        warm_up(images=False)
        assert set(get_encoder()._towers) == {"text"}


def test_decode_pool_keeps_order_and_errors_and_follows_decode_threads():
    import threading

    from assetsearch.decoding import get_decode_pool, map_in_order

    def work(item: int) -> tuple[int, str]:
        if item == 3:
            raise ValueError("bad file 3")
        return item * 10, threading.current_thread().name

    futures = list(map_in_order(work, list(range(8))))
    assert [future.result()[0] for index, future in enumerate(futures) if index != 3] == [0, 10, 20, 40, 50, 60, 70]
    with pytest.raises(ValueError, match="bad file 3"):
        futures[3].result()
    assert all(future.result()[1].startswith("assetsearch-decode") for index, future in enumerate(futures) if index != 3)
    with assetsearch_settings(DECODE_THREADS=3):
        assert get_decode_pool()._max_workers == 3
