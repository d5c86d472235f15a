"""Serializer building blocks shared by every app's API."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from functools import cache
from typing import Any, ClassVar

from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

# Every date and time the API accepts lies in [EARLIEST, LATEST) (docs/api.md, "Errors").
# Wide enough for any real unlock, session or history query (Steam's unlock times count
# from the Unix epoch), narrow enough that adding a day or a session length, or moving to
# another offset, never leaves the calendar Python and PostgreSQL share (years 1-9999).
EARLIEST = datetime(1970, 1, 1, tzinfo=UTC)
LATEST = datetime(2100, 1, 1, tzinfo=UTC)


def within_supported_range(value: date | datetime) -> None:
    """The validator of every date input: `value` must lie in [EARLIEST, LATEST)."""
    moment = value if isinstance(value, datetime) else datetime.combine(value, time.min, tzinfo=UTC)
    if not EARLIEST <= moment < LATEST:
        last_day = (LATEST - timedelta(days=1)).date()
        raise serializers.ValidationError(f"Must be between {EARLIEST.date()} and {last_day} (UTC).")


# The years of [EARLIEST, LATEST), 1970 to 2099, as the schema's pattern: a client (and
# Schemathesis) learns the range from the schema instead of from a 400.
SUPPORTED_YEARS = r"^(19[7-9][0-9]|20[0-9][0-9])-"

NOT_ASCII = "Write dates and times in ASCII digits, as ISO 8601 does (2026-01-31T12:00:00Z)."


def ascii_text(value: Any) -> None:
    """Refuse a date or time written with anything but ASCII: Python reads any script's
    digits as numbers (``int("٢٠٢٦")`` is 2026) and Django's date parsing with it, so
    ``２０２６-01-01`` would pass for a date that no client of ours writes and no log or
    export downstream expects."""
    if isinstance(value, str) and not value.isascii():
        raise serializers.ValidationError(NOT_ASCII, code="invalid")


@extend_schema_field({"type": "string", "format": "date-time", "pattern": SUPPORTED_YEARS})
class BoundedDateTimeField(serializers.DateTimeField):
    """An ISO 8601 date-time input within the supported range, in ASCII."""

    default_validators = [within_supported_range]

    def to_internal_value(self, value: Any) -> datetime:
        ascii_text(value)
        return super().to_internal_value(value)


@extend_schema_field({"type": "string", "format": "date", "pattern": SUPPORTED_YEARS})
class BoundedDateField(serializers.DateField):
    """An ISO 8601 date input within the supported range, in ASCII."""

    default_validators = [within_supported_range]

    def to_internal_value(self, value: Any) -> date:
        ascii_text(value)
        return super().to_internal_value(value)


# A game named by its id or its slug (tracker.selectors.get_game).
GAME_REF = r"^[A-Za-z0-9_-]{1,64}$"


class GameRefField(serializers.RegexField):
    """A game named by its id or its slug: anything else names no game, and is bad input."""

    def __init__(self, **kwargs: Any) -> None:
        kwargs.setdefault("help_text", "The game's id or slug.")
        super().__init__(GAME_REF, max_length=64, **kwargs)


class StrictSerializer(serializers.Serializer):
    """An input serializer that rejects fields it does not know (typos fail loudly)."""

    # The shapes a body may take when it names a thing one of several ways (an achievement
    # by id or by api_name): each shape's name and the fields it gives, none of the other
    # shapes' fields. Checked by `validate`, and each shape is a schema component of its own
    # under the body's `oneOf` (infra/schema.py), so a generated client has a type for each.
    shapes: ClassVar[dict[str, tuple[str, ...]]] = {}
    # The field a body of no shape is blamed on, and what it is told.
    shape_error: ClassVar[tuple[str, str]] = ("", "")

    @classmethod
    def shaped_fields(cls) -> list[str]:
        return list(dict.fromkeys(name for fields in cls.shapes.values() for name in fields))

    def to_internal_value(self, data: Any) -> Any:
        if not isinstance(data, dict):
            raise serializers.ValidationError({"non_field_errors": ["Expected a JSON object."]})
        unknown = sorted(set(data) - set(self.fields))
        if unknown:
            raise serializers.ValidationError({name: ["Unknown field."] for name in unknown})
        return super().to_internal_value(data)

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        if self.shapes:
            given = {name for name in self.shaped_fields() if name in attrs}
            if given not in [set(fields) for fields in self.shapes.values()]:
                field, message = self.shape_error
                raise serializers.ValidationError({field: [message]})
        return attrs


class PageInput(StrictSerializer):
    limit = serializers.IntegerField(min_value=1, max_value=100, default=50)
    offset = serializers.IntegerField(min_value=0, max_value=1_000_000, default=0)


@cache
def validator(serializer: type[serializers.Serializer]) -> serializers.Serializer:
    """One instance per input serializer, reused: building one copies every field, most of
    what validating a small body costs. Validation keeps no state on the instance."""
    return serializer()


def validated(serializer: type[serializers.Serializer], data: Any) -> dict[str, Any]:
    try:
        return validator(serializer).run_validation(data)
    except serializers.ValidationError as error:
        # The shape `is_valid()` gives: field errors by name, the rest as non_field_errors.
        raise serializers.ValidationError(serializers.as_serializer_error(error)) from None


def parsed_body(serializer: type[serializers.Serializer], request: Any) -> dict[str, Any]:
    """The request's JSON body, validated (a 400 naming the fields otherwise)."""
    return validated(serializer, request.data)


def parsed_query(serializer: type[serializers.Serializer], request: Any) -> dict[str, Any]:
    """The request's query string, validated (a 400 naming the fields otherwise)."""
    return validated(serializer, request.query_params.dict())


class ErrorOutputSerializer(serializers.Serializer):
    """The one error shape (infra/errors.py), for documenting error responses."""

    class Error(serializers.Serializer):
        status = serializers.IntegerField()
        code = serializers.CharField()
        message = serializers.CharField()
        fields = serializers.DictField(
            child=serializers.JSONField(),
            required=False,
            help_text=(
                "The invalid input fields, each with a list of what is wrong with it; a list or an "
                "object of fields is keyed by item index or field name, down to the lists of messages."
            ),
        )

    error = Error()
