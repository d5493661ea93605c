"""Sealing secrets kept in the database (NACCS passwords during their viewing window,
webhook signing secrets): Fernet keys in a file outside the database, so a copy of the
database alone opens nothing."""

from __future__ import annotations

import os
import threading
from pathlib import Path

from cryptography.fernet import Fernet, MultiFernet

from resolvers.core.context import Services

_key_lock = threading.Lock()


def fernet(services: Services) -> MultiFernet:
    """The keys that seal issued passwords (outside the database; created on first use
    outside production). One key per line: the first seals, every line unseals, so a new key
    goes on top and the old one is deleted once the longest viewing window has passed."""
    path = Path(services.settings.naccs_key_file)
    with _key_lock:
        if not path.exists():
            if services.settings.environment == "production":
                raise RuntimeError(f"NACCS password key {path} is missing (TRADECERT_NACCS_KEY_FILE)")
            path.parent.mkdir(parents=True, exist_ok=True)
            try:
                fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
                with os.fdopen(fd, "wb") as f:
                    f.write(Fernet.generate_key())
            except FileExistsError:
                pass
        return MultiFernet([Fernet(line) for line in path.read_bytes().split() if line])
