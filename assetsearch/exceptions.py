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


class QueryCancelsOut(SearchError):
    """The query's parts cancel out (every weight zero, or a negative term equal to the text):
    a valid query with no direction to rank by, so :func:`~assetsearch.search.search` answers
    it with no results and this message as a notice."""


class RerankError(Exception):
    """The reranker could not give an answer; the vector order stands."""


class ModelUnavailable(RuntimeError):
    """The encoder's model cannot be loaded (weights missing, no network, a bad checkpoint).

    Not a transient error: retrying fails the same way until the
    configuration (or the cache) changes. The message names the model and
    the reason, for the person who has to fix it.
    """

    def __init__(self, model: str, reason: str) -> None:
        self.model = model
        self.reason = reason
        super().__init__(f"model {model} could not be loaded: {reason}; see README 'The model'")

    def __reduce__(self) -> tuple[type, tuple[str, str]]:
        return type(self), (self.model, self.reason)


#: What a search can fail with that its user should read: the admin's pages show the message.
SEARCH_FAILURES = (SearchError, ModelUnavailable)
