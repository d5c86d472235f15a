"""Encryption at rest for personal data (player email), with Fernet from `cryptography`.

Values are stored as Fernet tokens; a keyed digest beside them keeps lookups and the
uniqueness check possible without decrypting every row.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from functools import cache

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from django.conf import settings
from django.db import models


def _derived_key(secret: str) -> str:
    return base64.urlsafe_b64encode(hashlib.sha256(("field-encryption:" + secret).encode()).digest()).decode()


def _keys() -> tuple[str, ...]:
    """Newest first: FIELD_ENCRYPTION_KEYS, then the keys derived from SECRET_KEY and its
    fallbacks, so values written before a rotation still read until `rotate_email_key`
    has rewritten them under the first key."""
    secrets = [settings.SECRET_KEY, *settings.SECRET_KEY_FALLBACKS]
    return (*settings.FIELD_ENCRYPTION_KEYS, *(_derived_key(secret) for secret in secrets))


def _fernet() -> MultiFernet:
    return _fernet_of(_keys())


@cache
def _fernet_of(keys: tuple[str, ...]) -> MultiFernet:
    return MultiFernet([Fernet(key) for key in keys])


def encrypt(value: str) -> str:
    return _fernet().encrypt(value.encode()).decode()


def decrypt(token: str) -> str:
    return _fernet().decrypt(token.encode()).decode()


def digest(value: str) -> str:
    """A stable keyed hash of a normalised value, for lookups of encrypted columns."""
    key = hashlib.sha256(("field-digest:" + settings.SECRET_KEY).encode()).digest()
    return hmac.new(key, value.strip().lower().encode(), hashlib.sha256).hexdigest()


class EncryptedTextField(models.TextField):
    """A text column whose stored value is a Fernet token; Python sees plaintext."""

    def from_db_value(self, value: str | None, expression: object, connection: object) -> str | None:
        if value is None or value == "":
            return value
        try:
            return decrypt(value)
        except InvalidToken:
            # Written before encryption was enabled, or under a key no longer configured.
            return ""

    def get_prep_value(self, value: object) -> str | None:
        value = super().get_prep_value(value)
        if value is None or value == "":
            return value
        return encrypt(value)
