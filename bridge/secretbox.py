"""Encryption of secrets the bridge must keep at rest (broker session tokens).

Fernet (AES-128-CBC with an HMAC-SHA256, from the ``cryptography`` package) under one key:
``BRIDGE_SECRET_KEY`` when set (required when several hosts share a PostgreSQL journal),
else ``<DATA_DIR>/secret.key``, created on first start with mode 0600. A copy of the
database alone (a backup, a dump) therefore does not carry usable tokens.
"""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import os
from pathlib import Path

from cryptography.fernet import Fernet, InvalidToken

KEY_FILE = "secret.key"


class SecretBoxError(Exception):
    """A sealed value could not be opened (wrong key, or tampered with)."""


class SecretBox:
    def __init__(self, key: bytes) -> None:
        self._fernet = Fernet(key)
        self._key = key

    def derive(self, purpose: str) -> bytes:
        """A key for another use (signing the dashboard's cookie), so one secret file
        serves all, while a value made for one purpose is useless for another."""
        return hmac.new(self._key, purpose.encode(), hashlib.sha256).digest()

    @classmethod
    def for_settings(cls, configured_key: str, data_dir: Path) -> SecretBox:
        """Use the configured key, else the data folder's key file (made if missing)."""
        if configured_key:
            return cls(configured_key.encode())
        return cls(_key_file(data_dir / KEY_FILE))

    def seal(self, text: str) -> str:
        return self._fernet.encrypt(text.encode()).decode("ascii")

    def open(self, sealed: str) -> str:
        try:
            return self._fernet.decrypt(sealed.encode("ascii")).decode()
        except (InvalidToken, ValueError) as exc:
            raise SecretBoxError("sealed value cannot be opened with this key") from exc


def _key_file(path: Path) -> bytes:
    path.parent.mkdir(parents=True, exist_ok=True)
    key = Fernet.generate_key()
    # O_EXCL: when several workers start at once, one writes the key and the others read it.
    with contextlib.suppress(FileExistsError):
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as handle:
            handle.write(key)
        return key
    for _ in range(50):
        existing = path.read_bytes().strip()
        if existing:
            return existing
        os.sched_yield()
    raise SecretBoxError(f"{path} is empty: delete it to have a new key made")
