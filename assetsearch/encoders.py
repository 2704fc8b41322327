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
import os
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from django.core.cache import caches
from django.core.exceptions import ImproperlyConfigured
from django.utils.module_loading import import_string

from . import demo_model
from .clip_inputs import AUTO_FIT, FIT_MODES, PREPROCESS_FIT, fit_all, fit_key, pool_views
from .conf import app_settings
from .constants import MAX_QUERY_CHARS
from .exceptions import EmptyQuery, ModelUnavailable, SearchError

if TYPE_CHECKING:
    from PIL.Image import Image


AUTO_LABELS = "auto"  # LABELS: the model's declared labels (MODEL_LABELS)

# The fit a model reads best where it is not open_clip's centre crop: FIT "auto".
MODEL_FITS = {demo_model.MODEL_NAME: demo_model.FIT}


def model_fit(model_name: str | None) -> str:
    """The fit ``"auto"`` means for the model ``model_name``."""
    return MODEL_FITS.get(model_name or "", PREPROCESS_FIT)


# The phrases a model declares it tells apart: LABELS "auto" (none for other models).
MODEL_LABELS = {demo_model.MODEL_NAME: demo_model.labels}


def model_labels(model_name: str | None) -> list[str]:
    """The labels ``"auto"`` means for the model ``model_name``."""
    declared = MODEL_LABELS.get(model_name or "")
    return declared() if declared else []


class BaseEncoder:
    """Interface of an encoder backend.

    ``options`` are the alias's settings (``MODEL``, ``PRETRAINED``,
    ``DEVICE``, ``BATCH_SIZE``, ``FIT``, ``LABELS``, plus any backend-specific keys).
    ``FIT`` says how a non-square image is fitted to the model's square
    input (:data:`assetsearch.clip_inputs.FIT_MODES`); a backend applies it
    with :func:`assetsearch.clip_inputs.fit_views` before its preprocess and
    :func:`~assetsearch.clip_inputs.pool_views` after the model. ``LABELS``
    are phrases the model tells apart (:attr:`labels`).
    """

    def __init__(self, alias: str, options: dict[str, Any]) -> None:
        self.alias = alias
        self.options = options
        self.batch_size = int(options.get("BATCH_SIZE") or 32)
        fit = options.get("FIT") or AUTO_FIT
        if fit not in (AUTO_FIT, *FIT_MODES):
            raise ImproperlyConfigured(
                f"FIT {fit!r} of encoder {alias!r} is not one of {', '.join(map(repr, (AUTO_FIT, *FIT_MODES)))}."
            )
        self.fit: str = model_fit(options.get("MODEL")) if fit == AUTO_FIT else fit
        labels = options.get("LABELS", AUTO_LABELS)
        if labels == AUTO_LABELS:
            labels = model_labels(options.get("MODEL"))
        elif labels is None:
            labels = []
        elif isinstance(labels, str) or not all(
            isinstance(label, str) and label.strip() and len(label) <= MAX_QUERY_CHARS for label in labels
        ):
            raise ImproperlyConfigured(
                f'LABELS of encoder {alias!r} must be "auto", None or a list of phrases of 1 to {MAX_QUERY_CHARS} characters.'
            )
        # The phrases the model tells apart; a moderation concept without
        # counter-prompts is weighed against those nearest its prompts
        # (assetsearch.lookalikes).
        self.labels: list[str] = list(labels)

    @property
    def key(self) -> str:
        """A string naming the model, its weights and how images are fitted, stored with each vector.

        A different key means vectors are not comparable: it is how a model
        change is detected. Must be computable without loading the model.
        Backends build it with :meth:`vector_key`.
        """
        raise NotImplementedError

    def vector_key(self, weights_key: str) -> str:
        """``weights_key`` (model and weights) plus this encoder's fit when it is not open_clip's centre crop.

        Another fit gives other image vectors from the same weights, so a
        ``FIT`` change marks stored vectors stale like a model change does,
        and so does a change of the fit ``"auto"`` means for a model (the
        bundled model's, centre-crop -> tiles) or of how tiles are pooled
        (:func:`~assetsearch.clip_inputs.fit_key`). open_clip's own preprocess adds
        nothing, so keys of vectors stored before ``FIT`` existed stay current.
        """
        return weights_key if self.fit == PREPROCESS_FIT else f"{weights_key};fit={fit_key(self.fit)}"

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

    def prepare_image(self, image: Image) -> Any:
        """Per-image work that may run in the worker's decode threads; its results go to :meth:`embed_prepared`.

        The default keeps the decoded image as it is.
        """
        return image

    def embed_prepared(self, prepared: Sequence[Any]) -> np.ndarray:
        """:meth:`embed_images` on :meth:`prepare_image`'s results."""
        return self.embed_images(prepared)

    def warm_up(self, *, images: bool = True, texts: bool = True) -> None:
        """Load what embedding images and/or texts needs now, so the first task or request does not wait.

        Raises :class:`~assetsearch.exceptions.ModelUnavailable` when the
        model cannot be loaded. Default: nothing.
        """

    @property
    def label(self) -> str:
        """The model as a person names it in a message (``ViT-B-32/laion2b_s34b_b79k``)."""
        return self.key

    def missing_weights(self) -> str | None:
        """Why the weights cannot be read on this machine without a download, or None if they can.

        Must not load the model or touch the network (system check
        ``assetsearch.W011``). Default: None.
        """
        return None


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
        self._failure: tuple[float, ModelUnavailable] | None = None  # (monotonic time, error) of the last failed load
        self._called: set[str] = set()  # towers warm_up has made their first call on

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
        return self.vector_key(self.weights_key)

    @cached_property
    def weights_key(self) -> str:
        """The model and its weights (``ViT-B-32:laion2b_s34b_b79k``, ``assetsearch-demo:<sha256 prefix>``): what an export is of."""
        checkpoint = self.checkpoint
        if checkpoint is None:
            return f"{self.model_name}:random"
        path = Path(checkpoint)
        if path.is_file():
            digest = hashlib.sha256(path.read_bytes()).hexdigest()[:12]
            return f"{self.model_name}:{digest}"
        return f"{self.model_name}:{checkpoint}"

    @property
    def label(self) -> str:
        return f"{self.model_name}/{self.pretrained}"

    def missing_weights(self) -> str | None:
        checkpoint = self.checkpoint
        if checkpoint is None or Path(checkpoint).is_file():
            return None
        if Path(checkpoint).suffix or "/" in checkpoint:  # a path, not an open_clip tag
            return f"the checkpoint {checkpoint} does not exist"
        from open_clip.pretrained import get_pretrained_cfg

        if not get_pretrained_cfg(self.model_name, checkpoint):
            return f"PRETRAINED {checkpoint!r} is neither a file nor an open_clip weights tag of {self.model_name}"
        if find_cached_weights(self.model_name, checkpoint) is None:
            return "weights not found in the Hugging Face or open_clip cache"
        return None

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
        """Load (model, preprocess, tokenizer, device) once; thread-safe.

        Raises :class:`ModelUnavailable` when it cannot; the failure is
        remembered for ``MODEL_RETRY_SECONDS``, so requests and tasks fail at
        once meanwhile instead of each trying again.
        """
        if self._loaded is None:
            with self._lock:
                if self._loaded is None:
                    if self._failure and time.monotonic() - self._failure[0] < app_settings.MODEL_RETRY_SECONDS:
                        raise self._failure[1]
                    try:
                        self._loaded = self._load()
                    except Exception as exc:
                        failure = exc if isinstance(exc, ModelUnavailable) else ModelUnavailable(self.label, f"{type(exc).__name__}: {exc}")
                        self._failure = (time.monotonic(), failure)
                        raise failure from exc
                    self._failure = None
        return self._loaded

    def _load(self) -> tuple[Any, Any, Any, str]:
        if not app_settings.ALLOW_MODEL_DOWNLOAD and (missing := self.missing_weights()):
            raise ModelUnavailable(self.label, f"{missing} and no network (ASSETSEARCH['ALLOW_MODEL_DOWNLOAD'] is off)")
        import open_clip
        import torch

        threads = app_settings.TORCH_THREADS
        if threads:
            torch.set_num_threads(int(threads))
        device = self.options.get("DEVICE") or "auto"
        if device == "auto":
            device = "cuda" if torch.cuda.is_available() else "cpu"
        self._register_configs()
        # Random weights are seeded so that every process (and an export) gets the same model.
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(0)
            model, _, preprocess = open_clip.create_model_and_transforms(
                self.model_name, pretrained=self.checkpoint, device=device
            )
        # Channels-last lets oneDNN run convolutions without reordering each
        # batch: 1.9x faster for the bundled ResNet tower on CPU, no change
        # for a ViT (one convolution) and the same outputs.
        model = model.to(memory_format=torch.channels_last).eval()
        tokenizer = open_clip.get_tokenizer(self.model_name)
        return model, preprocess, tokenizer, device

    def warm_up(self, *, images: bool = True, texts: bool = True) -> None:
        self.load()
        self.key  # hashes the checkpoint file (seconds for a real CLIP's) here, not in the first task or search
        # A model's first call sets up its kernels and thread pools: made here
        # (the exported encoders make it checking their probe), the first task
        # or request after start-up costs what any other does. Once per tower:
        # every embedding task calls warm_up, and a second blank image would
        # cost each task a model call.
        if images and "image" not in self._called:
            from PIL import Image

            self.embed_images([Image.new("RGB", (self.image_size, self.image_size))])
            self._called.add("image")
        if texts and "text" not in self._called:
            self.embed_texts([""])
            self._called.add("text")

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
        config = model.visual.preprocess_cfg
        pictures, counts = fit_all(images, self.fit, config)
        out = []
        with torch.inference_mode():
            for start in range(0, len(pictures), self.batch_size):
                batch = torch.stack([preprocess(picture) for picture in pictures[start : start + self.batch_size]])
                out.append(model.encode_image(batch.to(device, memory_format=torch.channels_last), normalize=True).float().cpu().numpy())
        if not out:
            return np.empty((0, self.dimensions), dtype=np.float32)
        return pool_views(np.concatenate(out), counts)

    def embed_texts(self, texts: Sequence[str]) -> np.ndarray:
        import torch

        model, _, tokenizer, device = self.load()
        out = []
        with torch.inference_mode():
            for start in range(0, len(texts), self.batch_size):
                tokens = tokenizer(list(texts[start : start + self.batch_size]))
                out.append(model.encode_text(tokens.to(device), normalize=True).float().cpu().numpy())
        return np.concatenate(out) if out else np.empty((0, self.dimensions), dtype=np.float32)


def find_cached_weights(model_name: str, tag: str) -> str | None:
    """The local file of open_clip's weights ``tag`` for ``model_name`` if a download left it in the cache, else None.

    Looks where open_clip's default download goes (the Hugging Face cache,
    with the safetensors twin it prefers, else ``~/.cache/clip`` for URL
    weights) without touching the network.
    """
    from open_clip.constants import HF_SAFE_WEIGHTS_NAME, HF_WEIGHTS_NAME
    from open_clip.pretrained import get_pretrained_cfg

    config = get_pretrained_cfg(model_name, tag)
    if config.get("file"):
        return config["file"] if Path(config["file"]).is_file() else None
    if config.get("hf_hub"):
        from huggingface_hub import try_to_load_from_cache

        repo_id, filename = os.path.split(config["hf_hub"])
        filename = filename or HF_WEIGHTS_NAME
        safe = HF_SAFE_WEIGHTS_NAME if filename == HF_WEIGHTS_NAME else str(Path(filename).with_suffix(".safetensors"))
        for name in (safe, filename):
            found = try_to_load_from_cache(repo_id, name)
            if isinstance(found, str):
                return found
        return None
    if config.get("url"):
        path = Path("~/.cache/clip").expanduser() / os.path.basename(config["url"])
        return str(path) if path.is_file() else None
    return None


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


def warm_up(aliases: Sequence[str] = ("default",), *, images: bool = True, texts: bool = True) -> None:
    """Load the encoders of ``aliases`` now, in this process.

    Workers call it when each worker process starts (``worker_process_init``);
    a production web server calls ``warm_up(images=False)`` in each web
    process after it forks (gunicorn's ``post_worker_init`` hook), never in a
    parent that forks afterwards: runtime thread pools and CUDA do not
    survive a fork.
    """
    for alias in aliases:
        get_encoder(alias).warm_up(images=images, texts=texts)
