from __future__ import annotations

import pytest

from deploylearn.domain.redaction import REDACTED, SecretCipher, is_secret_key, protect, scrub_text


@pytest.mark.parametrize(
    "key",
    [
        "password",
        "db_password",
        "dbPassword",
        "api_token",
        "apiKey",
        "client-secret",
        "credentials",
        "encryption_key",
    ],
)
def test_secret_keys(key: str) -> None:
    assert is_secret_key(key)


@pytest.mark.parametrize("key", ["keyboard", "timeout", "tokenizer", "backup_enabled", "monkey"])
def test_ordinary_keys(key: str) -> None:
    assert not is_secret_key(key)


def test_protect_redacts_nested_and_free_text() -> None:
    config = {"db": {"password": "hunter2"}, "dsn": "host=a password=hunter2", "n": 3}
    assert protect(config) == {
        "db": {"password": REDACTED},
        "dsn": f"host=a password={REDACTED}",
        "n": 3,
    }


def test_scrub_text_handles_quotes_and_bearer() -> None:
    text = 'login token: "s3 cr3t" then Authorization: Bearer abcdefghijk'
    scrubbed = scrub_text(text)
    assert "s3 cr3t" not in scrubbed and "abcdefghijk" not in scrubbed


def test_encryption_round_trip_and_wrong_key() -> None:
    salt = b"0123456789abcdef"
    cipher = SecretCipher("correct horse battery staple", salt)
    protected = protect({"api_token": "tok-123"}, cipher)
    token = protected["api_token"]
    assert token.startswith("enc:v1:") and "tok-123" not in token
    assert cipher.decrypt(token) == "tok-123"
    with pytest.raises(ValueError, match="wrong"):
        SecretCipher("another key", salt).decrypt(token)
    with pytest.raises(ValueError, match="wrong"):  # same passphrase, another store's salt
        SecretCipher("correct horse battery staple", b"fedcba9876543210").decrypt(token)
    assert protect(protected, cipher) == protected  # already encrypted: left alone
