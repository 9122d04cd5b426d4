"""The master key when none is configured: generated once, kept in a file, reused.

``BEAMISH_SECRET_KEY`` signs user tokens and encrypts provider API keys at rest. A fresh
machine has none, and ``beamish serve`` must still start (SQLite + echo provider). So when the
variable is unset, the CLI reads the key from ``BEAMISH_SECRET_KEY_FILE`` (default
``.beamish/secret_key`` in the working directory), generating a new Fernet key there on first
use with permissions 0600, and puts it in the process environment, where the token signer and
``SecretBox`` look. ``beamish token create`` in the same directory then signs tokens the server
accepts. Deployments set ``BEAMISH_SECRET_KEY`` themselves and never touch the file.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Final

from cryptography.fernet import Fernet

from beamish.auth import SECRET_KEY_ENV

KEY_FILE_ENV: Final = "BEAMISH_SECRET_KEY_FILE"
DEFAULT_KEY_FILE: Final = Path(".beamish") / "secret_key"


def key_file() -> Path:
    """Where the generated key lives."""
    return Path(os.environ.get(KEY_FILE_ENV) or DEFAULT_KEY_FILE)


def ensure_secret_key(*, create: bool = True) -> Path | None:
    """Make sure ``BEAMISH_SECRET_KEY`` is set; return the key file used, or None.

    Args:
        create: generate the file if it does not exist (else leave the variable unset).
    """
    if os.environ.get(SECRET_KEY_ENV, "").strip():
        return None
    path = key_file()
    if not path.is_file():
        if not create:
            return None
        path.parent.mkdir(parents=True, exist_ok=True)
        # O_EXCL: two processes starting at once cannot both write a different key.
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:
            pass
        else:
            with os.fdopen(fd, "wb") as out:
                out.write(Fernet.generate_key() + b"\n")
    os.environ[SECRET_KEY_ENV] = path.read_text().strip()
    return path
