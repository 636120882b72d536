"""Tokens at rest: hashes for tokens partners present to us, encryption for tokens we present to them."""

import base64
import hashlib
import secrets

from cryptography.fernet import Fernet, InvalidToken
from django.conf import settings


def token_generate() -> str:
    """A new credentials token: 256 random bits, 43 characters of URL-safe Base64 (printable ASCII, spec §5.1).

    Never starting with "-": operators paste tokens into command lines (`ocpi_register --token ...`), where a leading
    dash reads as an option. Redrawing keeps the 256 bits uniform over the tokens allowed.
    """
    while True:
        token = secrets.token_urlsafe(32)
        if not token.startswith("-"):
            return token


def token_hash(token: str) -> str:
    """SHA-256 of a token. Our tokens carry 256 random bits, so a fast hash is enough and keeps auth cheap."""
    return hashlib.sha256(token.encode()).hexdigest()


def _fernet(key: str | None = None) -> Fernet:
    key = key if key is not None else settings.OCPI_TOKEN_ENCRYPTION_KEY
    if not key:
        # Development default: derived from the secret key, so a fresh checkout works without configuration.
        key = base64.urlsafe_b64encode(hashlib.sha256(settings.SECRET_KEY.encode()).digest()).decode()
    return Fernet(key.encode())


def token_encrypt(token: str, *, key: str | None = None) -> str:
    """Encrypt a token we present to a partner (stored in Partner.token_out_encrypted)."""
    return _fernet(key).encrypt(token.encode()).decode()


def token_decrypt(ciphertext: str, *, key: str | None = None) -> str:
    """Decrypt a token we present to a partner; raises ValueError when the key does not fit."""
    try:
        return _fernet(key).decrypt(ciphertext.encode()).decode()
    except InvalidToken as exc:
        raise ValueError("token cannot be decrypted with the configured OCPI_TOKEN_ENCRYPTION_KEY") from exc


def token_hint(token: str) -> str:
    """What operators see of a token once it was shown: its last four characters."""
    return f"…{token[-4:]}" if len(token) > 8 else "…"
