"""Encoders turn images and text into L2-normalised vectors.

The model is loaded once per process, lazily, on first use: never at import
time or in ``AppConfig.ready()`` (web processes, ``migrate`` and tests would
pay for it, and touching CUDA before Celery forks breaks the children).

Configure encoders in ``settings.ASSETSEARCH["ENCODERS"]`` (see
:mod:`assetsearch.conf`); get one with :func:`get_encoder`. Query texts are
embedded through :func:`embed_texts`, which caches their vectors.
"""

from __future__ import annotations

import hashlib
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from django.core.cache import caches
from django.utils.module_loading import import_string

from .conf import app_settings
from .constants import MAX_QUERY_CHARS
from .exceptions import EmptyQuery, SearchError

if TYPE_CHECKING:
    from PIL.Image import Image


class BaseEncoder:
    """Interface of an encoder backend.

    ``options`` are the alias's settings (``MODEL``, ``PRETRAINED``,
    ``DEVICE``, ``BATCH_SIZE``, plus any backend-specific keys).
    """

    def __init__(self, alias: str, options: dict[str, Any]) -> None:
        self.alias = alias
        self.options = options
        self.batch_size = int(options.get("BATCH_SIZE") or 32)

    @property
    def key(self) -> str:
        """A string naming the model and its weights, stored with each vector.

        A different key means vectors are not comparable: it is how a model
        change is detected. Must be computable without loading the model.
        """
        raise NotImplementedError

    @property
    def dimensions(self) -> int:
        """Length of the vectors this encoder returns."""
        raise NotImplementedError

    @property
    def context_length(self) -> int:
        """How many tokens of text the model reads; longer text is truncated."""
        raise NotImplementedError

    def count_tokens(self, text: str) -> int:
        """Tokens ``text`` needs, start/end markers included."""
        raise NotImplementedError

    @property
    def image_size(self) -> int:
        """Side in pixels of the model's input; images are decoded no larger than needed."""
        return 448

    @property
    def logit_scale(self) -> float:
        """The model's temperature for softmax over similarities (CLIP: 100)."""
        return 100.0

    def embed_images(self, images: Sequence[Image]) -> np.ndarray:
        """Return an (N, dimensions) float32 array of unit vectors, one per RGB image."""
        raise NotImplementedError

    def embed_texts(self, texts: Sequence[str]) -> np.ndarray:
        """Return an (N, dimensions) float32 array of unit vectors, one per text."""
        raise NotImplementedError


class OpenCLIPEncoder(BaseEncoder):
    """An open_clip model: the bundled demo model or any open_clip architecture.

    ``PRETRAINED`` is an open_clip tag (``"laion2b_s34b_b79k"``), a checkpoint
    path, ``"bundled"`` for the demo checkpoint, or None for random weights.
    ``MODEL_CONFIG`` (optional) is an open_clip model config file, or a folder
    of them, registered before ``MODEL`` is looked up: an architecture of
    one's own (a file ``my-model.json`` is ``MODEL`` ``"my-model"``).
    """

    def __init__(self, alias: str, options: dict[str, Any]) -> None:
        super().__init__(alias, options)
        self.model_name: str = options["MODEL"]
        self.pretrained: str | None = options.get("PRETRAINED")
        self._lock = threading.Lock()
        self._loaded: tuple[Any, Any, Any, str] | None = None

    @cached_property
    def checkpoint(self) -> str | None:
        """The pretrained argument open_clip receives."""
        if self.pretrained == "bundled":
            from .demo_model import CHECKPOINT_PATH, MODEL_NAME

            if self.model_name != MODEL_NAME:
                raise ValueError(f'PRETRAINED "bundled" only exists for MODEL "{MODEL_NAME}", not {self.model_name!r}')
            return str(CHECKPOINT_PATH)
        return self.pretrained

    @cached_property
    def key(self) -> str:
        checkpoint = self.checkpoint
        if checkpoint is None:
            return f"{self.model_name}:random"
        path = Path(checkpoint)
        if path.is_file():
            digest = hashlib.sha256(path.read_bytes()).hexdigest()[:12]
            return f"{self.model_name}:{digest}"
        return f"{self.model_name}:{checkpoint}"

    def _register_configs(self) -> None:
        from .demo_model import MODEL_NAME, register_model_config

        if self.model_name == MODEL_NAME:
            register_model_config()
        if self.options.get("MODEL_CONFIG"):
            import open_clip

            open_clip.add_model_config(self.options["MODEL_CONFIG"])

    @cached_property
    def model_config(self) -> dict[str, Any]:
        import open_clip

        self._register_configs()
        config = open_clip.get_model_config(self.model_name)
        if config is None:
            raise ValueError(f"open_clip knows no model {self.model_name!r}")
        return config

    @property
    def dimensions(self) -> int:
        return int(self.model_config["embed_dim"])

    @property
    def context_length(self) -> int:
        return int(self.model_config.get("text_cfg", {}).get("context_length", 77))

    @property
    def image_size(self) -> int:
        size = self.model_config.get("vision_cfg", {}).get("image_size", 224)
        return int(max(size) if isinstance(size, (list, tuple)) else size)

    def load(self) -> tuple[Any, Any, Any, str]:
        """Load (model, preprocess, tokenizer, device) once; thread-safe."""
        if self._loaded is None:
            with self._lock:
                if self._loaded is None:
                    self._loaded = self._load()
        return self._loaded

    def _load(self) -> tuple[Any, Any, Any, str]:
        import open_clip
        import torch

        threads = app_settings.TORCH_THREADS
        if threads:
            torch.set_num_threads(int(threads))
        device = self.options.get("DEVICE") or "auto"
        if device == "auto":
            device = "cuda" if torch.cuda.is_available() else "cpu"
        self._register_configs()
        model, _, preprocess = open_clip.create_model_and_transforms(
            self.model_name, pretrained=self.checkpoint, device=device
        )
        # Channels-last lets oneDNN run convolutions without reordering each
        # batch: 1.9x faster for the bundled ResNet tower on CPU, no change
        # for a ViT (one convolution) and the same outputs.
        model = model.to(memory_format=torch.channels_last).eval()
        tokenizer = open_clip.get_tokenizer(self.model_name)
        return model, preprocess, tokenizer, device

    @property
    def logit_scale(self) -> float:
        model = self.load()[0]
        return float(model.logit_scale.exp().item())

    def count_tokens(self, text: str) -> int:
        _, _, tokenizer, _ = self.load()
        return len(tokenizer.encode(text)) + 2

    def embed_images(self, images: Sequence[Image]) -> np.ndarray:
        import torch

        model, preprocess, _, device = self.load()
        out = []
        with torch.inference_mode():
            for start in range(0, len(images), self.batch_size):
                batch = torch.stack([preprocess(image) for image in images[start : start + self.batch_size]])
                out.append(model.encode_image(batch.to(device, memory_format=torch.channels_last), normalize=True).float().cpu().numpy())
        return np.concatenate(out) if out else np.empty((0, self.dimensions), dtype=np.float32)

    def embed_texts(self, texts: Sequence[str]) -> np.ndarray:
        import torch

        model, _, tokenizer, device = self.load()
        out = []
        with torch.inference_mode():
            for start in range(0, len(texts), self.batch_size):
                tokens = tokenizer(list(texts[start : start + self.batch_size]))
                out.append(model.encode_text(tokens.to(device), normalize=True).float().cpu().numpy())
        return np.concatenate(out) if out else np.empty((0, self.dimensions), dtype=np.float32)


_encoders: dict[tuple[str, str], BaseEncoder] = {}
_encoders_lock = threading.Lock()


def get_encoder(alias: str | None = None) -> BaseEncoder:
    """The process-wide encoder for ``alias`` (default: ``SEARCH_ENCODER``), created on first use, model loaded lazily.

    Encoders are cached by alias and options, so ``override_settings`` of
    unrelated keys keeps the loaded model.
    """
    alias = alias or app_settings.SEARCH_ENCODER
    options = app_settings.encoder_config(alias)
    cache_key = (alias, repr(sorted(options.items())))
    encoder = _encoders.get(cache_key)
    if encoder is None:
        with _encoders_lock:
            encoder = _encoders.get(cache_key)
            if encoder is None:
                backend = import_string(options["BACKEND"])
                encoder = _encoders[cache_key] = backend(alias, options)
    return encoder


# Query text ---------------------------------------------------------------


@dataclass
class TextVector:
    vector: np.ndarray
    truncated: bool  # the text is longer than the model's context


def embed_texts(texts: Sequence[str], encoder: BaseEncoder | None = None) -> list[TextVector]:
    """The query vectors of ``texts``: cached ones from the cache (``TEXT_CACHE_ALIAS``), the rest in one model call.

    Raises :class:`SearchError` for empty or over-long text; text longer than
    the model's context is truncated, and ``truncated`` says so.
    """
    encoder = encoder or get_encoder()
    cleaned = []
    for text in texts:
        if not isinstance(text, str):
            raise SearchError("Query text must be a string.")
        text = " ".join(text.split())
        if not text:
            raise EmptyQuery("The query text is empty.")
        if len(text) > MAX_QUERY_CHARS:
            raise SearchError(f"The query text is {len(text)} characters long; the limit is {MAX_QUERY_CHARS}.")
        cleaned.append(text)
    cache = caches[app_settings.TEXT_CACHE_ALIAS]
    keys = {text: "assetsearch:text:" + hashlib.sha256(f"{encoder.key}\0{text}".encode()).hexdigest() for text in cleaned}
    found = cache.get_many(list(keys.values()))
    missing = [text for text in dict.fromkeys(cleaned) if keys[text] not in found]
    if missing:
        vectors = encoder.embed_texts(missing)
        fresh = {
            keys[text]: (vector.astype(np.float32).tobytes(), encoder.count_tokens(text) > encoder.context_length)
            for text, vector in zip(missing, vectors)
        }
        cache.set_many(fresh, app_settings.TEXT_CACHE_TIMEOUT)
        found.update(fresh)
    return [TextVector(np.frombuffer(found[keys[t]][0], dtype=np.float32), found[keys[t]][1]) for t in cleaned]
