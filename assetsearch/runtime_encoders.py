"""Encoders that run an exported open_clip model on ONNX Runtime or OpenVINO, without torch.

On a CPU these run the same model 1.5-2x faster than torch (their matmul
kernels reach about twice MKL's through torch), and a process that only
encodes texts never imports torch: the tokenizer and preprocess come from
:mod:`assetsearch.clip_inputs`, the model from the export folder
(:mod:`assetsearch.encoder_exports`). Configure an alias with::

    "BACKEND": "assetsearch.runtime_encoders.ONNXRuntimeEncoder",  # or OpenVINOEncoder
    "PRECISION": "fp32",  # "bf16": OpenVINO only, on CPUs with bf16 instructions
    "THREADS": None,      # None: the CPUs this process may use

The vectors carry the same key as :class:`~assetsearch.encoders.OpenCLIPEncoder`
with the same ``MODEL`` and ``PRETRAINED``: they are interchangeable, because
loading refuses to serve unless the probe's vectors match torch's
(:data:`MIN_PROBE_COSINE`). A missing export is made on first load, which
imports torch once; ``manage.py assetsearch_export`` makes it ahead of time.
"""

from __future__ import annotations

import importlib
import logging
import os
import threading
from collections.abc import Callable, Sequence
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from django.core.exceptions import ImproperlyConfigured

from .clip_inputs import CLIPTokenizer, fit_views, pool_views, preprocess_image
from .decoding import cpu_allowance
from .encoder_exports import Manifest, export_folder, package_version, read_probe
from .encoders import BaseEncoder, OpenCLIPEncoder

if TYPE_CHECKING:
    from PIL.Image import Image

logger = logging.getLogger(__name__)

# The least cosine between a runtime's probe vectors and torch's before it may serve.
MIN_PROBE_COSINE = {"fp32": 0.9999, "bf16": 0.999}

Tower = Callable[[np.ndarray], np.ndarray]


class ProbeMismatch(ImproperlyConfigured):
    """An exported model's vectors differ from torch's more than its precision allows."""


def require(module: str, extra: str) -> Any:
    """Import a runtime, or say which extra installs it."""
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        raise ImproperlyConfigured(f"{module} is not installed: pip install 'assetsearch[{extra}]' ({exc})") from exc


def normalise(vectors: np.ndarray) -> np.ndarray:
    vectors = np.asarray(vectors, dtype=np.float32)
    return vectors / np.maximum(np.linalg.norm(vectors, axis=1, keepdims=True), 1e-12)


class BaseExportedEncoder(BaseEncoder):
    """An open_clip model exported to ONNX, served by a runtime that subclasses implement.

    Subclasses set :attr:`runtime` and :attr:`precisions` and implement
    :meth:`open_tower`; everything else (export, probe check, tokenizer,
    preprocess, batching) is shared.
    """

    #: The runtime's distribution name, used in messages and cache folders.
    runtime = ""
    #: The ``PRECISION`` values the runtime supports.
    precisions: tuple[str, ...] = ("fp32",)

    def __init__(self, alias: str, options: dict[str, Any]) -> None:
        super().__init__(alias, options)
        self.precision: str = options.get("PRECISION") or "fp32"
        if self.precision not in self.precisions:
            raise ImproperlyConfigured(
                f"{type(self).__name__} (encoder {alias!r}) supports PRECISION {', '.join(map(repr, self.precisions))}, not {self.precision!r}."
            )
        self.threads = int(options.get("THREADS") or cpu_allowance())
        # The torch encoder of the same model: its key (torch-free) names the
        # weights; its model is loaded only to export.
        self.source = OpenCLIPEncoder(alias, {**options, "DEVICE": "cpu"})
        self.model_name = self.source.model_name
        self._lock = threading.Lock()
        self._manifest: Manifest | None = None
        self._towers: dict[str, Tower] = {}
        self._tokenizer: CLIPTokenizer | None = None

    @property
    def key(self) -> str:
        return self.source.key

    @cached_property
    def folder(self) -> Path:
        """The export folder of this model and weights."""
        return export_folder(self.model_name, self.source.weights_key)

    @property
    def manifest(self) -> Manifest:
        """The export's manifest; exports the model first if it was never exported."""
        if self._manifest is None:
            with self._lock:
                if self._manifest is None:
                    if not (self.folder / "manifest.json").is_file():
                        from .encoder_exports import export_encoder

                        logger.warning(
                            "No export of %s at %s: exporting now (imports torch; "
                            "run `manage.py assetsearch_export` ahead to avoid it).",
                            self.key,
                            self.folder,
                        )
                        export_encoder(self.source)
                    self._manifest = Manifest.read(self.folder)
        return self._manifest

    @property
    def dimensions(self) -> int:
        return self.manifest.dimensions

    @property
    def context_length(self) -> int:
        return self.manifest.context_length

    @property
    def image_size(self) -> int:
        return self.manifest.image_size

    @property
    def logit_scale(self) -> float:
        return self.manifest.logit_scale

    @property
    def tokenizer(self) -> CLIPTokenizer:
        if self._tokenizer is None:
            self._tokenizer = CLIPTokenizer(self.manifest.context_length)
        return self._tokenizer

    def open_tower(self, path: Path) -> Tower:
        """Load the ONNX tower at ``path``; return a function from an input batch to its output."""
        raise NotImplementedError

    def tower(self, kind: str) -> Tower:
        """The ``"image"`` or ``"text"`` tower, opened and checked against the probe once; thread-safe.

        Each tower loads on its first use, so a web process that only
        encodes queries never holds the image tower.
        """
        tower = self._towers.get(kind)
        if tower is None:
            manifest = self.manifest
            with self._lock:
                tower = self._towers.get(kind)
                if tower is None:
                    tower = self.open_tower(self.folder / f"{kind}.onnx")
                    self.check_probe(kind, tower, manifest)
                    self._towers[kind] = tower
        return tower

    def warm_up(self, *, images: bool = True, texts: bool = True) -> None:
        if images:
            self.tower("image")
        if texts:
            self.tower("text")

    def check_probe(self, kind: str, tower: Tower, manifest: Manifest) -> None:
        """Refuse to serve (:class:`ProbeMismatch`) unless ``tower`` reproduces torch's probe vectors."""
        probe = read_probe(self.folder)
        if kind == "image":
            ours = tower(np.stack([preprocess_image(image, manifest.preprocess) for image in probe.images]))
            reference = probe.image_vectors
        else:
            ours = tower(self.tokenizer(probe.texts))
            reference = probe.text_vectors
        minimum = MIN_PROBE_COSINE[self.precision]
        cosine = float((normalise(ours) * reference).sum(axis=1).min())
        if not cosine >= minimum:  # catches NaN too
            raise ProbeMismatch(
                f"{type(self).__name__} ({self.runtime} {package_version(self.runtime)}, {self.precision}) does not "
                f"reproduce torch's {kind} vectors for {self.key}: cosine {cosine:.6f} on the probe, "
                f"{minimum} needed. Refusing to serve encoder {self.alias!r}. Re-export with "
                f"`manage.py assetsearch_export --force`, or use PRECISION 'fp32' or OpenCLIPEncoder."
            )
        logger.info(
            "%s serves the %s tower of %s (%s, %d threads, probe cosine %.6f)",
            type(self).__name__, kind, self.key, self.precision, self.threads, cosine,
        )

    def count_tokens(self, text: str) -> int:
        return len(self.tokenizer.encode(text)) + 2

    def prepare_image(self, image: Image) -> np.ndarray:
        """One decoded image as the model's (views, 3, size, size) float32 input (one view, or
        its tiles under FIT "tiles"); safe to call from threads."""
        config = self.manifest.preprocess
        return np.stack([preprocess_image(view, config) for view in fit_views(image, self.fit, config)])

    def embed_prepared(self, pixels: Sequence[np.ndarray]) -> np.ndarray:
        """Vectors of already preprocessed images (:meth:`prepare_image`): their views in batches, then pooled."""
        if not pixels:
            return np.empty((0, self.dimensions), dtype=np.float32)
        tower = self.tower("image")
        views = np.concatenate(pixels)
        out = [normalise(tower(views[start : start + self.batch_size])) for start in range(0, len(views), self.batch_size)]
        return pool_views(np.concatenate(out), [len(image_views) for image_views in pixels])

    def embed_images(self, images: Sequence[Image]) -> np.ndarray:
        return self.embed_prepared([self.prepare_image(image) for image in images])

    def embed_texts(self, texts: Sequence[str]) -> np.ndarray:
        tower = self.tower("text")
        out = [
            normalise(tower(self.tokenizer(list(texts[start : start + self.batch_size]))))
            for start in range(0, len(texts), self.batch_size)
        ]
        return np.concatenate(out) if out else np.empty((0, self.dimensions), dtype=np.float32)


class ONNXRuntimeEncoder(BaseExportedEncoder):
    """The exported model on ONNX Runtime's CPU provider (MLAS kernels), fp32 only.

    Needs the ``onnx`` extra. Sessions are thread-safe; threads come from ``THREADS``.
    """

    runtime = "onnxruntime"

    def open_tower(self, path: Path) -> Tower:
        onnxruntime = require("onnxruntime", "onnx")

        options = onnxruntime.SessionOptions()
        options.intra_op_num_threads = self.threads
        options.inter_op_num_threads = 1
        options.graph_optimization_level = onnxruntime.GraphOptimizationLevel.ORT_ENABLE_ALL
        # Idle threads sleep instead of spinning: spinning threads steal the
        # cores from the decode pool and other processes (the bundled model at
        # batch 16 on 2 busy cores: 38 ms spinning, 16 ms not).
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        session = onnxruntime.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
        name = session.get_inputs()[0].name
        return lambda batch: session.run(None, {name: batch})[0]


class OpenVINOEncoder(BaseExportedEncoder):
    """The exported model on OpenVINO's CPU plugin; ``bf16`` where the CPU has bf16 instructions.

    Needs the ``openvino`` extra. The ONNX towers are converted to OpenVINO IR
    once, into ``openvino-<version>/`` beside them, with fp32 weights (the
    default of ``save_model`` would halve them to fp16 and lose exactness).
    """

    runtime = "openvino"
    precisions = ("fp32", "bf16")

    @cached_property
    def core(self) -> Any:
        return require("openvino", "openvino").Core()

    def _check_bf16(self) -> None:
        capabilities = self.core.get_property("CPU", "OPTIMIZATION_CAPABILITIES")
        if "BF16" not in capabilities:
            raise ImproperlyConfigured(
                f"PRECISION 'bf16' for encoder {self.alias!r} needs a CPU with bf16 instructions "
                f"(AVX512_BF16 or AMX); this CPU offers {', '.join(capabilities)}. Use PRECISION 'fp32'."
            )

    def open_tower(self, path: Path) -> Tower:
        openvino = require("openvino", "openvino")
        if self.precision == "bf16":
            self._check_bf16()
        ir = path.parent / f"openvino-{package_version('openvino')}" / path.with_suffix(".xml").name
        if not ir.is_file():
            ir.parent.mkdir(exist_ok=True)
            partial = ir.with_name(f".{os.getpid()}-{ir.name}")
            openvino.save_model(openvino.convert_model(str(path)), str(partial), compress_to_fp16=False)
            partial.with_suffix(".bin").replace(ir.with_suffix(".bin"))
            partial.replace(ir)  # the .xml last: it marks a complete conversion
        config = {
            "INFERENCE_PRECISION_HINT": {"fp32": "f32", "bf16": "bf16"}[self.precision],
            "PERFORMANCE_HINT": "LATENCY",
            "INFERENCE_NUM_THREADS": self.threads,
        }
        compiled = self.core.compile_model(str(ir), "CPU", config)
        lock = threading.Lock()
        request = compiled.create_infer_request()

        def run(batch: np.ndarray) -> np.ndarray:
            with lock:  # one infer request per tower; requests are not thread-safe
                return request.infer({0: batch})[0].copy()

        return run
