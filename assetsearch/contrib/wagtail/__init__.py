"""Wagtail's own images, searchable by meaning, in place, inside Wagtail's admin.

Add ``"assetsearch.contrib.wagtail"`` to ``INSTALLED_APPS`` after
``wagtail.images`` and ``assetsearch`` (and run a Celery worker, as for the
core). From then on:

- ``wagtail.images.get_image_model()`` (a custom image model too) is
  registered with :class:`~.indexes.WagtailImageIndex`: every uploaded or
  replaced image file is embedded by the worker; deleting an image removes
  its index entry and leaves the file to Wagtail. Images that existed
  before: ``manage.py assetsearch_reembed --model wagtailimages.image --missing``.
- The image library (``/admin/images/?q=...``) and the image chooser (every
  image field and the rich-text editor) rank their search results by
  meaning, fused with Wagtail's own keyword matches (reciprocal rank), so an
  exact title still comes first and "a round red shape" finds the red circle.
- A "Visual search" menu item: text and/or an image and/or a similar image,
  negative phrases, weights, tag and collection filters, hybrid and rerank;
  for every Wagtail editor who may choose or change images, staff or not.
- An "Image moderation" submenu for users with ``assetsearch.moderate_asset``
  (Wagtail's group editor offers that permission; no group gets it by
  itself): "Flags" (the flags on Wagtail images, to confirm, dismiss or
  reopen), "Concepts" (a Wagtail ``ModelViewSet`` over the core's model and
  form, :mod:`.viewsets`) and "Moderation query" (ad-hoc concept scoring).
- "Image embedding status" in Wagtail's "Reports" menu: the user's images
  by pipeline state, failures with their reason, re-enqueue.
- Images a hide-concept flagged are left out of the library, the chooser,
  the visual search and the REST API for users without
  ``assetsearch.moderate_asset``; what a user sees follows Wagtail's
  collection permissions (``choose`` or ``change``).
- The REST API serves them as ``model=wagtailimages.image``.

Why views, not a search backend
-------------------------------
Wagtail offers three places to change image search: hooks, its views, and
a search backend in ``WAGTAILSEARCH_BACKENDS``. The hook for the chooser
(``construct_image_chooser_queryset``) runs before the search, so it can
narrow the choices (moderation hiding uses it) but not rank them, and the
library has no such hook. A search backend would be called everywhere
Wagtail searches, but it must take over the whole site's search (pages,
documents, snippets), delegate all of it, and it never learns who is
searching, so moderation could not hide per user; it also needs a settings
change, where this app asks for none. So the library and the chooser are
Wagtail's own view classes with one method changed, the search step
(``IndexView.search_queryset`` and the chooser filter form's ``filter``),
which call Wagtail's backend for the keyword matches first and fuse them
with :func:`assetsearch.search.search`. Templates, filters, pagination, bulk
actions and the chooser's JavaScript stay Wagtail's. They are mounted on
Wagtail's own paths by a ``register_admin_urls`` hook with ``order=-1``
(before ``wagtail.images``' patterns), so every ``reverse()`` of Wagtail's
URL names reaches them. If a Wagtail release moves those paths, the stock
views serve them again (keyword search, nothing breaks) and the system
check ``assetsearch_wagtail.W001`` says so.

Not supported: Wagtail documents and other media; Wagtail's own API v2
(``/api/v2/images/?search=``) keeps Wagtail's search backend; the concept
calibration and the "Re-score" action are in the Django admin only.
"""
