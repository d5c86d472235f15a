"""Serializer building blocks shared by every app's API."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from functools import cache
from typing import Any

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


class BoundedDateTimeField(serializers.DateTimeField):
    """An ISO 8601 date-time input within the supported range."""

    default_validators = [within_supported_range]


class BoundedDateField(serializers.DateField):
    """An ISO 8601 date input within the supported range."""

    default_validators = [within_supported_range]


class StrictSerializer(serializers.Serializer):
    """An input serializer that rejects fields it does not know (typos fail loudly)."""

    def to_internal_value(self, data: Any) -> Any:
        if not isinstance(data, dict):
            raise serializers.ValidationError({"non_field_errors": ["Expected a JSON object."]})
        unknown = sorted(set(data) - set(self.fields))
        if unknown:
            raise serializers.ValidationError({name: ["Unknown field."] for name in unknown})
        return super().to_internal_value(data)


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
    """The one error shape (tracker/errors.py), for documenting error responses."""

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
