"""Admin of moderation: concepts (with calibration and re-scoring), the flag review queue, ad-hoc queries."""

from __future__ import annotations

from typing import Any

from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse
from django.template.response import TemplateResponse
from django.urls import NoReverseMatch, URLPattern, path, reverse
from django.utils import timezone
from django.utils.html import format_html
from django.utils.http import urlencode
from django.utils.translation import gettext, gettext_lazy as _, ngettext

from ..constants import ADMIN_RESULTS
from ..exceptions import SEARCH_FAILURES
from ..models import FlagStatus, ModerationConcept, ModerationFlag
from ..moderation import ModerationHit, calibrate, default_counter_prompts, moderation_query
from ..tasks import request_rescore
from .base import AdminPageMixin, thumbnail_html
from .forms import ModerationConceptForm, ModerationQueryForm


class ModerationPermissionMixin(AdminPageMixin):
    """Moderation pages need ``moderate_asset``; editing concepts also the model permission."""

    def has_module_permission(self, request: HttpRequest) -> bool:
        return self.has_moderate_permission(request)

    def has_view_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return self.has_moderate_permission(request)


@admin.register(ModerationConcept)
class ModerationConceptAdmin(ModerationPermissionMixin, admin.ModelAdmin):
    list_display = ["name", "enabled", "action", "threshold", "open_flags", "rescore_progress", "rescored_at"]
    list_filter = ["enabled", "action"]
    search_fields = ["name", "prompts"]
    readonly_fields = ["weighed_against", "rescore_progress", "rescored_at", "calibration"]
    form = ModerationConceptForm
    fieldsets = [
        (None, {"fields": ModerationConceptForm.Meta.fields}),
        (_("Scoring"), {"fields": ["weighed_against", "rescore_progress", "rescored_at", "calibration"]}),
    ]
    actions = ["rescore"]

    class Media:
        css = {"all": ["assetsearch/admin.css"]}

    def has_add_permission(self, request: HttpRequest) -> bool:
        return self.has_moderate_permission(request) and super().has_add_permission(request)

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return self.has_moderate_permission(request) and super().has_change_permission(request, obj)

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return self.has_moderate_permission(request) and super().has_delete_permission(request, obj)

    def get_queryset(self, request: HttpRequest) -> QuerySet[ModerationConcept]:
        return super().get_queryset(request).with_open_flag_count()

    @admin.display(description=_("open flags"), ordering="open_flag_count")
    def open_flags(self, concept: ModerationConcept) -> str:
        count = getattr(concept, "open_flag_count", None)
        if count is None:
            count = concept.flags.filter(status=FlagStatus.OPEN).count()
        url = reverse(f"{self.admin_site.name}:assetsearch_moderationflag_changelist") + "?" + urlencode({"concept__id__exact": concept.pk, "status__exact": FlagStatus.OPEN})
        return format_html('<a href="{}">{}</a>', url, count)

    @admin.display(description=_("weighed against"))
    def weighed_against(self, concept: ModerationConcept) -> str:
        """What the concept's prompts compete with: its counter-prompts, or those that stand in for them."""
        if not concept.pk:
            return "\u2013"
        if concept.counter_prompts:
            return gettext("Its counter-prompts.")
        try:
            stand_in = default_counter_prompts(concept.prompts)
        except SEARCH_FAILURES as exc:
            return gettext("Not known now: %s") % exc
        return gettext("No counter-prompts, so: %s") % ", ".join(stand_in)

    @admin.display(description=_("re-score progress"))
    def rescore_progress(self, concept: ModerationConcept) -> str:
        if not concept.rescore_total:
            return gettext("never run") if concept.pk else "\u2013"
        return format_html(
            '<progress max="{}" value="{}"></progress> {} / {}',
            concept.rescore_total, concept.rescore_done, concept.rescore_done, concept.rescore_total,
        )

    @admin.display(description=_("calibration"))
    def calibration(self, concept: ModerationConcept) -> str:
        if not concept.pk:
            return "\u2013"
        rows, suggestion = calibrate(concept)
        if not rows:
            return gettext("No reviewed flags yet: confirm or dismiss some to calibrate the threshold.")
        if suggestion is None:
            return gettext("No threshold reaches 90%% precision on the %d reviewed flag(s).") % rows[0].flagged
        return gettext("Lowest threshold with at least 90%% precision on reviewed flags: %.3f") % suggestion

    @admin.action(description=_("Re-score the catalogue for selected concepts"), permissions=["moderate"])
    def rescore(self, request: HttpRequest, queryset: QuerySet[ModerationConcept]) -> None:
        concepts = list(queryset)
        for concept in concepts:
            request_rescore(concept)
        self.message_user(
            request,
            ngettext("Re-scoring %d concept in the background.", "Re-scoring %d concepts in the background.", len(concepts)) % len(concepts),
            messages.SUCCESS,
        )


@admin.register(ModerationFlag)
class ModerationFlagAdmin(ModerationPermissionMixin, admin.ModelAdmin):
    """The review queue: open flags, best scores first, confirmed or dismissed in bulk."""

    list_display = ["thumbnail", "asset_link", "concept", "score_display", "status", "reviewer", "reviewed_at", "created_at"]
    list_display_links = ["thumbnail", "score_display"]
    list_filter = ["status", "concept", "concept__action", "entry__content_type"]
    list_select_related = ["entry", "concept", "reviewer"]
    search_fields = ["entry__asset__title", "concept__name"]
    readonly_fields = ["thumbnail_large", "asset_link", "concept", "score", "reviewer", "reviewed_at", "created_at"]
    fields = ["thumbnail_large", "asset_link", "concept", "score", "status", "reviewer", "reviewed_at", "created_at"]
    actions = ["confirm", "dismiss", "reopen"]
    list_per_page = 50

    class Media:
        css = {"all": ["assetsearch/admin.css"]}

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False  # flags come from scoring, never by hand

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return self.has_moderate_permission(request)

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return self.has_moderate_permission(request) and super().has_delete_permission(request, obj)

    def get_queryset(self, request: HttpRequest) -> QuerySet[ModerationFlag]:
        return super().get_queryset(request).prefetch_related("entry__content_object")

    @admin.display(description=_("image"))
    def thumbnail(self, flag: ModerationFlag) -> str:
        return thumbnail_html(flag.content_object)

    @admin.display(description=_("image"))
    def thumbnail_large(self, flag: ModerationFlag) -> str:
        return thumbnail_html(flag.content_object, 256, "assetsearch-preview")

    @admin.display(description=_("object"), ordering="entry__object_id")
    def asset_link(self, flag: ModerationFlag) -> str:
        obj = flag.content_object
        if obj is None:
            return "\u2013"
        opts = obj._meta
        try:
            url = reverse(f"{self.admin_site.name}:{opts.app_label}_{opts.model_name}_change", args=[obj.pk])
        except NoReverseMatch:
            return str(obj)
        return format_html('<a href="{}">{}</a>', url, obj)

    @admin.display(description=_("score"), ordering="score")
    def score_display(self, flag: ModerationFlag) -> str:
        return f"{flag.score:.3f}"

    def save_model(self, request: HttpRequest, obj: ModerationFlag, form: Any, change: bool) -> None:
        if "status" in form.changed_data:
            obj.reviewer = request.user
            obj.reviewed_at = timezone.now()
        super().save_model(request, obj, form, change)

    def _review(self, request: HttpRequest, queryset: QuerySet[ModerationFlag], status: str, done: str) -> None:
        count = queryset.review(status, request.user)
        self.message_user(request, done % count, messages.SUCCESS)

    @admin.action(description=_("Confirm selected flags"), permissions=["moderate"])
    def confirm(self, request: HttpRequest, queryset: QuerySet[ModerationFlag]) -> None:
        self._review(request, queryset, FlagStatus.CONFIRMED, gettext("Confirmed %d flag(s)."))

    @admin.action(description=_("Dismiss selected flags"), permissions=["moderate"])
    def dismiss(self, request: HttpRequest, queryset: QuerySet[ModerationFlag]) -> None:
        self._review(request, queryset, FlagStatus.DISMISSED, gettext("Dismissed %d flag(s)."))

    @admin.action(description=_("Reopen selected flags"), permissions=["moderate"])
    def reopen(self, request: HttpRequest, queryset: QuerySet[ModerationFlag]) -> None:
        self._review(request, queryset, FlagStatus.OPEN, gettext("Reopened %d flag(s)."))

    def get_urls(self) -> list[URLPattern]:
        info = self.opts.app_label, self.opts.model_name
        return [
            path("query/", self.admin_site.admin_view(self.query_view), name="%s_%s_query" % info),
            *super().get_urls(),
        ]

    def query_view(self, request: HttpRequest) -> HttpResponse:
        """Ad-hoc moderation query: assets ranked by the concept score of free text."""
        if not self.has_moderate_permission(request):
            raise PermissionDenied
        form = ModerationQueryForm(request.GET) if "text" in request.GET else ModerationQueryForm()
        hits: list[ModerationHit] | None = None
        if form.is_bound and form.is_valid():
            prompts, counter_prompts = form.get_prompts()
            try:
                hits = moderation_query(
                    prompts,
                    counter_prompts=counter_prompts,
                    limit=form.cleaned_data.get("limit") or ADMIN_RESULTS,
                    user=request.user,
                )
            except SEARCH_FAILURES as exc:
                form.add_error(None, str(exc))
        context = self.page_context(request, gettext("Moderation query"), form=form, hits=hits)
        return TemplateResponse(request, "admin/assetsearch/moderationflag/query.html", context)
