"""The admin's forms: the search forms, each describing its query through the same core
function as the API, and the asset form's file widget."""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib.admin.widgets import AdminFileWidget
from django.core.validators import MaxValueValidator
from django.db.models import QuerySet
from django.http import QueryDict
from django.utils.text import format_lazy
from django.utils.translation import gettext_lazy as _

from ..conf import app_settings
from ..constants import (
    ADMIN_RESULTS,
    DEFAULT_NEGATIVE_WEIGHT,
    DEFAULT_WEIGHT,
    EXAMPLE_QUERY,
    MAX_ID,
    MAX_QUERY_CHARS,
    MAX_TAG_LENGTH,
    MAX_TAGS,
    MAX_WEIGHT,
    EmbeddingStatus,
)
from ..files import get_original_url
from ..models import Asset, ModerationConcept
from ..search import Query


class _FileLink:
    """What the file widget shows for a stored file: its original name, linked to the serving view."""

    def __init__(self, url: str, name: str) -> None:
        self.url, self.name = url, name

    def __str__(self) -> str:
        return self.name


class ServedFileWidget(AdminFileWidget):
    """The admin's file input, whose "Currently:" link is the asset's permission-checked
    file view (:func:`~assetsearch.files.get_original_url`), never the storage's URL."""

    def format_value(self, value: Any) -> Any:
        asset = getattr(value, "instance", None)
        if self.is_initial(value) and asset is not None and asset.pk:
            return _FileLink(get_original_url(asset), asset.original_filename or value.name.rsplit("/", 1)[-1])
        return super().format_value(value)


def split_terms(value: str) -> list[str]:
    """Comma- or newline-separated phrases, trimmed, empty ones dropped."""
    return [term.strip() for term in value.replace("\n", ",").split(",") if term.strip()]


def set_max(field: forms.IntegerField, limit: int) -> None:
    """A maximum known only at request time (it is a setting)."""
    field.max_value = limit
    field.validators.append(MaxValueValidator(limit))
    field.widget.attrs["max"] = limit


def weight_field(label: str, initial: float) -> forms.FloatField:
    """A query part's weight: 0 to ``MAX_WEIGHT``."""
    return forms.FloatField(
        label=label, required=False, min_value=0, max_value=MAX_WEIGHT, initial=initial,
        widget=forms.NumberInput(attrs={"step": "0.1", "style": "width: 5em"}),
    )


class VisualSearchForm(forms.Form):
    """The visual search page's query: any mix of text, an image and an asset."""

    text = forms.CharField(
        label=_("Text"), required=False, max_length=MAX_QUERY_CHARS,
        widget=forms.TextInput(attrs={"size": 48, "placeholder": format_lazy(_("e.g. {query}"), query=EXAMPLE_QUERY)}),
    )
    image = forms.FileField(label=_("Image"), required=False, help_text=_("Find assets that look like this picture."))
    asset = forms.IntegerField(
        label=_("Similar to asset"), required=False, min_value=1, max_value=MAX_ID,
        widget=forms.NumberInput(attrs={"style": "width: 8em"}), help_text=_("An asset's id: more like this one."),
    )
    negative = forms.CharField(
        label=_("Not like"), required=False, max_length=MAX_QUERY_CHARS,
        widget=forms.TextInput(attrs={"size": 48}), help_text=_("Phrases to steer away from, separated by commas."),
    )
    text_weight = weight_field(_("Text weight"), DEFAULT_WEIGHT)
    image_weight = weight_field(_("Image weight"), DEFAULT_WEIGHT)
    asset_weight = weight_field(_("Asset weight"), DEFAULT_WEIGHT)
    negative_weight = weight_field(_("Negative weight"), DEFAULT_NEGATIVE_WEIGHT)
    tags = forms.CharField(
        label=_("Tags"), required=False, max_length=MAX_TAGS * (MAX_TAG_LENGTH + 1),
        help_text=_("Only assets with all of these tags, separated by commas."),
    )
    mime_types = forms.MultipleChoiceField(label=_("File types"), required=False, widget=forms.CheckboxSelectMultiple)
    status = forms.ChoiceField(label=_("Embedding status"), required=False, choices=[("", _("Any")), *EmbeddingStatus.choices])
    hybrid = forms.BooleanField(
        label=_("Hybrid"), required=False,
        help_text=_("Blend in keyword matches on title, tags and description (needs text)."),
    )
    rerank = forms.BooleanField(
        label=_("Rerank"), required=False,
        help_text=_("Reorder the top results with the configured reranker (a stronger model)."),
    )
    limit = forms.IntegerField(label=_("Results"), required=False, min_value=1, initial=ADMIN_RESULTS, widget=forms.NumberInput(attrs={"style": "width: 5em"}))

    #: Field names that, present in a GET query string, make it a search.
    query_fields = ("text", "asset", "negative", "tags", "mime_types", "status")

    @classmethod
    def with_defaults(cls, data: QueryDict) -> QueryDict:
        """``data`` (a query string) plus the initial values of the fields it leaves out.

        So a link such as ``?asset=12`` shows a complete form to refine.
        """
        data = data.copy()
        for name, field in cls.base_fields.items():
            if name not in data and field.initial is not None:
                data[name] = str(field.initial)
        return data

    # Groups of fields, for the template's fieldsets.
    @property
    def query_part_fields(self) -> list[forms.BoundField]:
        return [self[name] for name in ("text", "image", "asset", "negative")]

    @property
    def weight_fields(self) -> list[forms.BoundField]:
        return [self[name] for name in ("text_weight", "image_weight", "asset_weight", "negative_weight")]

    @property
    def option_fields(self) -> list[forms.BoundField]:
        return [self[name] for name in ("tags", "mime_types", "status", "hybrid", "rerank", "limit")]

    def __init__(self, *args: Any, visible: QuerySet[Asset], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.visible = visible
        types = visible.exclude(mime_type="").order_by("mime_type").values_list("mime_type", flat=True).distinct()
        self.fields["mime_types"].choices = [(t, t) for t in types]
        set_max(self.fields["limit"], app_settings.MAX_PAGE_SIZE)

    def clean_image(self) -> Any:
        image = self.cleaned_data.get("image")
        if image is not None and image.size > app_settings.MAX_UPLOAD_BYTES:
            raise forms.ValidationError(
                _("The image is %(size)d bytes; the limit is %(limit)d."), params={"size": image.size, "limit": app_settings.MAX_UPLOAD_BYTES}
            )
        return image

    def clean_tags(self) -> str:
        tags = self.cleaned_data.get("tags") or ""
        terms = split_terms(tags)
        if len(terms) > MAX_TAGS or any(len(term) > MAX_TAG_LENGTH for term in terms):
            raise forms.ValidationError(
                _("At most %(count)d tags of at most %(length)d characters each."), params={"count": MAX_TAGS, "length": MAX_TAG_LENGTH}
            )
        return tags

    def clean_asset(self) -> int | None:
        pk = self.cleaned_data.get("asset")
        # An asset the user may not see cannot be the query either.
        if pk is not None and not self.visible.filter(pk=pk).exists():
            raise forms.ValidationError(_("There is no asset with id %(pk)s."), params={"pk": pk})
        return pk

    def clean(self) -> dict[str, Any]:
        data = super().clean()
        if not self.errors and not ((data.get("text") or "").strip() or data.get("image") or data.get("asset")):
            raise forms.ValidationError(_("Give text, an image or an asset to search with."))
        return data

    def get_query(self) -> Query:
        """The :class:`~assetsearch.search.Query` this form describes (call after ``is_valid()``)."""
        data = self.cleaned_data
        image = data.get("image")
        if image is not None:
            image.seek(0)
        return Query.from_data(
            {
                **{name: data.get(name) for name in ("text_weight", "image_weight", "asset_weight", "negative_weight", "hybrid", "rerank")},
                "limit": data.get("limit") or ADMIN_RESULTS,
                "text": (data.get("text") or "").strip(),
                "image": image,
                "asset_id": data.get("asset"),
                "negative": split_terms(data.get("negative") or ""),
                "filters": {"tags": split_terms(data.get("tags") or ""), "mime_types": data.get("mime_types"), "status": data.get("status")},
                "visible": self.visible,
            }
        )


class ModerationQueryForm(forms.Form):
    """An ad-hoc moderation query: free text scored like a concept."""

    text = forms.CharField(
        label=_("Concept"), max_length=MAX_QUERY_CHARS,
        widget=forms.TextInput(attrs={"size": 48, "placeholder": _("e.g. a violent scene")}),
        help_text=_("What to look for; several phrases separated by commas are one concept."),
    )
    counter_prompts = forms.CharField(
        label=_("Not to be confused with"), required=False, max_length=MAX_QUERY_CHARS,
        widget=forms.TextInput(attrs={"size": 48}),
        help_text=_("Look-alikes, separated by commas; empty uses the model's labels nearest the concept, or the neutral prompts."),
    )
    limit = forms.IntegerField(label=_("Results"), min_value=1, initial=ADMIN_RESULTS, required=False, widget=forms.NumberInput(attrs={"style": "width: 5em"}))

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        set_max(self.fields["limit"], app_settings.MAX_PAGE_SIZE)

    def get_prompts(self) -> tuple[list[str], list[str]]:
        """The concept's prompts and counter-prompts (call after ``is_valid()``)."""
        return split_terms(self.cleaned_data["text"]), split_terms(self.cleaned_data.get("counter_prompts") or "")



class ModerationConceptForm(forms.ModelForm):
    """A moderation concept as people edit it, in the Django admin and the Wagtail admin.

    The model's own validation (a unique name, a threshold from 0 to 1, the
    length of each prompt); saving an enabled concept re-scores the
    catalogue (the ``post_save`` signal).
    """

    class Meta:
        model = ModerationConcept
        fields = ["name", "prompts", "counter_prompts", "threshold", "action", "enabled"]
