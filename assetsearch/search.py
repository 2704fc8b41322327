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
can serve (:func:`assetsearch.catalogue.composed_vector`). ``COMPOSE_SAMPLE_SIZE = 0`` (or a catalogue of under
``CATALOGUE_MIN_VECTORS`` vectors) mixes the unit vectors as they are.

Several parts: none outvotes the others
--------------------------------------
A sum of similarities lets one part outvote the others: the query image's
own near-copy (0.99 to the image) comes first for "this image, but a
square" however little it looks like a square. So the index returns the
``COMPOSE_CANDIDATES`` nearest to ``q``, and they are ordered by ``match``:
the weighted mean of each part's z-score in the catalogue, capped at
``COMPOSE_PART_CAP`` (1.5) standard deviations, the negative part
subtracted where it is above typical (:func:`assetsearch.catalogue.composed_match`);
ties keep the index's order. A hit must then answer every part; measured on the
independent renderer (README "Searching from Python", the 2026-12-04
checkpoint) it puts the intended result first for a colour change in 0.39
of cases against the sum's 0.32, and as often as the sum for a shape
change.

Scores
------
``score`` is the cosine similarity between ``q`` and the asset's vector, in
[-1, 1]. ``part_scores`` are the similarities to each part alone, and
``match`` the capped mean z-score that ordered a query of several parts. In hybrid
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
import hashlib
import io
import math
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import IO, Any

import numpy as np
from django.contrib.contenttypes.models import ContentType
from django.core.cache import caches
from django.db.models import Model, Q, QuerySet
from PIL import Image

from .catalogue import CatalogueStats, composed_match, composed_vector
from .conf import app_settings
from .constants import (
    DEFAULT_DUPLICATES_LIMIT,
    DEFAULT_NEGATIVE_WEIGHT,
    DEFAULT_WEIGHT,
    MAX_LIST_LIMIT,
    MAX_NEGATIVE_TERMS,
    MAX_OFFSET,
    MAX_WEIGHT,
    RERANK_TOP_N_MAX,
    RERANK_TOP_N_MIN,
)
from .copies import get_picture, is_copy
from .encoders import BaseEncoder, embed_texts, get_encoder
from .exceptions import AssetNotEmbedded, EmptyQuery, InvalidQueryImage, QueryCancelsOut, SearchError, UnknownAsset
from .images import InvalidImage, decode_search_image
from .indexes import BaseImageIndex
from .models import Asset, IndexEntry
from .registry import NotRegistered, get_index, get_indexes
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
    status: str | None = None  # the entry's embedding status
    asset_ids: Sequence[int] | None = None  # restrict to these ids (used by moderation and reranking)
    exclude_ids: Sequence[int] = ()
    # Filters on fields the index declares in ``filter_fields``: a value, or a list of values (any of).
    fields: Mapping[str, Any] = field(default_factory=dict)

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
            fields=dict(_given(data, "fields", {})),
        )

    def apply(self, objects: QuerySet, index: BaseImageIndex | None = None) -> QuerySet:
        """``objects`` (of a registered model; default its index) with every filter applied."""
        index = index or get_index(objects.model)
        objects = index.apply_filters(objects, self)
        if self.status:
            entries = IndexEntry.objects.for_model(objects.model).search_alias().filter(status=self.status)
            objects = objects.filter(pk__in=entries.values("object_id"))
        if self.asset_ids is not None:
            objects = objects.filter(pk__in=list(self.asset_ids))
        if self.exclude_ids:
            objects = objects.exclude(pk__in=list(self.exclude_ids))
        return objects

    @property
    def active(self) -> bool:
        return any(
            [self.tags, self.created_after, self.created_before, self.mime_types, self.uploaded_by is not None,
             self.status, self.asset_ids is not None, self.exclude_ids, self.fields]
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
    # The registered models to search (classes or "app_label.model_name"); None: all of them.
    models: Sequence[type[Model] | str] | None = None
    # Whose search: each index's visible_to(user, ...) decides what they see; None is trusted code (everything).
    user: Any = None
    # "More like this" for any registered object (asset_id is the same for an asset).
    like: Model | None = None
    # A queryset of one model the caller may see (the API's and admin's own visibility); None = all.
    # Without ``models``, the search covers only that queryset's model.
    visible: QuerySet | None = None
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
            if f.name not in ("filters", "visible", "user", "like")
        }
        return cls(
            **values, filters=Filters.from_data(data.get("filters")), visible=data.get("visible"),
            user=data.get("user"), like=data.get("like"),
        )

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
        models = None
        if self.models is not None:
            try:
                models = [get_index(model).model for model in self.models]
            except (NotRegistered, LookupError, ValueError) as exc:
                raise SearchError(str(exc)) from None
        return dataclasses.replace(self, negative=negative, models=models, **weights)

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
    object: Model  # the found object: an asset, a host's photo, ...
    score: float  # cosine similarity to the composed query vector
    rank: int  # 1-based over the whole result list, not the page
    part_scores: dict[str, float] = field(default_factory=dict)
    part_ranks: dict[str, int] = field(default_factory=dict)
    fused_score: float | None = None
    match: float | None = None  # several parts: the capped mean z-score that ordered the candidates

    @property
    def index(self) -> BaseImageIndex:
        return get_index(type(self.object))

    @property
    def model(self) -> str:
        """``app_label.model_name`` of the object."""
        return self.index.label

    @property
    def asset(self) -> Asset | None:
        """The object, when it is an asset (the name of earlier releases)."""
        return self.object if isinstance(self.object, Asset) else None


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
            image = decode_search_image(image, get_encoder().image_size)
        except InvalidImage as exc:
            raise InvalidQueryImage(str(exc)) from exc
    return image.convert("RGB")


def object_vector(obj: Model, encoder: BaseEncoder | None = None) -> np.ndarray:
    """The stored vector of a registered object; :class:`AssetNotEmbedded` when it has none yet."""
    encoder = encoder or get_encoder()
    entry = IndexEntry.objects.for_objects(type(obj), [obj.pk]).for_encoder(encoder.alias).values_list("vector", "status").first()
    if entry is None or entry[0] is None:
        name = get_index(obj).model._meta.verbose_name
        status = entry[1] if entry else "not indexed"
        raise AssetNotEmbedded(f"{str(name).capitalize()} {obj.pk} has no embedding yet (status: {status}).")
    return np.asarray(entry[0], dtype=np.float32)


def asset_vector(asset_id: int, encoder: BaseEncoder | None = None) -> np.ndarray:
    try:
        asset = Asset.objects.get(pk=asset_id)
    except (Asset.DoesNotExist, ValueError, TypeError):
        raise UnknownAsset(f"There is no asset with id {asset_id!r}.") from None
    return object_vector(asset, encoder)


@dataclass
class ComposedQuery:
    vector: np.ndarray
    parts: dict[str, np.ndarray]
    notices: list[str]
    image: Image.Image | None = None  # the decoded query image, for rerankers
    weights: dict[str, float] = field(default_factory=dict)  # each part's weight, as given
    stats: CatalogueStats | None = None  # several parts: the catalogue they were weighed against

    def match(self, vectors: np.ndarray) -> np.ndarray | None:
        """How well these stored vectors answer every part (:func:`~assetsearch.catalogue.composed_match`).

        None for a single part, or without catalogue statistics: the index's order stands.
        """
        if self.stats is None or not len(vectors):
            return None
        similarities = {name: vectors @ part for name, part in self.parts.items()}
        return composed_match(similarities, self.parts, self.weights, self.stats, cap=app_settings.COMPOSE_PART_CAP)


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
    elif query.like is not None:
        parts["asset"] = object_vector(query.like, encoder)
    if not parts:
        raise EmptyQuery("Give text, an image or an asset to search with.")
    if negatives:
        parts["negative"] = np.mean([e.vector for e in embedded], axis=0)
        if any(e.truncated for e in embedded):
            notices.append("A negative term was truncated to the model's context length.")
    # One read of the statistics serves the weighing here and the match in search().
    stats = catalogue_stats(encoder) if len(parts) > 1 else None
    return ComposedQuery(
        vector=check_query_vector(composed_vector(parts, weights, stats)), parts=parts, notices=notices, image=image,
        weights={name: weights[name] for name in parts}, stats=stats,
    )


def part_spreads(parts: dict[str, np.ndarray], encoder: BaseEncoder | None = None) -> dict[str, float]:
    """How much each part's similarity varies over the catalogue (its standard deviation).

    Empty when balancing is off or the catalogue has too few vectors to say.
    """
    stats = catalogue_stats(encoder or get_encoder())
    return {name: stats.spread(v) for name, v in parts.items()} if stats else {}


def catalogue_stats(encoder: BaseEncoder) -> CatalogueStats | None:
    """Statistics of a sample of ``encoder``'s alias's stored vectors (every model), cached; None when off or too few."""
    size = app_settings.COMPOSE_SAMPLE_SIZE
    if not size:
        return None
    cache = caches[app_settings.TEXT_CACHE_ALIAS]
    key = "assetsearch:catalogue-stats:" + hashlib.sha256(f"{encoder.alias}\0{encoder.key}\0{size}".encode()).hexdigest()
    cached = cache.get(key)
    dimensions = encoder.dimensions
    if cached is not None:
        count, values = cached
        values = np.frombuffer(values, dtype=np.float32)
        return CatalogueStats(values[:dimensions], values[dimensions:].reshape(dimensions, dimensions), count)
    stats = CatalogueStats.from_vectors(IndexEntry.objects.sample_vectors(encoder.alias, size, dimensions))
    if stats is None:
        return None
    packed = np.concatenate([stats.mean.ravel(), stats.covariance.ravel()]).astype(np.float32)
    cache.set(key, (stats.size, packed.tobytes()), app_settings.COMPOSE_STATS_TIMEOUT)
    # What the cache gives back, so the first query and the next ones agree to the last bit.
    return CatalogueStats(packed[:dimensions], packed[dimensions:].reshape(dimensions, dimensions), stats.size)


# Running queries ----------------------------------------------------------

Key = tuple[int, int]  # (content type id, object id): one object of any registered model


@dataclass
class Target:
    """One model a query searches: its index and the objects the query may return."""

    index: BaseImageIndex
    content_type_id: int
    objects: QuerySet

    @property
    def restricted(self) -> bool:
        """Whether ``objects`` is narrower than the whole table (a subquery is needed)."""
        return bool(self.objects.query.where or self.objects.query.combinator)

    def entry_condition(self) -> Q:
        condition = Q(content_type_id=self.content_type_id)
        if self.restricted:
            condition &= Q(object_id__in=self.objects.order_by().values("pk"))
        return condition


def get_targets(query: Query) -> list[Target]:
    """The models ``query`` searches, each with its visible, filtered objects (empty ones left out)."""
    if query.models is not None:
        indexes = [get_index(model) for model in query.models]
    elif query.visible is not None:
        indexes = [get_index(query.visible.model)]
    else:
        indexes = get_indexes()
    targets = []
    for index in dict.fromkeys(indexes):
        if query.visible is not None and query.visible.model is index.model:
            objects = query.visible
        else:
            objects = index.get_queryset()
        objects = query.filters.apply(index.visible_to(query.user, objects), index)
        if query.asset_id is not None and index.model is Asset:
            objects = objects.exclude(pk=query.asset_id)  # "more like this" never returns the asset itself
        if query.like is not None and isinstance(query.like, index.model):
            objects = objects.exclude(pk=query.like.pk)
        if objects.query.is_empty():
            continue
        content_type = ContentType.objects.get_for_model(index.model, for_concrete_model=False)
        targets.append(Target(index, content_type.pk, objects))
    return targets


def as_targets(objects: Sequence[Target] | QuerySet) -> list[Target]:
    """Targets as they are, or a queryset of one registered model as its target."""
    if not isinstance(objects, QuerySet):
        return list(objects)
    index = get_index(objects.model)
    return [Target(index, ContentType.objects.get_for_model(index.model, for_concrete_model=False).pk, objects)]


def candidate_assets(query: Query) -> QuerySet[Asset]:
    """The assets ``query`` may return: the visible ones, its filters applied."""
    targets = [t for t in get_targets(dataclasses.replace(query, models=[Asset])) if t.index.model is Asset]
    return targets[0].objects if targets else Asset.objects.none()


def use_exact_scan(query: Query, targets: Sequence[Target] | QuerySet) -> bool:
    """Exact when asked, or when the filters leave few rows (the index would wander)."""
    targets = as_targets(targets)
    if query.exact:
        return True
    if not query.filters.active:
        # Moderation hides few objects: the index with iterative scans stays best.
        return False
    # Counting stops at the cap: LIMIT keeps this cheap on any catalogue size.
    cap = app_settings.EXACT_SCAN_MAX_ROWS
    total = 0
    for target in targets:
        total += target.objects.order_by().values("pk")[: cap + 1 - total].count()
        if total > cap:
            return False
    return True


def vector_ranking(
    vector: np.ndarray, targets: Sequence[Target] | QuerySet, *, depth: int, exact: bool, alias: str | None = None,
    model_key: str | None = None, filtered: bool = False,
) -> list[tuple[Any, float]]:
    """``[((content type id, object id), similarity)]`` best first, the ``depth`` nearest among the targets' objects.

    ``filtered``: the query's filters narrow the objects (what moderation
    hides is not a filter here), so the index walks a longer list
    (:func:`assetsearch.index.get_ef_search`). Given a queryset of one model
    instead of targets, returns ``[(pk, similarity)]`` (the form of earlier
    releases; ``model_key`` is no longer needed).
    """
    if isinstance(targets, QuerySet):
        ranked = vector_ranking(vector, as_targets(targets), depth=depth, exact=exact, alias=alias, filtered=filtered)
        return [(key[1], score) for key, score in ranked]
    alias = alias or app_settings.SEARCH_ENCODER
    if not targets:
        return []
    condition = Q()
    for target in targets:
        condition |= target.entry_condition()
    rows = IndexEntry.objects.nearest(vector, alias, exact=exact).filter(condition).ranking(depth, filtered=filtered, alias=alias)
    return [((ct, oid), 1.0 - distance) for ct, oid, distance in rows]


def keyword_ranking(text: str, targets: Sequence[Target] | QuerySet, *, depth: int) -> list[Any]:
    """Objects matching ``text`` by Postgres full-text search over each index's text fields, best first.

    Keys of the targets' objects; given a queryset of one model, its pks.
    """
    if isinstance(targets, QuerySet):
        return [key[1] for key in keyword_ranking(text, as_targets(targets), depth=depth)]
    rows = []
    for target in targets:
        rows += [(rank, (target.content_type_id, pk)) for pk, rank in target.index.keyword_ranking(target.objects, text, depth=depth)]
    rows.sort(key=lambda row: (-row[0], row[1]))
    return [key for _, key in rows[:depth]]


def load_objects(keys: Sequence[Key], targets: Sequence[Target]) -> dict[Key, Model]:
    """The objects of ``keys``, one query per model (and its index's prefetches: ``get_results_queryset``)."""
    by_type: dict[int, list[int]] = {}
    for content_type_id, pk in keys:
        by_type.setdefault(content_type_id, []).append(pk)
    indexes = {target.content_type_id: target.index for target in targets}
    objects: dict[Key, Model] = {}
    for content_type_id, pks in by_type.items():
        for pk, obj in indexes[content_type_id].get_results_queryset().in_bulk(pks).items():
            objects[content_type_id, pk] = obj
    return objects


def search(query: Query) -> SearchResults:
    """Run ``query``; see the module docstring for what each part does."""
    started = time.perf_counter()
    query = query.clean()
    encoder = get_encoder()
    try:
        composed = compose(query, encoder)
    except QueryCancelsOut as exc:
        return SearchResults(hits=[], strategy="exact", notices=[str(exc)], took_ms=(time.perf_counter() - started) * 1000)
    targets = get_targets(query)
    exact = use_exact_scan(query, targets)
    depth = query.offset + query.limit
    top_n = query.rerank_depth
    depth = max(depth, top_n)
    hybrid = bool(query.hybrid and query.text.strip())
    if query.hybrid and not hybrid:
        composed.notices.append("Hybrid mode needs query text; ran a vector search.")
    if hybrid:
        depth = max(depth, app_settings.HYBRID_CANDIDATES)
    several_parts = len(composed.parts) > 1
    if several_parts:
        depth = max(depth, app_settings.COMPOSE_CANDIDATES)
    by_vector = vector_ranking(
        composed.vector, targets, depth=depth, exact=exact, alias=encoder.alias, filtered=query.filters.active
    )
    # Stored vectors: each part's score (and the match) when there are several, the score of a keyword-only match.
    stored = IndexEntry.objects.for_encoder(encoder.alias)
    vectors = stored.vectors([key for key, _ in by_vector]) if several_parts else {}
    by_vector, matches = _by_match(composed, by_vector, vectors)
    if hybrid:
        fused = fuse_rankings({"vector": [key for key, _ in by_vector], "keyword": keyword_ranking(query.text, targets, depth=depth)})
        vectors.update(stored.vectors([key for key, _, _ in fused if key not in vectors]))
    else:
        fused = [(key, None, {"vector": rank}) for rank, (key, _) in enumerate(by_vector, start=1)]
    scores = dict(by_vector)
    if hybrid:
        scores = {key: float(vector @ composed.vector) for key, vector in vectors.items()}
    ranked = [(key, scores.get(key), fused_score, ranks) for key, fused_score, ranks in fused]
    strategy = ("hybrid:" if hybrid else "") + ("exact" if exact else "index")

    outcome = None
    if top_n:
        ranked, outcome = _reranked(query, composed, ranked, top_n, targets)
    if query.min_score is not None:
        ranked = [row for row in ranked if row[1] is not None and row[1] >= query.min_score]
    page = ranked[query.offset : query.offset + query.limit]
    objects = load_objects([key for key, *_ in page], targets)
    hits = []
    for position, (key, score, fused_score, ranks) in enumerate(page, start=query.offset + 1):
        if key not in objects:  # deleted since it was ranked
            continue
        part_scores = {}
        if key in vectors:
            part_scores = {name: float(vectors[key] @ v) for name, v in composed.parts.items()}
        hits.append(
            SearchHit(
                object=objects[key],
                score=score if score is not None else float("nan"),
                rank=position,
                part_scores=part_scores,
                part_ranks=ranks,
                fused_score=fused_score,
                match=matches.get(key),
            )
        )
    if outcome is not None and not outcome.applied:
        composed.notices.append(f"Reranking ({outcome.reranker}) fell back to the vector order: {outcome.fallback}")
    return SearchResults(
        hits=hits, strategy=strategy, notices=composed.notices, took_ms=(time.perf_counter() - started) * 1000, rerank=outcome
    )


def _by_match(
    composed: ComposedQuery, by_vector: list[tuple[Key, float]], vectors: Mapping[Key, np.ndarray]
) -> tuple[list[tuple[Key, float]], dict[Key, float]]:
    """The index's candidates reordered by the composed match (best first, ties in the index's order), and each one's match.

    Unchanged, with no matches, for a single part or without catalogue statistics.
    """
    keys = [key for key, _ in by_vector if key in vectors]
    match = composed.match(np.stack([vectors[key] for key in keys])) if keys else None
    if match is None:
        return by_vector, {}
    matches = {key: float(value) for key, value in zip(keys, match)}
    # A match has no floor (only the top of each part is capped): a row without a vector goes last.
    order = sorted(range(len(by_vector)), key=lambda n: (-matches.get(by_vector[n][0], -math.inf), n))
    return [by_vector[n] for n in order], matches


def _reranked(query: Query, composed: ComposedQuery, ranked: list, top_n: int, targets: Sequence[Target]) -> tuple[list, RerankOutcome]:
    """Reorder the first ``top_n`` rows with the reranker; the rest keep their place.

    Candidates are named by their object's id when they are all of one
    model, else by their position (ids of two models may collide).
    """
    alias = app_settings.DEFAULT_RERANKER if query.rerank is True else str(query.rerank)
    head, tail = ranked[:top_n], ranked[top_n:]
    objects = load_objects([row[0] for row in head], targets)
    head = [row for row in head if row[0] in objects]
    one_model = len({row[0][0] for row in head}) <= 1
    ids = {row[0]: (row[0][1] if one_model else n) for n, row in enumerate(head, start=1)}
    candidates = [
        Candidate(objects[row[0]], row[1] if row[1] is not None else float("nan"), id=ids[row[0]], key=row[0]) for row in head
    ]
    outcome = rerank(alias, RerankQuery(text=query.text.strip(), image=composed.image), candidates)
    by_id = {ids[row[0]]: row for row in head}
    reordered = []
    for position, candidate_id in enumerate(outcome.order, start=1):
        row = by_id[candidate_id]
        ranks = dict(row[3])
        if outcome.applied:
            ranks["rerank"] = position
        reordered.append((row[0], row[1], row[2], ranks))
    return reordered + tail, outcome


def fuse_rankings(rankings: dict[str, list[Any]]) -> list[tuple[Any, float, dict[str, int]]]:
    """Reciprocal rank fusion; ties broken by key (model, then id) for stable pages."""
    k = app_settings.RRF_K
    scores: dict[Any, float] = {}
    ranks: dict[Any, dict[str, int]] = {}
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


def nearest(vector: np.ndarray | Sequence[float], *, limit: int = 20, offset: int = 0, exact: bool = False, models: Sequence[Any] | None = None) -> list[SearchHit]:
    """Objects nearest to a raw vector (already in the search encoder's space)."""
    encoder = get_encoder()
    targets = get_targets(Query(text="-", models=models))
    ranked = vector_ranking(check_query_vector(vector), targets, depth=offset + limit, exact=exact, alias=encoder.alias)
    objects = load_objects([key for key, _ in ranked], targets)
    return [
        SearchHit(object=objects[key], score=score, rank=i + 1)
        for i, (key, score) in enumerate(ranked)
        if i >= offset and key in objects
    ]


def similar_assets(asset_id: int, *, limit: int = 20, offset: int = 0, **options: Any) -> SearchResults:
    """"More like this": the assets nearest to an asset, itself excluded."""
    return search(Query(asset_id=asset_id, limit=limit, offset=offset, **options))


def near_duplicates(
    asset_id: int | None = None, *, threshold: float | None = None, limit: int = DEFAULT_DUPLICATES_LIMIT,
    visible: QuerySet | None = None, like: Model | None = None, check_pixels: bool = True, **options: Any,
) -> list[SearchHit]:
    """Copies of the asset (or of ``like``, any registered object): objects at least
    ``threshold`` similar (default ``DUPLICATE_THRESHOLD``) whose pixels
    :mod:`assetsearch.copies` confirms within ``DUPLICATE_PIXEL_TOLERANCE``.

    ``check_pixels=False``, or a tolerance of None, lists every object above
    the threshold. The pixel check reads the files of up to ``MAX_LIST_LIMIT``
    (or ``MAX_PAGE_SIZE``) candidates, so a request costs that many reduced decodes at most.
    """
    threshold = app_settings.DUPLICATE_THRESHOLD if threshold is None else threshold
    tolerance = app_settings.DUPLICATE_PIXEL_TOLERANCE if check_pixels else None
    depth = limit if tolerance is None else max(limit, min(MAX_LIST_LIMIT, app_settings.MAX_PAGE_SIZE))
    hits = search(Query(asset_id=asset_id, like=like, limit=depth, min_score=threshold, visible=visible, **options)).hits
    if tolerance is None or not hits:
        return hits
    source = like if like is not None else Asset.objects.get(pk=asset_id)
    picture = get_picture(source, get_index(source))
    if picture is None:
        return []
    copies = [hit for hit in hits if (other := get_picture(hit.object, hit.index)) is not None and is_copy(picture, other, tolerance)]
    return [dataclasses.replace(hit, rank=rank) for rank, hit in enumerate(copies[:limit], start=1)]
