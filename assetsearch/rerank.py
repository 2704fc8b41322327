"""Retrieve-and-rerank: a stronger model reorders the index's top candidates.

Rerankers are configured like ``CACHES`` in ``ASSETSEARCH["RERANKERS"]``::

    "RERANKERS": {
        "clip": {"BACKEND": "assetsearch.rerank.ClipReranker", "ENCODER": "large"},
        "vlm": {"BACKEND": "assetsearch.rerank.OpenAIVisionReranker",
                "URL": "http://gpu-box:8000/v1/chat/completions", "MODEL": "microsoft/Phi-3-vision-128k-instruct",
                "API_KEY": "", "IMAGES": "separate", "TIMEOUT": 15},
    }

Guardrails (:func:`rerank`): whatever a reranker answers, the result is a
permutation of the candidates -- unknown ids are dropped, duplicates removed,
missing candidates appended in their original order -- and an exception, a
timeout or an invalid answer falls back to the vector order, saying why.
The total time is bounded by ``RERANK_TIMEOUT``. Endpoint, model and key
come from settings, never from the request.
"""

from __future__ import annotations

import base64
import hashlib
import io
import json
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from django.contrib.contenttypes.models import ContentType
from django.core.cache import caches
from django.db import connections
from django.db.models import Model
from django.utils.module_loading import import_string
from PIL import Image, ImageDraw

from .conf import app_settings
from .encoders import get_encoder
from .exceptions import RerankError, SearchError
from .images import decode_for_model
from .models import IndexEntry
from .registry import get_index

__all__ = [
    "BaseReranker", "Candidate", "ClipReranker", "OpenAIVisionReranker", "RerankAnswer", "RerankError",
    "RerankOutcome", "RerankQuery", "get_reranker", "rerank", "validate_order",
]


@dataclass
class RerankQuery:
    text: str = ""
    image: Image.Image | None = None


@dataclass
class Candidate:
    """One object to rerank: ``id`` names it to the backend (its pk unless the search mixed models)."""

    object: Model
    score: float
    id: int = 0
    key: tuple[int, int] | None = None  # (content type id, pk)

    def __post_init__(self) -> None:
        self.id = self.id or self.object.pk
        if self.key is None:
            content_type = ContentType.objects.get_for_model(type(self.object), for_concrete_model=False)
            self.key = (content_type.pk, self.object.pk)

    @property
    def asset(self) -> Model:
        """The candidate object (the name of earlier releases)."""
        return self.object

    def open_image(self) -> Any:
        return get_index(self.object).open_image(self.object)


@dataclass
class RerankAnswer:
    """What a backend proposes: an order of asset ids (may be invalid) and reasons."""

    order: list[Any]
    reasons: dict[int, str] = field(default_factory=dict)


@dataclass
class RerankOutcome:
    order: list[int]  # always a permutation of the candidates' ids
    reranker: str
    applied: bool  # False: fell back to the vector order
    fallback: str = ""  # why it fell back
    repaired: list[str] = field(default_factory=list)  # what the guardrails fixed
    reasons: dict[int, str] = field(default_factory=dict)
    took_ms: float = 0.0


class BaseReranker:
    """Interface of a reranking backend; ``options`` are its settings entry."""

    def __init__(self, alias: str, options: dict[str, Any]) -> None:
        self.alias = alias
        self.options = options

    def rerank(self, query: RerankQuery, candidates: Sequence[Candidate], *, deadline: float) -> RerankAnswer:
        """Propose an order of candidate asset ids, best first.

        ``deadline`` is a ``time.monotonic()`` value to finish by. Raise
        :class:`RerankError` (or anything) to fall back to the vector order;
        the answer is validated by :func:`rerank`, so it may be partial.
        """
        raise NotImplementedError


class ClipReranker(BaseReranker):
    """Rescore candidates with another encoder alias (e.g. a larger CLIP).

    Candidates' images are embedded on the fly unless the alias has stored
    vectors for them (``assetsearch_reembed --encoder ALIAS``).
    """

    def rerank(self, query: RerankQuery, candidates: Sequence[Candidate], *, deadline: float) -> RerankAnswer:
        encoder = get_encoder(self.options.get("ENCODER", "default"))
        parts = []
        if query.text:
            parts.append(encoder.embed_texts([query.text])[0])
        if query.image is not None:
            parts.append(encoder.embed_images([query.image])[0])
        if not parts:
            raise RerankError("nothing to rerank with")
        q = np.sum(parts, axis=0)
        q /= np.linalg.norm(q)
        ids = [c.id for c in candidates]
        vectors = IndexEntry.objects.for_encoder(encoder.alias).with_vector(encoder.key).vectors([c.key for c in candidates])
        stored = {c.id: vectors[c.key] for c in candidates if c.key in vectors}
        missing = [c for c in candidates if c.id not in stored]
        if missing:
            images = []
            for candidate in missing:
                with candidate.open_image() as handle:
                    images.append(decode_for_model(handle, encoder.image_size))
            stored.update(zip([c.id for c in missing], encoder.embed_images(images)))
        scores = {pk: float(stored[pk] @ q) for pk in ids}
        return RerankAnswer(order=sorted(ids, key=lambda pk: -scores[pk]), reasons={pk: f"score {scores[pk]:.3f}" for pk in ids})


RANKING_SCHEMA = {
    "type": "object",
    "properties": {
        "order": {"type": "array", "items": {"type": "integer"}, "description": "candidate ids, best match first"},
        "reason": {"type": "string", "description": "why the first candidate matches best"},
    },
    "required": ["order", "reason"],
}


class OpenAIVisionReranker(BaseReranker):
    """A vision-language model behind any OpenAI-compatible chat-completions endpoint.

    First asks for a one-sentence caption of the query image (cached per image
    hash), then sends the caption, the query text and the candidates'
    thumbnails (``IMAGES``: "separate" images, or one labelled "grid") and
    asks for JSON matching :data:`RANKING_SCHEMA`, using the endpoint's
    ``response_format`` JSON-schema mode.
    """

    def _post(self, messages: list[dict], deadline: float, *, schema: bool) -> str:
        body: dict[str, Any] = {"model": self.options["MODEL"], "messages": messages, "temperature": 0}
        if schema:
            body["response_format"] = {"type": "json_schema", "json_schema": {"name": "ranking", "schema": RANKING_SCHEMA, "strict": True}}
        request = urllib.request.Request(
            self.options["URL"], data=json.dumps(body).encode(), method="POST",
            headers={"Content-Type": "application/json", **({"Authorization": f"Bearer {self.options['API_KEY']}"} if self.options.get("API_KEY") else {})},
        )
        timeout = max(0.1, min(float(self.options.get("TIMEOUT", 15)), deadline - time.monotonic()))
        try:
            with urllib.request.urlopen(request, timeout=timeout) as response:
                payload = json.loads(response.read())
        except urllib.error.HTTPError as exc:
            raise RerankError(f"the endpoint answered HTTP {exc.code}") from exc
        except (urllib.error.URLError, TimeoutError, OSError) as exc:
            raise RerankError(f"the endpoint did not answer in time ({exc})") from exc
        except ValueError as exc:
            raise RerankError("the endpoint's reply is not JSON") from exc
        try:
            return payload["choices"][0]["message"]["content"]
        except (KeyError, IndexError, TypeError) as exc:
            raise RerankError("the endpoint's reply has no message content") from exc

    @staticmethod
    def _data_url(image: Image.Image, side: int = 256) -> str:
        image = image.convert("RGB")
        image.thumbnail((side, side))
        buffer = io.BytesIO()
        image.save(buffer, format="JPEG", quality=85)
        return "data:image/jpeg;base64," + base64.b64encode(buffer.getvalue()).decode()

    def caption(self, image: Image.Image, deadline: float) -> str:
        buffer = io.BytesIO()
        image.convert("RGB").save(buffer, format="PNG")
        key = "assetsearch:caption:" + hashlib.sha256(f"{self.options['MODEL']}\0".encode() + buffer.getvalue()).hexdigest()
        cache = caches[app_settings.TEXT_CACHE_ALIAS]
        cached = cache.get(key)
        if cached is None:
            content = [{"type": "text", "text": "Describe this image in one sentence."},
                       {"type": "image_url", "image_url": {"url": self._data_url(image)}}]
            cached = self._post([{"role": "user", "content": content}], deadline, schema=False).strip()
            cache.set(key, cached, app_settings.TEXT_CACHE_TIMEOUT)
        return cached

    def _thumbnails(self, candidates: Sequence[Candidate]) -> list[Image.Image]:
        images = []
        for c in candidates:
            with c.open_image() as handle:
                images.append(decode_for_model(handle, side=256))
        return images

    @staticmethod
    def _grid(images: Sequence[Image.Image], ids: Sequence[int], cell: int = 192) -> Image.Image:
        columns = min(4, len(images))
        rows = -(-len(images) // columns)
        grid = Image.new("RGB", (columns * cell, rows * cell), "white")
        draw = ImageDraw.Draw(grid)
        for n, (image, pk) in enumerate(zip(images, ids)):
            tile = image.copy()
            tile.thumbnail((cell - 8, cell - 24))
            x, y = (n % columns) * cell, (n // columns) * cell
            grid.paste(tile, (x + 4, y + 20))
            draw.text((x + 4, y + 4), f"id {pk}", fill="black")
        return grid

    def rerank(self, query: RerankQuery, candidates: Sequence[Candidate], *, deadline: float) -> RerankAnswer:
        ids = [c.id for c in candidates]
        caption = self.caption(query.image, deadline) if query.image is not None else ""
        intro = (
            "Rank the candidate images by how well they match the request.\n"
            + (f"The request image shows: {caption}\n" if caption else "")
            + (f"The request text says: {query.text}\n" if query.text else "")
            + f"Candidate ids: {', '.join(map(str, ids))}. Answer JSON: "
            '{"order": [every candidate id, best first], "reason": "why the first matches best"}.'
        )
        content: list[dict] = [{"type": "text", "text": intro}]
        thumbnails = self._thumbnails(candidates)
        if self.options.get("IMAGES", "separate") == "grid":
            content.append({"type": "image_url", "image_url": {"url": self._data_url(self._grid(thumbnails, ids), side=1024)}})
        else:
            for pk, image in zip(ids, thumbnails):
                content += [{"type": "text", "text": f"Candidate id {pk}:"}, {"type": "image_url", "image_url": {"url": self._data_url(image)}}]
        answer = self._post([{"role": "user", "content": content}], deadline, schema=True)
        try:
            data = json.loads(answer)
            order = data["order"]
        except (ValueError, KeyError, TypeError) as exc:
            raise RerankError("the model's answer is not the JSON asked for") from exc
        if not isinstance(order, list):
            raise RerankError("the model's answer has no list of ids")
        reasons = {}
        if order and isinstance(data.get("reason"), str) and isinstance(order[0], int):
            reasons[order[0]] = data["reason"]
        return RerankAnswer(order=order, reasons=reasons)


def get_reranker(alias: str) -> BaseReranker:
    try:
        options = app_settings.RERANKERS[alias]
    except KeyError:
        raise SearchError(f"Unknown reranker {alias!r}; configured: {', '.join(app_settings.RERANKERS) or 'none'}.") from None
    return import_string(options["BACKEND"])(alias, options)


def validate_order(proposed: Sequence[Any], ids: Sequence[int]) -> tuple[list[int], list[str]]:
    """Make ``proposed`` a permutation of ``ids``; say what had to be fixed."""
    known, seen, order, repaired = set(ids), set(), [], []
    unknown = duplicates = 0
    for x in proposed:
        if isinstance(x, bool) or not isinstance(x, int) or x not in known:
            unknown += 1  # (bool is an int in Python: True would pass for id 1)
        elif x in seen:
            duplicates += 1
        else:
            seen.add(x)
            order.append(x)
    if unknown:
        repaired.append(f"dropped {unknown} unknown id(s)")
    if duplicates:
        repaired.append(f"removed {duplicates} duplicate(s)")
    missing = [pk for pk in ids if pk not in seen]
    if missing:
        repaired.append(f"appended {len(missing)} missing candidate(s) in vector order")
    return order + missing, repaired


def rerank(alias: str, query: RerankQuery, candidates: Sequence[Candidate]) -> RerankOutcome:
    """Rerank with guardrails: always a permutation, bounded in time, falls back on failure."""
    started = time.monotonic()
    ids = [c.id for c in candidates]
    reranker = get_reranker(alias)
    budget = float(app_settings.RERANK_TIMEOUT)
    deadline = started + budget
    box: dict[str, Any] = {}

    def work() -> None:
        try:
            box["answer"] = reranker.rerank(query, candidates, deadline=deadline)
        except Exception as exc:  # noqa: BLE001 - any failure means "keep the vector order"
            box["error"] = exc
        finally:
            # Connections are per thread: a backend that queried (stored
            # vectors) opened one for this thread, which nothing else closes.
            connections.close_all()

    thread = threading.Thread(target=work, daemon=True)
    thread.start()
    thread.join(budget)
    took = (time.monotonic() - started) * 1000
    if thread.is_alive():
        return RerankOutcome(ids, alias, False, f"timed out after {budget:g} s; kept the vector order", took_ms=took)
    if "error" in box:
        return RerankOutcome(ids, alias, False, f"{box['error']}; kept the vector order", took_ms=took)
    answer: RerankAnswer = box["answer"]
    order, repaired = validate_order(answer.order, ids)
    reasons = {pk: r for pk, r in answer.reasons.items() if pk in set(ids)}
    return RerankOutcome(order, alias, True, "", repaired, reasons, took)
