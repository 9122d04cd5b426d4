"""The names the API accepts in its paths and bodies, in one place below every user of them.

``NAME_PATTERN`` is the rule for task types, tiers, session ids and the user ids the command
line issues tokens for: 1 to 128 of letters, digits and ``_.:@-``, starting with a letter or
digit. Every character is safe in a URL path segment, so a user id that passes is one the
HTTP API can address (``/api/users/{user_id}/...``). The HTTP API (``beamish.server.api``)
and the CLI (``beamish token create``) import it from here, so they cannot disagree.
"""

from __future__ import annotations

import re

NAME_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.:@-]{0,127}$"
"""Task types, tiers, session ids, CLI user ids: 1 to 128 of letters, digits and ``_.:@-``."""

NAME_RULE = "1 to 128 of letters, digits and _.:@- starting with a letter or digit"
"""``NAME_PATTERN`` in words, for error messages."""

_NAME = re.compile(NAME_PATTERN)


def is_name(value: str) -> bool:
    """Whether ``value`` matches ``NAME_PATTERN`` (a trailing newline does not)."""
    return _NAME.fullmatch(value) is not None and not value.endswith("\n")


__all__ = ["NAME_PATTERN", "NAME_RULE", "is_name"]
