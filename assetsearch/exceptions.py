"""The errors assetsearch raises for its callers; this module imports nothing of ours.

:class:`SearchError` and its subclasses carry a message meant for the user
and a stable ``code`` (the API's error code).
"""

from __future__ import annotations


class SearchError(ValueError):
    """A query that cannot be run; the message is meant for the user."""

    code = "invalid_query"


class EmptyQuery(SearchError):
    code = "empty_query"


class InvalidQueryImage(SearchError):
    code = "invalid_image"


class UnknownAsset(SearchError):
    code = "unknown_asset"


class AssetNotEmbedded(SearchError):
    code = "asset_not_embedded"


class RerankError(Exception):
    """The reranker could not give an answer; the vector order stands."""
