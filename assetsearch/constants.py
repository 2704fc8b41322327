"""Fixed facts of assetsearch: status values, the moderation permission and every input bound.

Models, serializers, forms and the core read their limits from here, so a
bound is written once. Limits a site may change are settings
(:mod:`assetsearch.conf`), not constants.
"""

from __future__ import annotations

from django.db import models
from django.utils.translation import gettext_lazy as _

# Dimension of the bundled model's vectors. The column holds vectors of any
# dimension; each encoder alias declares its own (BaseEncoder.dimensions).
VECTOR_DIMENSIONS = 512

# The permission to review moderation flags and see hidden assets.
MODERATE_PERMISSION = "assetsearch.moderate_asset"

# Assets.
CONTENT_HASH_LENGTH = 64  # SHA-256, hex
MAX_FILE_PATH_LENGTH = 255  # Asset.image's column width
MAX_MODEL_KEY_LENGTH = 100
MAX_ENCODER_ALIAS_LENGTH = 50  # IndexEntry.encoder's column width
MAX_MODEL_LABEL_LENGTH = 200  # "app_label.model_name" in the API's model parameter
MAX_SEARCH_MODELS = 20  # labels in one model parameter
# Prefix of the per-alias partial HNSW indexes on the index-entry table.
VECTOR_INDEX_PREFIX = "assetsearch_entry_hnsw"
MAX_MIME_TYPE_LENGTH = 50
MAX_TAGS = 100
MAX_TAG_LENGTH = 64  # Asset.tags' item column width
MAX_TITLE_LENGTH = 255
MAX_DESCRIPTION_LENGTH = 10_000
# Longest client file name kept (Asset.original_filename); stored files are named by the server.
MAX_FILE_NAME = 100
MAX_ID = 2**63 - 1

# Queries.
MAX_QUERY_CHARS = 1000
# The query the admin suggests: one the bundled model answers on the example site's demo catalogue.
EXAMPLE_QUERY = "a red square"
MAX_KEYWORD_TERMS = 32  # distinct query words the keyword side of hybrid search looks up
KEYWORD_MIN_SHARE = 0.75  # keyword matches kept for fusion: at least this share of the best one's score
MAX_NEGATIVE_TERMS = 10
DEFAULT_WEIGHT = 1.0  # text, image and asset parts
DEFAULT_NEGATIVE_WEIGHT = 0.5
# Largest weight of a query part: a weight of 1 moves a score by one catalogue
# standard deviation, so 10 is already overwhelming; bigger numbers only
# overflow the composed vector.
MAX_WEIGHT = 10.0
MAX_OFFSET = 10_000
# Catalogue statistics (assetsearch.catalogue): fewer stored vectors than this
# say nothing about a catalogue, and queries use plain similarities.
CATALOGUE_MIN_VECTORS = 5
MIN_SPREAD = 1e-3  # a part whose similarity never varies still divides by something
RERANK_TOP_N_MIN, RERANK_TOP_N_MAX = 2, 100
# Result counts of the side lists (duplicates, tag suggestions), each capped at MAX_LIST_LIMIT.
MAX_LIST_LIMIT = 100
DEFAULT_DUPLICATES_LIMIT = 50
DEFAULT_TAG_SUGGESTIONS = 10
# Results per page of the admin's search pages (at most MAX_PAGE_SIZE).
ADMIN_RESULTS = 24

# Moderation.
MAX_CONCEPT_NAME_LENGTH = 100
MAX_PROMPTS = 50
MAX_PROMPT_LENGTH = 200  # ModerationConcept.prompts' item column width
DEFAULT_CONCEPT_THRESHOLD = 0.5
MAX_REVIEW_IDS = 1000


class EmbeddingStatus(models.TextChoices):
    PENDING = "pending", _("Pending")
    READY = "ready", _("Ready")
    FAILED = "failed", _("Failed")


class ConceptAction(models.TextChoices):
    FLAG = "flag", _("Flag for review")
    HIDE = "hide", _("Flag and hide from users without the moderation permission")


class FlagStatus(models.TextChoices):
    OPEN = "open", _("Open")
    CONFIRMED = "confirmed", _("Confirmed")
    DISMISSED = "dismissed", _("Dismissed")
