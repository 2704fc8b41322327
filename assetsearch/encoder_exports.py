"""Export an open_clip model's towers to ONNX once, for the torch-free encoders.

An export is a folder holding ``image.onnx`` and ``text.onnx`` (dynamic
batch, L2-normalised outputs) with their weights beside them in
``image.onnx.data`` and ``text.onnx.data`` (ONNX Runtime maps those files
instead of copying them: a ViT-B-32 web process holds only the token
embeddings its queries touch, and processes share the pages), ``manifest.json`` (what the runtime needs to
serve without open_clip: dimensions, context length, preprocess settings,
logit scale) and a *probe*: a few images and texts with the vectors torch
computed for them. Runtimes check themselves against the probe when they
load (:mod:`assetsearch.runtime_encoders`), so a web process compares with
torch without importing it.

Folders are keyed by model name, weights and exporter version::

    <ENCODER_EXPORT_DIR>/<model>-<weights>/onnx-torch<version>-opset<N>/

where ``<weights>`` is the checkpoint's SHA-256 prefix (the encoder key's),
the open_clip tag, or ``random`` (weights seeded, see
:meth:`assetsearch.encoders.OpenCLIPEncoder.create_model`). Runtimes add
their own converted files in a sub-folder named after the runtime version.
Exporting needs torch, open_clip, ``onnx`` and ``onnxscript`` (the ``onnx``
extra); ``manage.py assetsearch_export`` does it ahead of time.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import tempfile
from dataclasses import asdict, dataclass
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from .conf import app_settings

if TYPE_CHECKING:
    from .encoders import OpenCLIPEncoder

# Bump when the folder's contents change shape, so old exports are not read.
EXPORT_FORMAT = 2  # 2: weights in external data files
ONNX_OPSET = 18
PROBE_TEXTS = ("a red circle on a blue background", "Two STRIPED squares &amp; a triangle, café!", "")
# (width, height): not square, so the probe covers open_clip's resize and centre crop.
PROBE_IMAGE_SIZES = ((300, 200), (190, 260))


class ExportError(RuntimeError):
    """The model cannot be exported for the torch-free encoders."""


@dataclass(frozen=True)
class Manifest:
    """What an export folder says about its model (``manifest.json``)."""

    format: int
    model: str
    key: str
    dimensions: int
    context_length: int
    image_size: int
    preprocess: dict[str, Any]
    logit_scale: float
    torch: str
    open_clip: str
    opset: int

    @classmethod
    def read(cls, folder: Path) -> Manifest:
        return cls(**json.loads((folder / "manifest.json").read_text()))


@dataclass(frozen=True)
class Probe:
    """Inputs and the vectors torch made from them, stored with each export."""

    images: list[Any]  # PIL images
    texts: list[str]
    image_vectors: np.ndarray
    text_vectors: np.ndarray


def get_export_root() -> Path:
    """``ENCODER_EXPORT_DIR``, or ``$XDG_CACHE_HOME/assetsearch/encoders`` (``~/.cache``) when unset."""
    configured = app_settings.ENCODER_EXPORT_DIR
    if configured:
        return Path(configured)
    cache_home = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(cache_home) / "assetsearch" / "encoders"


def package_version(name: str) -> str:
    """An installed distribution's version, read without importing it (torch takes seconds)."""
    try:
        return version(name)
    except PackageNotFoundError:
        return "none"


def export_folder(model_name: str, key: str) -> Path:
    """The folder of the export of ``model_name`` with the weights that ``key`` names."""
    weights = key.split(":", 1)[-1]
    if not re.fullmatch(r"[\w.-]{1,64}", weights):
        weights = hashlib.sha256(weights.encode()).hexdigest()[:12]
    model = re.sub(r"[^\w.-]", "-", model_name)
    exporter = f"onnx-torch{package_version('torch')}-opset{ONNX_OPSET}-v{EXPORT_FORMAT}"
    return get_export_root() / f"{model}-{weights}" / exporter


def read_probe(folder: Path) -> Probe:
    from PIL import Image

    data = json.loads((folder / "probe.json").read_text())
    images = []
    for index in range(data["images"]):
        with Image.open(folder / f"probe-{index}.png") as image:
            images.append(image.convert("RGB"))
    vectors = np.load(folder / "probe.npz")
    return Probe(images, data["texts"], vectors["image_vectors"], vectors["text_vectors"])


def _probe_images() -> list[Any]:
    from .demo_model.synthetic import random_scene
    import random

    rng = random.Random(19)
    images = []
    for index, (width, height) in enumerate(PROBE_IMAGE_SIZES):
        image = random_scene(rng).render(index, size=max(width, height))
        images.append(image.convert("RGB").resize((width, height)))
    return images


def export_encoder(encoder: OpenCLIPEncoder, *, force: bool = False) -> Path:
    """Export ``encoder``'s model (loaded on CPU) unless already exported; returns the folder.

    Written into a temporary sibling folder and renamed into place, so
    processes exporting at the same time never see half an export.
    """
    folder = export_folder(encoder.model_name, encoder.weights_key)
    if (folder / "manifest.json").is_file() and not force:
        return folder
    folder.parent.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix=".export-", dir=folder.parent))
    try:
        _export_into(encoder, work)
        if force and folder.exists():
            shutil.rmtree(folder)
        try:
            work.rename(folder)
        except OSError:  # another process finished first: its export is as good
            if not (folder / "manifest.json").is_file():
                raise
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return folder


def _export_into(encoder: OpenCLIPEncoder, work: Path) -> None:
    import open_clip
    import torch

    from .clip_inputs import CLIPTokenizer, check_preprocess_config, preprocess_image

    if encoder.load()[3] != "cpu":
        raise ExportError("Export from an encoder on the CPU (DEVICE 'cpu').")
    model, preprocess, tokenizer, _ = encoder.load()
    preprocess_cfg = dict(model.visual.preprocess_cfg)
    try:
        check_preprocess_config(preprocess_cfg)
    except ValueError as exc:
        raise ExportError(f"{encoder.model_name}'s preprocess cannot run without torch: {exc}") from None
    probe_images, texts = _probe_images(), list(PROBE_TEXTS)
    # The torch-free inputs must be open_clip's exactly, or the export would
    # hide a difference the probe vectors could not explain.
    ours = CLIPTokenizer(encoder.context_length)
    if not isinstance(tokenizer, open_clip.tokenizer.SimpleTokenizer) or tokenizer.reduction_fn is not None:
        raise ExportError(f"{encoder.model_name} uses a tokenizer ({type(tokenizer).__name__}) the torch-free encoders do not reproduce.")
    if not np.array_equal(ours(texts), tokenizer(texts).numpy()):
        raise ExportError(f"The torch-free tokenizer does not reproduce {encoder.model_name}'s tokens.")
    pixels = np.stack([preprocess(image).numpy() for image in probe_images])
    if np.abs(np.stack([preprocess_image(image, preprocess_cfg) for image in probe_images]) - pixels).max() > 1e-5:
        raise ExportError(f"The torch-free preprocess does not reproduce {encoder.model_name}'s pixels.")

    class Tower(torch.nn.Module):
        """One tower of the model, L2-normalised: ``encode_image`` or ``encode_text``."""

        def __init__(self, method: str) -> None:
            super().__init__()
            self.model, self.method = model, method

        def forward(self, inputs: torch.Tensor) -> torch.Tensor:
            return getattr(self.model, self.method)(inputs, normalize=True)

    batch = torch.export.Dim("batch", min=1, max=4096)
    examples = {"image": torch.from_numpy(pixels).contiguous(), "text": tokenizer(texts)}
    for name, tower in (("image", Tower("encode_image")), ("text", Tower("encode_text"))):
        torch.onnx.export(
            tower.eval(),
            (examples[name],),
            str(work / f"{name}.onnx"),
            input_names=["input"],
            output_names=["vectors"],
            dynamic_shapes=({0: batch},),
            opset_version=ONNX_OPSET,
            dynamo=True,
            external_data=True,  # <name>.onnx.data, mapped by ONNX Runtime
            verbose=False,
        )

    for index, image in enumerate(probe_images):
        image.save(work / f"probe-{index}.png")
    (work / "probe.json").write_text(json.dumps({"images": len(probe_images), "texts": texts}))
    # The probe checks the model and its preprocess, not the encoder's FIT (the
    # same Pillow code in both paths): its vectors are of the unfitted images.
    with torch.inference_mode():
        image_vectors = model.encode_image(torch.from_numpy(pixels), normalize=True).float().numpy()
    np.savez(work / "probe.npz", image_vectors=image_vectors, text_vectors=encoder.embed_texts(texts))
    manifest = Manifest(
        format=EXPORT_FORMAT,
        model=encoder.model_name,
        key=encoder.weights_key,
        dimensions=encoder.dimensions,
        context_length=encoder.context_length,
        image_size=encoder.image_size,
        preprocess={key: list(value) if isinstance(value, tuple) else value for key, value in preprocess_cfg.items()},
        logit_scale=encoder.logit_scale,
        torch=package_version("torch"),
        open_clip=package_version("open_clip_torch"),
        opset=ONNX_OPSET,
    )
    # Written last: its presence marks a complete export.
    (work / "manifest.json").write_text(json.dumps(asdict(manifest), indent=2))
