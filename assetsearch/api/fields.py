"""The API's input fields: strict about JSON types, and uploads checked before anything is saved.

JSON bodies are typed strictly: a weight sent as ``"0.5"`` or a tag list sent
as ``"red"`` is an error, not a guess. Form data (multipart uploads, query
strings) carries only strings, so there numbers and booleans are parsed
from their text as usual.
"""

from __future__ import annotations

import json
import os
import re
from typing import Any

from django.core.files.uploadedfile import UploadedFile
from django.core.validators import RegexValidator
from drf_spectacular.utils import extend_schema_field
from PIL import Image
from rest_framework import serializers
from rest_framework.utils import html

from ..conf import app_settings
from ..constants import MAX_FILE_NAME, MAX_PROMPT_LENGTH, MAX_PROMPTS, MAX_TAG_LENGTH, MAX_TAGS
from ..encoders import get_encoder
from ..images import InvalidImage, decode_for_model, decode_search_image
from .exceptions import PayloadTooLarge


# Strict fields ------------------------------------------------------------


def is_form_input(field: serializers.Field) -> bool:
    """True when the field's input is form data or a query string (all values are text),
    not JSON: a whole JSON body, or a JSON part of a multipart form (:class:`JSONPartMixin`)."""
    node: Any = field
    while node is not None:
        if getattr(node, "read_from_json_part", False):
            return False
        node = node.parent
    return html.is_html_input(getattr(field.root, "initial_data", None))


class JSONPartMixin:
    """A nested serializer that, in a multipart form, also takes its object as one JSON part
    (``filters`` = ``{"tags": ["red"]}``, OpenAPI's encoding of an object property) besides
    dotted fields (``filters.tags``); the JSON part's values are typed strictly, as in a JSON body."""

    read_from_json_part = False

    def get_value(self, dictionary: Any) -> Any:
        if html.is_html_input(dictionary) and self.field_name in dictionary:  # type: ignore[attr-defined]
            self.read_from_json_part = True
            text = dictionary[self.field_name]  # type: ignore[attr-defined]
            try:
                return json.loads(text)
            except (TypeError, ValueError):
                return text  # not JSON: refused as "expected a dictionary", under this field's name
        return super().get_value(dictionary)  # type: ignore[misc]


# Something besides whitespace, and no NUL (DRF refuses those too): the schema states it as a pattern.
NON_BLANK_PATTERN = r"\A[^\x00]*[^\s\x00][^\x00]*\Z"
NON_BLANK = RegexValidator(NON_BLANK_PATTERN, message="This field may not be blank.", code="blank")
NON_BLANK_QUERY = RegexValidator(NON_BLANK_PATTERN, message="The query text is empty.", code="empty_query")
INTEGER_TEXT = re.compile(r"-?[0-9]+")
NO_NUL = RegexValidator(r"\A[^\x00]+\Z", message="Null characters are not allowed.", code="null_characters_not_allowed")


class StrictCharField(serializers.CharField):
    """A string, never a number or a list; unless ``allow_blank``, not blank or whitespace only (also in the schema)."""

    default_error_messages = {"invalid": "Expected a string, got {type}."}

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.validators.append(NO_NUL if self.allow_blank else NON_BLANK)

    def to_internal_value(self, data: Any) -> str:
        if not isinstance(data, str):
            self.fail("invalid", type=type(data).__name__)
        return super().to_internal_value(data)


class QueryTextField(StrictCharField):
    """Words to search with: required, and a blank one is the ``empty_query`` error."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(allow_blank=False, **kwargs)

    def fail(self, key: str, **kwargs: Any) -> None:
        if key == "blank":
            raise serializers.ValidationError("The query text is empty.", code="empty_query")
        super().fail(key, **kwargs)



class FormNullMixin:
    """A nullable number takes the text ``null`` from form data as null (as OpenAPI serializes it there)."""

    def run_validation(self, data: Any = serializers.empty) -> Any:
        if data == "null" and self.allow_null and is_form_input(self):  # type: ignore[attr-defined, arg-type]
            data = None
        return super().run_validation(data)  # type: ignore[misc]


class StrictIntegerField(FormNullMixin, serializers.IntegerField):
    """An integer: a JSON integer, or in form data its decimal digits (not ``1.0``, ``1e3`` or `` 1``)."""

    default_error_messages = {"wrong_type": "Expected an integer, got {type}."}

    def to_internal_value(self, data: Any) -> int:
        if isinstance(data, bool) or (isinstance(data, str) and not is_form_input(self)) or isinstance(data, float):
            self.fail("wrong_type", type=type(data).__name__)
        if isinstance(data, str) and not INTEGER_TEXT.fullmatch(data):
            self.fail("invalid")
        return super().to_internal_value(data)


class StrictFloatField(FormNullMixin, serializers.FloatField):
    default_error_messages = {"wrong_type": "Expected a number, got {type}."}

    def to_internal_value(self, data: Any) -> float:
        if isinstance(data, bool) or (isinstance(data, str) and not is_form_input(self)):
            self.fail("wrong_type", type=type(data).__name__)
        return super().to_internal_value(data)


class StrictBooleanField(serializers.BooleanField):
    """``true`` or ``false``: a JSON boolean, or in form data the text ``true``/``false``
    (as OpenAPI serializes a boolean there), never ``1``, ``yes`` or ``on``."""

    default_error_messages = {"wrong_type": "Expected true or false, got {type}."}
    FORM_VALUES = {"true": True, "false": False}

    def to_internal_value(self, data: Any) -> bool:
        if isinstance(data, bool):  # JSON, or DRF's default for a boolean missing from a form
            return data
        if is_form_input(self):
            if data not in self.FORM_VALUES:
                self.fail("invalid")
            return self.FORM_VALUES[data]
        self.fail("wrong_type", type=type(data).__name__)


@extend_schema_field({"type": "number", "format": "double", "nullable": True})
class FiniteFloatField(serializers.FloatField):
    """Output only: NaN and infinities become null (JSON has no such numbers)."""

    def to_representation(self, value: Any) -> float | None:
        value = float(value)
        return value if value == value and abs(value) != float("inf") else None


class PhraseListField(serializers.ListField):
    """A list of short phrases: stripped, non-empty, of bounded length and count, duplicates dropped.

    Subclasses set the bounds: ``phrase_length`` characters, ``max_phrases`` phrases.
    """

    phrase_length: int
    max_phrases: int

    def __init__(self, **kwargs: Any) -> None:
        kwargs.setdefault("child", StrictCharField(max_length=self.phrase_length))
        kwargs.setdefault("max_length", self.max_phrases)
        super().__init__(**kwargs)

    def to_internal_value(self, data: Any) -> list[str]:
        phrases = super().to_internal_value(data)
        # Counted as sent: dropping duplicates must not let 101 copies of a tag pass a limit of 100.
        if self.max_length is not None and len(phrases) > self.max_length:
            self.fail("max_length", max_length=self.max_length)
        return list(dict.fromkeys(phrases))


class TagListField(PhraseListField):
    phrase_length, max_phrases = MAX_TAG_LENGTH, MAX_TAGS


class PromptListField(PhraseListField):
    phrase_length, max_phrases = MAX_PROMPT_LENGTH, MAX_PROMPTS


# Uploaded images ----------------------------------------------------------


class ImageUploadField(serializers.FileField):
    """An uploaded image, checked in full before anything is saved.

    Over ``MAX_UPLOAD_BYTES``: 413. Not an image, an unsupported format, over
    ``MAX_IMAGE_PIXELS`` (checked from the header, before decoding) or
    truncated: 400 ``invalid_image``. With ``decode=True`` the value is the
    decoded image (what search embeds), else the file.
    """

    def __init__(self, *, decode: bool = False, **kwargs: Any) -> None:
        self.decode = decode
        kwargs.setdefault("allow_empty_file", False)
        kwargs.setdefault("use_url", False)
        super().__init__(**kwargs)

    def to_internal_value(self, data: Any) -> UploadedFile | Image.Image:
        file = super().to_internal_value(data)
        limit = app_settings.MAX_UPLOAD_BYTES
        if file.size > limit:
            raise PayloadTooLarge(f"The file is {file.size:,} bytes; the limit is {limit:,} bytes.")
        try:
            image = (decode_search_image if self.decode else decode_for_model)(file, get_encoder().image_size)
        except InvalidImage as exc:
            raise serializers.ValidationError(str(exc), code="invalid_image") from exc
        finally:
            file.seek(0)
        if self.decode:
            return image
        stem, ext = os.path.splitext(os.path.basename(file.name))
        file.name = (stem[:MAX_FILE_NAME] or "image") + ext[:10]
        return file
