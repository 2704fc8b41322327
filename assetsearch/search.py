"""The one query API: text, image, asset, weights, negatives, filters, hybrid.

Everything that searches (the API, the admin, moderation, benchmarks) builds
a :class:`Query` and calls :func:`search`.

Composition
-----------
Each part is embedded to a unit vector by the default encoder: the text
``t``, the uploaded image ``i``, the stored vector of an existing asset
``a``, and the mean ``n`` of the negative terms. The query vector is::

    q = normalise(w_t * t / s_t + w_i * i / s_i + w_a * a / s_a - w_n * n / s_n)

Weights default to 1 (``w_n`` to 0.5) and must be finite, >= 0 and at most
``MAX_WEIGHT`` (10); the composed vector is checked (finite, non-zero) before
it reaches SQL. With a
single part, ``q`` is that part's vector. ``s_x`` is the spread of part
``x``: the standard deviation of its similarity over the catalogue, from the
covariance of a cached sample of stored vectors (``COMPOSE_SAMPLE_SIZE``).
CLIP's image-to-image similarities spread several times wider than its
text-to-image ones (the modality gap), so plain unit vectors let the image
of "this image, but square" outvote the words; divided by its spread, each
part moves an asset's score by the same number of catalogue standard
deviations per unit of weight, and the sum is still one vector the index
can serve. ``COMPOSE_SAMPLE_SIZE = 0`` (or a catalogue of under two
vectors) mixes the unit vectors as they are.

Scores
------
``score`` is the cosine similarity between ``q`` and the asset's vector, in
[-1, 1]. ``part_scores`` are the similarities to each part alone. In hybrid
mode, assets are ordered by reciprocal rank fusion of the vector ranking and
the Postgres full-text ranking (``fused_score = sum 1 / (RRF_K + rank)``),
and ``part_ranks`` gives the rank in each list that contributed.

Index use
---------
The nearest-neighbour query is ``ORDER BY vector <=> q LIMIT k`` over one
model's vectors, served by the ``halfvec_cosine_ops`` HNSW index with
pgvector's iterative scan (so filters cannot shorten a page). When filters
match few assets (at most ``EXACT_SCAN_MAX_ROWS``), the matching rows are
scanned exactly instead: cheaper than wandering the graph for rare matches,
and exact.
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import io
import math
import operator
import re
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import IO, Any

import numpy as np
from django.contrib.postgres.search import SearchQuery, SearchRank
from django.core.cache import caches
from django.db import transaction
from django.db.models import Case, Count, F, FloatField, Q, QuerySet, Value, When, Window
from django.db.models.functions import Cast, Greatest, Ln
from PIL import Image

from .conf import app_settings
from .constants import (
    DEFAULT_DUPLICATES_LIMIT,
    DEFAULT_NEGATIVE_WEIGHT,
    DEFAULT_WEIGHT,
    KEYWORD_MIN_SHARE,
    MAX_KEYWORD_TERMS,
    MAX_NEGATIVE_TERMS,
    MAX_OFFSET,
    MAX_WEIGHT,
    RERANK_TOP_N_MAX,
    RERANK_TOP_N_MIN,
)
from .encoders import BaseEncoder, embed_texts, get_encoder
from .exceptions import AssetNotEmbedded, EmptyQuery, InvalidQueryImage, QueryCancelsOut, SearchError, UnknownAsset
from .images import InvalidImage, decode_search_image
from .models import Asset, AssetEmbedding
from .querysets import configure_index_scan
from .rerank import Candidate, RerankOutcome, RerankQuery, rerank

# Public here since the first release: SearchError and its kin live in .exceptions.
__all__ = [
    "AssetNotEmbedded", "EmptyQuery", "Filters", "InvalidQueryImage", "Query", "QueryCancelsOut", "SearchError", "SearchHit",
    "SearchResults", "UnknownAsset", "candidate_assets", "check_page", "check_query_vector", "compose", "fuse_rankings", "keyword_ranking",
    "near_duplicates", "nearest", "search", "search_text", "similar_assets", "use_exact_scan", "vector_ranking",
]

WEIGHTS = ("text", "image", "asset", "negative")


def _given(data: Mapping[str, Any], name: str, default: Any) -> Any:
    """``data[name]``, or ``default`` when it is missing or None (a form's empty field)."""
    value = data.get(name)
    return default if value is None else value


@dataclass
class Filters:
    """Metadata filters; every given one must hold."""

    tags: Sequence[str] = ()  # the asset has all of these tags
    created_after: datetime | None = None
    created_before: datetime | None = None
    mime_types: Sequence[str] = ()
    uploaded_by: int | None = None
    status: str | None = None
    asset_ids: Sequence[int] | None = None  # restrict to these (used by moderation and reranking)
    exclude_ids: Sequence[int] = ()

    @classmethod
    def from_data(cls, data: Mapping[str, Any] | Filters | None) -> Filters:
        """Filters from a mapping of the same names (missing or None: not filtered)."""
        if isinstance(data, Filters):
            return data
        data = data or {}
        return cls(
            tags=list(_given(data, "tags", ())),
            created_after=data.get("created_after"),
            created_before=data.get("created_before"),
            mime_types=list(_given(data, "mime_types", ())),
            uploaded_by=data.get("uploaded_by"),
            status=data.get("status") or None,
            asset_ids=data.get("asset_ids"),
            exclude_ids=list(_given(data, "exclude_ids", ())),
        )

    def apply(self, assets: QuerySet[Asset]) -> QuerySet[Asset]:
        if self.tags:
            assets = assets.filter(tags__contains=list(self.tags))
        if self.created_after:
            assets = assets.filter(created_at__gte=self.created_after)
        if self.created_before:
            assets = assets.filter(created_at__lt=self.created_before)
        if self.mime_types:
            assets = assets.filter(mime_type__in=list(self.mime_types))
        if self.uploaded_by is not None:
            assets = assets.filter(uploaded_by_id=self.uploaded_by)
        if self.status:
            assets = assets.filter(embedding_status=self.status)
        if self.asset_ids is not None:
            assets = assets.filter(pk__in=list(self.asset_ids))
        if self.exclude_ids:
            assets = assets.exclude(pk__in=list(self.exclude_ids))
        return assets

    @property
    def active(self) -> bool:
        return any(
            [self.tags, self.created_after, self.created_before, self.mime_types, self.uploaded_by is not None,
             self.status, self.asset_ids is not None, self.exclude_ids]
        )


@dataclass
class Query:
    """One search. Build it directly, or with :meth:`from_data` from a form's or a
    serializer's data; :func:`search` checks it with :meth:`clean`."""

    text: str = ""
    image: Image.Image | IO[bytes] | bytes | None = None
    asset_id: int | None = None
    negative: Sequence[str] = ()
    text_weight: float = DEFAULT_WEIGHT
    image_weight: float = DEFAULT_WEIGHT
    asset_weight: float = DEFAULT_WEIGHT
    negative_weight: float = DEFAULT_NEGATIVE_WEIGHT
    filters: Filters = field(default_factory=Filters)
    hybrid: bool = False
    min_score: float | None = None
    exact: bool = False
    limit: int = 20
    offset: int = 0
    # Querysets of assets the caller may see (e.g. moderation hides some); None = all.
    visible: QuerySet[Asset] | None = None
    # Reorder the top candidates with a reranker: True (DEFAULT_RERANKER) or an alias.
    rerank: bool | str = False
    rerank_top_n: int | None = None

    @classmethod
    def from_data(cls, data: Mapping[str, Any]) -> Query:
        """The query a mapping of the field names describes; missing or None values take the defaults.

        ``filters`` is a mapping of :class:`Filters` names (or a ``Filters``);
        the API's serializers, the admin's forms and the evaluation's query
        files all come through here, so a default is the same everywhere.
        """
        unknown = set(data) - {f.name for f in dataclasses.fields(cls)}
        if unknown:
            raise SearchError(f"Unknown query field(s): {', '.join(sorted(unknown))}.")
        defaults = cls()
        values = {
            f.name: _given(data, f.name, getattr(defaults, f.name))
            for f in dataclasses.fields(cls)
            if f.name not in ("filters", "visible")
        }
        return cls(**values, filters=Filters.from_data(data.get("filters")), visible=data.get("visible"))

    def clean(self) -> Query:
        """A checked copy: page bounds, weights, parts; raises :class:`SearchError` saying what is wrong."""
        check_page(self.limit, self.offset)
        if self.min_score is not None and not (
            isinstance(self.min_score, (int, float)) and not isinstance(self.min_score, bool) and -1 <= self.min_score <= 1
        ):
            raise SearchError("min_score must be a number between -1 and 1.")
        weights = {f"{name}_weight": _check_weight(name, getattr(self, f"{name}_weight")) for name in WEIGHTS}
        if isinstance(self.text, str) and self.text and not self.text.strip():
            raise EmptyQuery("The query text is empty.")
        negative = [n for n in (self.negative or ()) if isinstance(n, str) and n.strip()]
        if len(negative) > MAX_NEGATIVE_TERMS:
            raise SearchError(f"At most {MAX_NEGATIVE_TERMS} negative terms are allowed.")
        if self.rerank and self.rerank_top_n is not None:
            _check_rerank_top_n(self.rerank_top_n)
        return dataclasses.replace(self, negative=negative, **weights)

    @property
    def rerank_depth(self) -> int:
        """How many top candidates to rerank (0: no reranking)."""
        if not self.rerank:
            return 0
        return _check_rerank_top_n(self.rerank_top_n if self.rerank_top_n is not None else app_settings.RERANK_TOP_N)


def check_page(limit: Any, offset: Any) -> None:
    """``limit`` 1 to ``MAX_PAGE_SIZE`` and ``offset`` 0 to ``MAX_OFFSET``, integers; else :class:`SearchError`."""
    for name, value in (("limit", limit), ("offset", offset)):
        if isinstance(value, bool) or not isinstance(value, int):
            raise SearchError(f"{name} must be an integer.")
    if not 1 <= limit <= app_settings.MAX_PAGE_SIZE:
        raise SearchError(f"limit must be between 1 and {app_settings.MAX_PAGE_SIZE}.")
    if not 0 <= offset <= MAX_OFFSET:
        raise SearchError(f"offset must be between 0 and {MAX_OFFSET}.")


def _check_rerank_top_n(top_n: Any) -> int:
    if isinstance(top_n, bool) or not isinstance(top_n, int) or not RERANK_TOP_N_MIN <= top_n <= RERANK_TOP_N_MAX:
        raise SearchError(f"rerank_top_n must be an integer between {RERANK_TOP_N_MIN} and {RERANK_TOP_N_MAX}.")
    return top_n


def _check_weight(name: str, value: Any) -> float:
    try:
        weight = float(value)
    except (TypeError, ValueError):
        raise SearchError(f"The {name} weight must be a number, not {value!r}.") from None
    if not math.isfinite(weight) or not 0 <= weight <= MAX_WEIGHT:
        raise SearchError(f"The {name} weight must be a finite number from 0 to {MAX_WEIGHT:g}, not {value!r}.")
    return weight


def check_query_vector(vector: np.ndarray) -> np.ndarray:
    """``vector`` scaled to unit length, as float32; :class:`SearchError` if it is not finite,
    :class:`QueryCancelsOut` if it is (almost) zero.

    Every vector a search sends to SQL passes here: pgvector refuses NaN and
    infinities with a database error, and a zero vector has no direction.
    """
    vector = np.asarray(vector, dtype=np.float64)
    norm = float(np.linalg.norm(vector)) if np.all(np.isfinite(vector)) else math.nan
    if not math.isfinite(norm):
        raise SearchError("The query vector is not finite; use smaller weights.")
    if norm < 1e-6:
        raise QueryCancelsOut("The weights cancel out, so nothing was ranked; give at least one part a positive weight.")
    return (vector / norm).astype(np.float32)


@dataclass
class SearchHit:
    asset: Asset
    score: float  # cosine similarity to the composed query vector
    rank: int  # 1-based over the whole result list, not the page
    part_scores: dict[str, float] = field(default_factory=dict)
    part_ranks: dict[str, int] = field(default_factory=dict)
    fused_score: float | None = None


@dataclass
class SearchResults:
    hits: list[SearchHit]
    strategy: str  # "index", "exact" or "hybrid:<index|exact>"
    notices: list[str] = field(default_factory=list)
    took_ms: float = 0.0
    rerank: RerankOutcome | None = None  # when reranking was asked for


# Query parts --------------------------------------------------------------


def decode_query_image(image: Image.Image | IO[bytes] | bytes) -> Image.Image:
    """An RGB image from an upload, bytes or a PIL image; :class:`InvalidQueryImage` if it is none."""
    if isinstance(image, bytes):
        image = io.BytesIO(image)
    if not isinstance(image, Image.Image):
        try:
            image = decode_search_image(image)
        except InvalidImage as exc:
            raise InvalidQueryImage(str(exc)) from exc
    return image.convert("RGB")


def asset_vector(asset_id: int, encoder: BaseEncoder | None = None) -> np.ndarray:
    encoder = encoder or get_encoder()
    try:
        asset = Asset.objects.get(pk=asset_id)
    except (Asset.DoesNotExist, ValueError, TypeError):
        raise UnknownAsset(f"There is no asset with id {asset_id!r}.") from None
    vector = AssetEmbedding.objects.for_model(encoder.key).filter(asset=asset).values_list("vector", flat=True).first()
    if vector is None:
        raise AssetNotEmbedded(f"Asset {asset_id} has no embedding yet (status: {asset.embedding_status}).")
    return np.asarray(vector, dtype=np.float32)


@dataclass
class ComposedQuery:
    vector: np.ndarray
    parts: dict[str, np.ndarray]
    notices: list[str]
    image: Image.Image | None = None  # the decoded query image, for rerankers


def compose(query: Query, encoder: BaseEncoder | None = None) -> ComposedQuery:
    """Embed the query's parts and combine them (see the module docstring)."""
    encoder = encoder or get_encoder()
    query = query.clean()
    weights = {name: getattr(query, f"{name}_weight") for name in WEIGHTS}
    negatives = list(query.negative)
    parts: dict[str, np.ndarray] = {}
    notices: list[str] = []
    texts = ([query.text] if query.text and query.text.strip() else []) + negatives
    embedded = embed_texts(texts, encoder) if texts else []
    if query.text and query.text.strip():
        first = embedded.pop(0)
        parts["text"] = first.vector
        if first.truncated:
            notices.append(f"The query text is longer than the model reads ({encoder.context_length} tokens); it was truncated.")
    image = None
    if query.image is not None:
        image = decode_query_image(query.image)
        parts["image"] = encoder.embed_images([image])[0]
    if query.asset_id is not None:
        parts["asset"] = asset_vector(query.asset_id, encoder)
    if not parts:
        raise EmptyQuery("Give text, an image or an asset to search with.")
    if negatives:
        parts["negative"] = np.mean([e.vector for e in embedded], axis=0)
        if any(e.truncated for e in embedded):
            notices.append("A negative term was truncated to the model's context length.")
    spreads = part_spreads(parts, encoder.key) if len(parts) > 1 else {}
    scaled = {name: weights[name] / spreads.get(name, 1.0) for name in parts}
    total = sum((-1 if name == "negative" else 1) * scaled[name] * vector.astype(np.float64) for name, vector in parts.items())
    # Measured against the length it would have if no part cancelled another: a tiny weight
    # (1e-30) still gives a direction; only parts that cancel leave (almost) nothing.
    scale = sum(scaled.values())
    return ComposedQuery(vector=check_query_vector(total / scale if scale else total), parts=parts, notices=notices, image=image)


def part_spreads(parts: dict[str, np.ndarray], model_key: str) -> dict[str, float]:
    """How much each part's similarity varies over the catalogue (its standard deviation).

    Empty when balancing is off or the catalogue has too few vectors to say.
    """
    covariance = catalogue_covariance(model_key)
    if covariance is None:
        return {}
    # Var(p . x) over the catalogue's vectors x is p' C p.
    return {name: max(math.sqrt(max(float(v @ covariance @ v), 0.0)), 1e-3) for name, v in parts.items()}


def catalogue_covariance(model_key: str) -> np.ndarray | None:
    """Covariance of a sample of ``model_key``'s stored vectors, cached; None under 2 vectors."""
    size = app_settings.COMPOSE_SAMPLE_SIZE
    if not size:
        return None
    cache = caches[app_settings.TEXT_CACHE_ALIAS]
    key = "assetsearch:covariance:" + hashlib.sha256(f"{model_key}\0{size}".encode()).hexdigest()
    cached = cache.get(key)
    if cached is not None:
        dimensions = int(math.isqrt(len(cached) // 4))
        return np.frombuffer(cached, dtype=np.float32).reshape(dimensions, dimensions)
    sample = AssetEmbedding.objects.sample_vectors(model_key, size)
    if len(sample) < 2:
        return None
    covariance = np.cov(sample, rowvar=False).astype(np.float32)
    cache.set(key, covariance.tobytes(), app_settings.COMPOSE_STATS_TIMEOUT)
    return covariance


# Running queries ----------------------------------------------------------


def candidate_assets(query: Query) -> QuerySet[Asset]:
    """The assets ``query`` may return: the visible ones, its filters applied."""
    assets = query.visible if query.visible is not None else Asset.objects.all()
    return query.filters.apply(assets)


def use_exact_scan(query: Query, assets: QuerySet[Asset]) -> bool:
    """Exact when asked, or when the filters leave few rows (the index would wander)."""
    if query.exact:
        return True
    if not query.filters.active:
        # Moderation hides few assets: the index with iterative scans stays best.
        return False
    # Counting stops at the cap: LIMIT keeps this cheap on any catalogue size.
    cap = app_settings.EXACT_SCAN_MAX_ROWS
    return assets.order_by().values("pk")[: cap + 1].count() <= cap


def vector_ranking(
    vector: np.ndarray, assets: QuerySet[Asset], *, depth: int, exact: bool, model_key: str, filtered: bool = False
) -> list[tuple[int, float]]:
    """``[(asset_id, similarity)]`` best first, the ``depth`` nearest among ``assets``.

    ``filtered``: the query's filters narrow ``assets`` (what moderation hides
    is not a filter here), so the index walks a longer list (get_ef_search).
    """
    queryset = AssetEmbedding.objects.nearest(vector, model_key, exact=exact)
    if assets.query.where or assets.query.combinator:
        queryset = queryset.filter(asset__in=assets.values("pk"))
    with transaction.atomic():
        configure_index_scan(depth, filtered)
        rows = list(queryset.values_list("asset_id", "distance")[:depth])
    return [(asset_id, 1.0 - float(distance)) for asset_id, distance in rows]


def keyword_terms(text: str) -> list[SearchQuery]:
    """One tsquery per distinct word of ``text``, in the text search configuration.

    Each word is stemmed as the titles were; a stop word ("a", "of") becomes
    an empty query that matches nothing. Punctuation is dropped, so a query's
    quotes and minus signs are not operators here.
    """
    words = list(dict.fromkeys(word.lower() for word in re.findall(r"\w+", text)))[:MAX_KEYWORD_TERMS]
    return [SearchQuery(word, search_type="plain", config=app_settings.FULL_TEXT_CONFIG) for word in words]


def keyword_ranking(text: str, assets: QuerySet[Asset], *, depth: int) -> list[int]:
    """Asset ids matching any significant word of ``text`` by Postgres full-text search, best first.

    A title word inside a sentence ("a picture of a zebra") matches. Each
    asset scores the sum, over the query words it matches, of
    ``ln(1 + M / m)``: M assets match any word, m this one, so a rare word
    outweighs several common ones (IDF within the matches) and more words
    score more; ties go to ``ts_rank_cd`` (cover density), then the id.
    Only assets scoring at least ``KEYWORD_MIN_SHARE`` of the best are
    kept: rank fusion counts any keyword match, and one of the query's
    common words alone ("circle" for "a red circle") must not lift a blue
    circle above a red one that the vectors rank higher.
    """
    terms = keyword_terms(text)
    if not terms:
        return []
    matching = assets.filter(search_document=functools.reduce(operator.or_, terms))
    matches = Cast(Window(Count("pk")), FloatField())
    weight = sum(
        (
            Case(
                When(search_document=term, then=Ln(1.0 + matches / Greatest(Window(Count("pk", filter=Q(search_document=term))), 1))),
                default=Value(0.0),
                output_field=FloatField(),
            )
            for term in terms
        ),
        start=Value(0.0),
    )
    rows = list(
        matching.annotate(
            keyword_weight=weight,
            text_rank=SearchRank(F("search_document"), functools.reduce(operator.or_, terms), cover_density=True),
        )
        .order_by("-keyword_weight", "-text_rank", "pk")
        .values_list("pk", "keyword_weight")[:depth]
    )
    best = rows[0][1] if rows else 0.0
    return [pk for pk, weight in rows if weight >= KEYWORD_MIN_SHARE * best]


def search(query: Query) -> SearchResults:
    """Run ``query``; see the module docstring for what each part does."""
    started = time.perf_counter()
    query = query.clean()
    encoder = get_encoder()
    try:
        composed = compose(query, encoder)
    except QueryCancelsOut as exc:
        return SearchResults(hits=[], strategy="exact", notices=[str(exc)], took_ms=(time.perf_counter() - started) * 1000)
    assets = candidate_assets(query)
    if query.asset_id is not None:
        assets = assets.exclude(pk=query.asset_id)  # "more like this" never returns the asset itself
    exact = use_exact_scan(query, assets)
    depth = query.offset + query.limit
    top_n = query.rerank_depth
    depth = max(depth, top_n)
    hybrid = bool(query.hybrid and query.text.strip())
    if query.hybrid and not hybrid:
        composed.notices.append("Hybrid mode needs query text; ran a vector search.")
    if hybrid:
        depth = max(depth, app_settings.HYBRID_CANDIDATES)
    by_vector = vector_ranking(
        composed.vector, assets, depth=depth, exact=exact, model_key=encoder.key, filtered=query.filters.active
    )
    if hybrid:
        fused = fuse_rankings({"vector": [pk for pk, _ in by_vector], "keyword": keyword_ranking(query.text, assets, depth=depth)})
    else:
        fused = [(pk, None, {"vector": rank}) for rank, (pk, _) in enumerate(by_vector, start=1)]
    # Stored vectors: the score of a keyword-only match, and each part's score when there are several.
    needs_vectors = hybrid or len(composed.parts) > 1
    vectors = AssetEmbedding.objects.for_model(encoder.key).vectors([pk for pk, _, _ in fused]) if needs_vectors else {}
    scores = dict(by_vector)
    if hybrid:
        scores = {pk: float(vector @ composed.vector) for pk, vector in vectors.items()}
    ranked = [(pk, scores.get(pk), fused_score, ranks) for pk, fused_score, ranks in fused]
    strategy = ("hybrid:" if hybrid else "") + ("exact" if exact else "index")

    outcome = None
    if top_n:
        ranked, outcome = _reranked(query, composed, ranked, top_n)
    if query.min_score is not None:
        ranked = [row for row in ranked if row[1] is not None and row[1] >= query.min_score]
    page = ranked[query.offset : query.offset + query.limit]
    objects = Asset.objects.select_related("uploaded_by").in_bulk([pk for pk, *_ in page])
    hits = []
    for position, (pk, score, fused_score, ranks) in enumerate(page, start=query.offset + 1):
        part_scores = {}
        if pk in vectors:
            part_scores = {name: float(vectors[pk] @ v) for name, v in composed.parts.items()}
        hits.append(
            SearchHit(
                asset=objects[pk],
                score=score if score is not None else float("nan"),
                rank=position,
                part_scores=part_scores,
                part_ranks=ranks,
                fused_score=fused_score,
            )
        )
    if outcome is not None and not outcome.applied:
        composed.notices.append(f"Reranking ({outcome.reranker}) fell back to the vector order: {outcome.fallback}")
    return SearchResults(
        hits=hits, strategy=strategy, notices=composed.notices, took_ms=(time.perf_counter() - started) * 1000, rerank=outcome
    )


def _reranked(query: Query, composed: ComposedQuery, ranked: list, top_n: int) -> tuple[list, RerankOutcome]:
    """Reorder the first ``top_n`` rows with the reranker; the rest keep their place."""
    alias = app_settings.DEFAULT_RERANKER if query.rerank is True else str(query.rerank)
    head, tail = ranked[:top_n], ranked[top_n:]
    assets = Asset.objects.in_bulk([row[0] for row in head])
    candidates = [Candidate(assets[row[0]], row[1] if row[1] is not None else float("nan")) for row in head]
    outcome = rerank(alias, RerankQuery(text=query.text.strip(), image=composed.image), candidates)
    by_pk = {row[0]: row for row in head}
    reordered = []
    for position, pk in enumerate(outcome.order, start=1):
        row = by_pk[pk]
        ranks = dict(row[3])
        if outcome.applied:
            ranks["rerank"] = position
        reordered.append((row[0], row[1], row[2], ranks))
    return reordered + tail, outcome


def fuse_rankings(rankings: dict[str, list[int]]) -> list[tuple[int, float, dict[str, int]]]:
    """Reciprocal rank fusion; ties broken by asset id for stable pages."""
    k = app_settings.RRF_K
    scores: dict[int, float] = {}
    ranks: dict[int, dict[str, int]] = {}
    for name, ids in rankings.items():
        for rank, pk in enumerate(ids, start=1):
            scores[pk] = scores.get(pk, 0.0) + 1.0 / (k + rank)
            ranks.setdefault(pk, {})[name] = rank
    order = sorted(scores, key=lambda pk: (-scores[pk], pk))
    return [(pk, scores[pk], ranks[pk]) for pk in order]


# Shortcuts ----------------------------------------------------------------


def search_text(text: str, *, limit: int = 20, offset: int = 0, exact: bool = False, **options: Any) -> list[SearchHit]:
    """Text -> image search: assets best described by ``text``, best first."""
    return search(Query(text=text, limit=limit, offset=offset, exact=exact, **options)).hits


def nearest(vector: np.ndarray | Sequence[float], *, limit: int = 20, offset: int = 0, exact: bool = False) -> list[SearchHit]:
    """Assets nearest to a raw vector (already in the default encoder's space)."""
    encoder = get_encoder()
    ranked = vector_ranking(check_query_vector(vector), Asset.objects.all(), depth=offset + limit, exact=exact, model_key=encoder.key)
    objects = Asset.objects.in_bulk([pk for pk, _ in ranked])
    return [
        SearchHit(asset=objects[pk], score=score, rank=i + 1)
        for i, (pk, score) in enumerate(ranked)
        if i >= offset
    ]


def similar_assets(asset_id: int, *, limit: int = 20, offset: int = 0, **options: Any) -> SearchResults:
    """"More like this": the assets nearest to an asset, itself excluded."""
    return search(Query(asset_id=asset_id, limit=limit, offset=offset, **options))


def near_duplicates(asset_id: int, *, threshold: float | None = None, limit: int = DEFAULT_DUPLICATES_LIMIT, visible: QuerySet[Asset] | None = None) -> list[SearchHit]:
    """Assets at least ``threshold`` similar to the asset (default ``DUPLICATE_THRESHOLD``)."""
    threshold = app_settings.DUPLICATE_THRESHOLD if threshold is None else threshold
    return search(Query(asset_id=asset_id, limit=limit, min_score=threshold, visible=visible)).hits
