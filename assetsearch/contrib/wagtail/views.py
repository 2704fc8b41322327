"""Wagtail admin views: the image library and chooser searched by meaning, the visual search page,
the moderation queue and query, and the embedding status page.

The pages of this integration are thin: each calls the core function the
Django admin's page of the same name calls (``search``,
``moderation_query``, ``IndexEntryQuerySet.report_of``,
``requeue_embedding``), with the Django admin's forms, over
:func:`visible_images` (Wagtail's collection permissions, moderation
hiding). Who may open them: users who may choose or change images in some
collection (visual search, embedding status), or users with
``moderate_asset`` (the moderation pages), staff or not.

The image library and chooser views are Wagtail's own classes with one
method each changed (the search step), so Wagtail's templates, filters,
pagination and bulk actions stay Wagtail's; see the package docstring for
how they replace the stock ones.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from django import forms
from django.contrib.contenttypes.models import ContentType
from django.core.exceptions import PermissionDenied
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect
from django.urls import reverse
from django.utils.functional import cached_property
from django.utils.http import urlencode
from django.utils.translation import gettext, gettext_lazy as _
from django.views.generic import TemplateView
from wagtail.admin import messages
from wagtail.admin.views.generic.base import WagtailAdminTemplateMixin
from wagtail.admin.widgets.button import Button
from wagtail.images.views.chooser import ImageChooseResultsView, ImageChooserViewSet, ImageChooseView
from wagtail.images.views.images import EditView, IndexView

from assetsearch.admin.forms import ModerationQueryForm, VisualSearchForm, set_max
from assetsearch.conf import app_settings
from assetsearch.constants import ADMIN_RESULTS, MAX_CONCEPT_NAME_LENGTH, MAX_ID, MAX_REVIEW_IDS, MODERATE_PERMISSION, FlagStatus
from assetsearch.encoders import get_encoder
from assetsearch.exceptions import SEARCH_FAILURES, SearchError
from assetsearch.models import IndexEntry, ModerationFlag
from assetsearch.moderation import ModerationHit, moderation_query
from assetsearch.querysets import hide_flagged
from assetsearch.registry import get_index
from assetsearch.search import SearchResults, search
from assetsearch.tasks import broker_reachable, requeue_embedding

from .indexes import SEARCH_ACTIONS, get_image_permission_policy
from .search import blended_search
from .viewsets import CONCEPTS_NAMESPACE, get_concept_permission_policy


class SemanticImageIndexView(IndexView):
    """Wagtail's image library (``/admin/images/``): its search box ranks by meaning, blended with Wagtail's matches."""

    def search_queryset(self, queryset: QuerySet) -> QuerySet:
        # Images a hide-concept flagged are not listed to editors who cannot moderate. Hidden
        # here, not in get_base_queryset(): Wagtail's search backend refuses the filter's EXISTS.
        if not self.is_searching:
            return hide_flagged(queryset, self.request.user)
        return blended_search(
            queryset, self.search_query, super().search_queryset(queryset), user=self.request.user,
            order_by_relevance=not self.is_ordered_by_user,
        )

    @cached_property
    def is_ordered_by_user(self) -> bool:
        """Whether the user picked an ordering; the listing's search form always sends its "Sort by" (the default)."""
        return self.is_explicitly_ordered and self.request.GET.get("ordering") != self.default_ordering


class SemanticImageEditView(EditView):
    """Wagtail's image edit page, with "Find similar" among its header's buttons."""

    @cached_property
    def header_more_buttons(self) -> list[Button]:
        similar = reverse("assetsearch_wagtail:visual_search") + "?" + urlencode({"asset": self.object.pk})
        return [*super().header_more_buttons, Button(gettext("Find similar"), url=similar, icon_name="search", priority=5)]


class SemanticChooserFilterMixin(forms.Form):
    """For the chooser's filter form: the search step ranks by meaning, blended with Wagtail's matches."""

    user: Any = None  # set by the view

    def filter(self, objects: QuerySet) -> QuerySet:
        text = (self.cleaned_data.get("q") or "").strip()
        if not text:
            return hide_flagged(super().filter(objects), self.user)  # type: ignore[misc]
        # The other filters (collection, locale) without the search, then Wagtail's search too.
        self.cleaned_data["q"] = ""
        candidates = super().filter(objects)  # type: ignore[misc]
        self.cleaned_data["q"] = text
        keyword_matches = super().filter(objects)  # type: ignore[misc]
        return blended_search(candidates, text, keyword_matches, user=self.user)


class SemanticImageChooseViewMixin:
    """For Wagtail's image chooser views (the modal and its results fragment)."""

    request: HttpRequest

    def get_filter_form_class(self) -> type[forms.Form]:
        form_class = super().get_filter_form_class()  # type: ignore[misc]
        if "q" not in form_class.base_fields:
            return form_class  # the image model is not searchable at all
        return type("SemanticImageFilterForm", (SemanticChooserFilterMixin, form_class), {})

    def get_filter_form(self) -> forms.Form:
        form = super().get_filter_form()  # type: ignore[misc]
        form.user = self.request.user
        return form


class SemanticImageChooseView(SemanticImageChooseViewMixin, ImageChooseView):
    pass


class SemanticImageChooseResultsView(SemanticImageChooseViewMixin, ImageChooseResultsView):
    pass


class SemanticImageChooserViewSet(ImageChooserViewSet):
    """Wagtail's image chooser viewset with the semantic choose views (it builds them with the options Wagtail gives its own)."""

    choose_view_class = SemanticImageChooseView
    choose_results_view_class = SemanticImageChooseResultsView


# The visual search page ---------------------------------------------------


class ImageVisualSearchForm(VisualSearchForm):
    """The Django admin's visual search form, for Wagtail images: a collection filter instead of file types."""

    mime_types = None  # Wagtail keeps no MIME type
    asset = forms.IntegerField(
        label=_("Similar to image"), required=False, min_value=1,
        widget=forms.NumberInput(attrs={"style": "width: 8em"}), help_text=_("An image's id: more like this one."),
    )
    collection = forms.ModelChoiceField(label=_("Collection"), required=False, queryset=None, empty_label=_("All collections"))

    query_fields = ("text", "asset", "negative", "tags", "collection", "status")

    def __init__(self, *args: Any, visible: QuerySet, collections: QuerySet, **kwargs: Any) -> None:
        forms.Form.__init__(self, *args, **kwargs)  # VisualSearchForm's own lists the assets' MIME types
        self.visible = visible
        self.fields["image"].help_text = _("Find images that look like this picture.")
        self.fields["tags"].help_text = _("Only images with all of these tags, separated by commas.")
        self.fields["collection"].queryset = collections
        set_max(self.fields["limit"], app_settings.MAX_PAGE_SIZE)

    @property
    def option_fields(self) -> list[forms.BoundField]:
        return [self[name] for name in ("tags", "collection", "status", "hybrid", "rerank", "limit")]

    def clean_asset(self) -> int | None:
        try:
            return super().clean_asset()
        except forms.ValidationError:  # the same check, in the words of an image library
            raise forms.ValidationError(_("There is no image with id %(pk)s."), params={"pk": self.cleaned_data.get("asset")}) from None

    def get_query(self):  # type: ignore[no-untyped-def]
        query = super().get_query()
        collection = self.cleaned_data.get("collection")
        like = self.visible.get(pk=query.asset_id) if query.asset_id else None
        filters = dataclasses.replace(query.filters, fields={"collection": collection.pk} if collection else {})
        return dataclasses.replace(query, asset_id=None, like=like, filters=filters, models=[self.visible.model])


def visible_images(user: Any) -> QuerySet:
    """The Wagtail images ``user`` sees in this integration's pages (the index's ``visible_to``: collections, moderation)."""
    index = get_index(get_image_permission_policy().model)
    return index.visible_to(user, index.get_queryset())


class ImagesPageMixin(WagtailAdminTemplateMixin):
    """A page of the integration in Wagtail's frame, under "Images" in the breadcrumbs."""

    def get_breadcrumbs_items(self) -> list[dict[str, Any]]:
        return [*self.breadcrumbs_items, {"url": reverse("wagtailimages:index"), "label": gettext("Images")}, {"url": "", "label": self.get_page_title()}]

    def get_context_data(self, **kwargs: Any) -> dict[str, Any]:
        return {**super().get_context_data(**kwargs), "breadcrumbs_items": self.get_breadcrumbs_items()}


class ImageUserRequiredMixin:
    """For users who may choose or change images in some collection (Wagtail's image permission policy)."""

    def dispatch(self, request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        if not get_image_permission_policy().user_has_any_permission(request.user, SEARCH_ACTIONS):
            raise PermissionDenied
        return super().dispatch(request, *args, **kwargs)  # type: ignore[misc]


class ModeratorRequiredMixin:
    """For users with ``assetsearch.moderate_asset`` (as the Django admin's moderation pages and the API)."""

    def dispatch(self, request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        if not request.user.has_perm(MODERATE_PERMISSION):
            raise PermissionDenied
        return super().dispatch(request, *args, **kwargs)  # type: ignore[misc]


class VisualSearchView(ImageUserRequiredMixin, ImagesPageMixin, TemplateView):
    """Search Wagtail's images by text, an uploaded image and/or an image, with weights, negatives and filters."""

    template_name = "assetsearch_wagtail/visual_search.html"
    page_title = _("Visual search")
    header_icon = "search"

    def get_form(self) -> ImageVisualSearchForm:
        visible = visible_images(self.request.user)
        policy = get_image_permission_policy()
        collections = policy.collections_user_has_any_permission_for(self.request.user, SEARCH_ACTIONS)
        request = self.request
        if request.method == "POST":
            return ImageVisualSearchForm(request.POST, request.FILES, visible=visible, collections=collections)
        if any(name in request.GET for name in ImageVisualSearchForm.query_fields):
            return ImageVisualSearchForm(ImageVisualSearchForm.with_defaults(request.GET), visible=visible, collections=collections)
        return ImageVisualSearchForm(visible=visible, collections=collections)

    def get_context_data(self, **kwargs: Any) -> dict[str, Any]:
        context = super().get_context_data(**kwargs)
        form = self.get_form()
        results: SearchResults | None = None
        like = None
        if form.is_bound and form.is_valid():
            query = form.get_query()
            like = query.like
            try:
                results = search(query)
            except SearchError as exc:
                form.add_error(None, str(exc))
        context.update(form=form, results=results, like=like)
        return context

    def post(self, request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        return self.get(request, *args, **kwargs)


# The moderation queue -----------------------------------------------------

#: Flags shown on one page of the queue.
MODERATION_QUEUE_SIZE = ADMIN_RESULTS * 4


class ModerationQueueView(ModeratorRequiredMixin, ImagesPageMixin, TemplateView):
    """The flags moderation concepts raised on Wagtail images, by status; moderators confirm or dismiss them."""

    template_name = "assetsearch_wagtail/moderation_queue.html"
    page_title = _("Image moderation")
    header_icon = "warning"
    #: Review actions of the page's buttons: the status each one sets.
    actions = {"confirm": FlagStatus.CONFIRMED, "dismiss": FlagStatus.DISMISSED, "reopen": FlagStatus.OPEN}

    @cached_property
    def status(self) -> str:
        status = self.request.GET.get("status", FlagStatus.OPEN)
        return status if status in FlagStatus.values else FlagStatus.OPEN

    def with_images(self, flags: QuerySet, limit: int | None = None) -> list[tuple[ModerationFlag, Any]]:
        """``(flag, image)`` for the flags of ``flags`` on Wagtail images this moderator may see (collections)."""
        visible = visible_images(self.request.user)
        content_type = ContentType.objects.get_for_model(visible.model)
        flags = list(flags.filter(entry__content_type=content_type).select_related("concept", "entry")[:limit])
        images = visible.in_bulk([flag.entry.object_id for flag in flags])
        return [(flag, images[flag.entry.object_id]) for flag in flags if flag.entry.object_id in images]

    def get_flags(self) -> list[tuple[ModerationFlag, Any]]:
        """The current status's flags, highest score first."""
        return self.with_images(ModerationFlag.objects.filter(status=self.status).order_by("-score", "pk"), MODERATION_QUEUE_SIZE)

    def get_context_data(self, **kwargs: Any) -> dict[str, Any]:
        context = super().get_context_data(**kwargs)
        context.update(flags=self.get_flags(), status=self.status, statuses=FlagStatus.choices)
        return context

    def post(self, request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        status = self.actions.get(request.POST.get("action", ""))
        flag_ids = [int(pk) for pk in request.POST.getlist("flag")[:MAX_REVIEW_IDS] if pk.isdigit() and int(pk) <= MAX_ID]
        if status is None or not flag_ids:
            messages.error(request, gettext("Choose flags and an action."))
        else:
            reviewable = [flag.pk for flag, _image in self.with_images(ModerationFlag.objects.filter(pk__in=flag_ids))]
            count = ModerationFlag.objects.filter(pk__in=reviewable).review(status, request.user)
            messages.success(request, gettext("%(count)d flag(s) now %(status)s.") % {"count": count, "status": FlagStatus(status).label.lower()})
        return redirect(request.get_full_path())


# The moderation query ------------------------------------------------------


class ModerationQueryView(ModeratorRequiredMixin, ImagesPageMixin, TemplateView):
    """Ad-hoc moderation ("a violent scene"): the moderator's images ranked by the concept score of free text.

    The Django admin's form and the core's :func:`~assetsearch.moderation.moderation_query`;
    nothing is flagged here. "Save as a concept" opens the concept form with
    the phrases filled in: a saved, enabled concept flags (or hides) what
    scores at least its threshold.
    """

    template_name = "assetsearch_wagtail/moderation_query.html"
    page_title = _("Moderation query")
    header_icon = "warning"

    def get_context_data(self, **kwargs: Any) -> dict[str, Any]:
        context = super().get_context_data(**kwargs)
        form = ModerationQueryForm(self.request.GET) if "text" in self.request.GET else ModerationQueryForm()
        hits: list[ModerationHit] | None = None
        save_url = ""
        if form.is_bound and form.is_valid():
            prompts, counter_prompts = form.get_prompts()
            visible = visible_images(self.request.user)
            try:
                hits = moderation_query(
                    prompts, counter_prompts=counter_prompts, limit=form.cleaned_data.get("limit") or ADMIN_RESULTS,
                    models=[visible.model], visible=visible, user=self.request.user,
                )
            except SEARCH_FAILURES as exc:
                form.add_error(None, str(exc))
            if get_concept_permission_policy().user_has_permission(self.request.user, "add"):
                concept = {"name": prompts[0][:MAX_CONCEPT_NAME_LENGTH], "prompts": ",".join(prompts), "counter_prompts": ",".join(counter_prompts)}
                save_url = reverse(f"{CONCEPTS_NAMESPACE}:add") + "?" + urlencode(concept)
        context.update(form=form, hits=hits, save_url=save_url)
        return context


# The embedding status page ---------------------------------------------------


class EmbeddingStatusView(ImageUserRequiredMixin, ImagesPageMixin, TemplateView):
    """Where the user's images stand in the pipeline: counts per state, vectors per model, recent failures with their reason.

    The Django admin's status page for Wagtail images (the core's
    :meth:`~assetsearch.querysets.IndexEntryQuerySet.report_of`), over the
    images the user may choose or change. POST sends the pending and failed
    images the user may *change* to the workers again.
    """

    template_name = "assetsearch_wagtail/embedding_status.html"
    page_title = _("Image embedding status")
    header_icon = "list-ul"

    def get_context_data(self, **kwargs: Any) -> dict[str, Any]:
        context = super().get_context_data(**kwargs)
        encoder_key = get_encoder().key
        report = IndexEntry.objects.search_alias().report_of(visible_images(self.request.user), encoder_key)
        context.update(
            **vars(report), encoder_key=encoder_key, sweep_after=app_settings.SWEEP_AFTER_SECONDS,
            broker_reachable=broker_reachable(), can_requeue=get_image_permission_policy().user_has_permission(self.request.user, "change"),
        )
        return context

    def post(self, request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        policy = get_image_permission_policy()
        if not policy.user_has_permission(request.user, "change"):
            raise PermissionDenied
        changeable = visible_images(request.user).filter(pk__in=policy.instances_user_has_permission_for(request.user, "change").values("pk"))
        unfinished = IndexEntry.objects.for_model(changeable.model).search_alias().unfinished()
        ids, failed, sent = requeue_embedding(changeable.filter(pk__in=unfinished.values("object_id")))
        if not ids:
            messages.info(request, gettext("No image is pending or failed; nothing to send."))
        elif sent:
            messages.success(request, gettext("Queued %(total)d image(s) for embedding (%(failed)d of them had failed).") % {"total": len(ids), "failed": failed})
        else:
            messages.warning(
                request, gettext("The task broker is unreachable: %(total)d image(s) stay pending, and the sweep sends them when it is back.") % {"total": len(ids)},
            )
        return redirect(request.path)
