"""Moderation concepts in the Wagtail admin: a ``ModelViewSet`` over the core's model and form.

Why a ``ModelViewSet``: it is Wagtail's own listing, create, edit, inspect
and delete pages for any Django model (styling, breadcrumbs, search,
filters, history), so nothing here renders a form by hand. The form is the
core's :class:`~assetsearch.admin.forms.ModerationConceptForm` (the Django
admin's), so the validation is the model's in both admins; saving an
enabled concept re-scores the catalogue through the core's ``post_save``
signal, as everywhere else.

Who may do what follows the Django admin and the REST API, expressed as a
Wagtail permission policy (:class:`ModerationConceptPermissionPolicy`,
registered for the model in ``AppConfig.ready()``): ``moderate_asset`` to
list and inspect concepts; adding, changing and deleting also need the
model's own permission (``add_``/``change_``/``delete_moderationconcept``),
which the viewset offers in Wagtail's group editor. No Django staff status
is needed.
"""

from __future__ import annotations

from typing import Any

from django.contrib.auth import get_user_model
from django.db.models import QuerySet
from django.utils.translation import gettext_lazy as _
from wagtail.admin.ui.tables import BooleanColumn, Column
from wagtail.admin.viewsets.model import ModelViewSet
from wagtail.admin.views import generic
from wagtail.permission_policies import ModelPermissionPolicy

from assetsearch.admin.forms import ModerationConceptForm
from assetsearch.constants import MODERATE_PERMISSION
from assetsearch.models import ModerationConcept

#: The viewset's URL namespace (``reverse(f"{CONCEPTS_NAMESPACE}:index")``).
CONCEPTS_NAMESPACE = "assetsearch_concepts"
#: The concept fields the add form may take from its query string (the moderation query's "Save as a concept").
PREFILLED_FIELDS = ("name", "prompts", "counter_prompts")


class ModerationConceptPermissionPolicy(ModelPermissionPolicy):
    """``moderate_asset`` for everything; viewing needs nothing more, the other actions also the model permission."""

    def user_has_permission(self, user: Any, action: str) -> bool:
        if not user.has_perm(MODERATE_PERMISSION):
            return False
        return action == "view" or super().user_has_permission(user, action)

    def users_with_any_permission(self, actions: Any) -> QuerySet:
        moderators = get_user_model()._default_manager.with_perm(MODERATE_PERMISSION)
        if "view" in actions:
            return moderators
        return moderators.filter(pk__in=super().users_with_any_permission(actions).values("pk"))


def get_concept_permission_policy() -> ModerationConceptPermissionPolicy:
    """The policy Wagtail applies to moderation concepts (registered in ``AppConfig.ready()``)."""
    from wagtail.permissions import policy_registry

    return policy_registry.get_by_type(ModerationConcept)


class ConceptIndexView(generic.IndexView):
    def get_base_queryset(self) -> QuerySet:
        return super().get_base_queryset().with_open_flag_count()


class ConceptCreateView(generic.CreateView):
    def get_initial(self) -> dict[str, Any]:
        # From the moderation query's "Save as a concept" link; the form validates them as any input.
        return {**super().get_initial(), **{name: self.request.GET[name] for name in PREFILLED_FIELDS if name in self.request.GET}}


def rescore_progress(concept: ModerationConcept) -> str:
    """How far the last catalogue re-score got: "done / total"."""
    return f"{concept.rescore_done} / {concept.rescore_total}" if concept.rescore_total else "\u2013"


class ModerationConceptViewSet(ModelViewSet):
    model = ModerationConcept
    icon = "warning"
    menu_label = _("Concepts")
    name = CONCEPTS_NAMESPACE
    url_prefix = "assetsearch/concepts"
    index_view_class = ConceptIndexView
    add_view_class = ConceptCreateView
    inspect_view_enabled = True
    copy_view_enabled = False
    add_to_reference_index = False
    search_fields = ["name"]
    list_filter = ["enabled", "action"]
    list_display = [
        "name", BooleanColumn("enabled", label=_("Enabled")), "action", "threshold",
        Column("open_flag_count", label=_("Open flags")),
        Column("rescore_progress", label=_("Re-scored"), accessor=rescore_progress),
        "rescored_at",
    ]
    inspect_view_fields = [*ModerationConceptForm.Meta.fields, "rescored_at", "updated_at"]

    def get_form_class(self, for_update: bool = False) -> type[ModerationConceptForm]:
        return ModerationConceptForm
