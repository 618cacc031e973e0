"""API keys read from the environment: checked before use, never written anywhere."""

from __future__ import annotations


def api_key_problem(secret: str) -> str | None:
    """Why a key cannot go into an HTTP header as is (never quoting the key), or None."""
    if secret != secret.strip():
        return (
            "the API key has leading or trailing whitespace (a '\\r' or '\\n' from a file "
            "saved with Windows line ends, or a copied space); export it stripped"
        )
    if not secret.isprintable() or not secret.isascii():
        return "the API key holds control or non-ASCII characters; export it as issued"
    return None
