"""Django admin: assets searched by meaning, similar assets, tag suggestions,
a visual search page, an embedding status panel, and moderation review.

Pages and who may use them (the same permissions as the REST API):

- Asset change list (``view_asset``): the search box runs a hybrid semantic
  search (CLIP vectors fused with Postgres full text), blended with the
  admin's own keyword search, and orders the rows by relevance.
- Asset change page: similar assets and suggested tags; accepting a tag
  (POST) needs ``change_asset``.
- ``asset/visual-search/`` (``view_asset``): text, image and/or asset,
  negative text, weights, metadata filters, hybrid mode.
- ``asset/status/`` (``view_asset``; the re-enqueue button ``change_asset``).
- Moderation concepts, the flag review queue and ``moderationflag/query/``
  (ad-hoc concept scoring) need ``moderate_asset``.

Assets hidden by moderation never appear to users without ``moderate_asset``:
every asset listing here starts from ``Asset.objects.visible_to(user)``.

Any registered model's own ``ModelAdmin`` gets the same search box with
:class:`SemanticSearchAdminMixin` (``assetsearch.admin.mixins``).
"""

from .assets import AssetAdmin, AssetPanels
from .forms import ModerationConceptForm, ModerationQueryForm, VisualSearchForm
from .mixins import SemanticSearchAdminMixin
from .moderation import ModerationConceptAdmin, ModerationFlagAdmin

__all__ = [
    "AssetAdmin", "AssetPanels", "ModerationConceptAdmin", "ModerationConceptForm", "ModerationFlagAdmin", "ModerationQueryForm",
    "SemanticSearchAdminMixin", "VisualSearchForm",
]
