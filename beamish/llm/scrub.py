"""Scrubbing secrets out of text: error messages that leave ``beamish.llm``, and log lines.

Sans-I/O. Upstream servers echo what they were sent, in part or whole, in their error
bodies, and people paste keys across lines; so matching the exact key is not enough. A
``Scrubber`` masks:

* any run of at least ``MIN_FRAGMENT`` (8) characters of a secret it knows, even when
  whitespace or line breaks split it (the whole span is masked, whitespace included);
* provider-looking keys it does not know: ``sk-...`` and ``sk-ant-...`` tokens;
* bearer credentials: ``Bearer <token>``;
* long high-entropy tokens: 32 or more characters of base64/base64url alphabet mixing
  upper case, lower case and digits, with at least ``ENTROPY_BITS`` (4.0) bits per character
  (lower-case hex ids, such as request ids, are left alone).

A secret found whole becomes the form it was registered with (an ``ApiKey``'s
``sk-...wxyz``, so an operator can tell which key leaked); any other masked span becomes
``****`` (``MASK``). ``SECRETS`` is the process's scrubber: every
``ApiKey`` made registers its value there (``remember_secret``), so the log formatter
(``ScrubbingFormatter``) knows every configured key without being handed one.
"""

from __future__ import annotations

import logging
import math
import re
import threading
from collections import Counter
from collections.abc import Iterable

MIN_FRAGMENT = 8
"""The shortest run of a known secret that is masked."""

ENTROPY_BITS = 4.0
"""The bits per character above which a long unknown token counts as a secret."""

MASK = "****"
"""What a masked span is replaced with."""

_KEY_LIKE = re.compile(r"\b(?:sk-ant-|sk-)[A-Za-z0-9_\-]{8,}")
_BEARER = re.compile(r"(?i)\b(bearer)(\s+)[A-Za-z0-9._~+/=\-]{8,}")
_LONG_TOKEN = re.compile(r"[A-Za-z0-9_\-+/=]{32,}")


class Scrubber:
    """Masks known secrets (and fragments of them) and anything key-like in text."""

    def __init__(self, secrets: Iterable[str] = ()) -> None:
        """Know ``secrets`` from the start; more can be added with ``add``."""
        self._grams: set[str] = set()
        self._whole: dict[str, str] = {}
        self._lock = threading.Lock()  # log records are formatted on any thread
        for secret in secrets:
            self.add(secret)

    def add(self, secret: str, shown: str = MASK) -> None:
        """Know ``secret``: found whole it becomes ``shown``, a fragment of it ``MASK``.

        Whitespace in ``secret`` is ignored; a secret shorter than ``MIN_FRAGMENT`` is
        masked only when found whole.
        """
        compact = "".join(secret.split())
        grams = {compact[i:i + MIN_FRAGMENT] for i in range(len(compact) - MIN_FRAGMENT + 1)}
        with self._lock:
            self._grams |= grams
            if compact:
                self._whole[compact] = shown

    def scrub(self, text: str) -> str:
        """``text`` with every known fragment and every key-like token masked."""
        for secret, shown in list(self._whole.items()):
            if secret in text:
                text = text.replace(secret, shown)
        text = self._mask_known(text)
        text = _KEY_LIKE.sub(MASK, text)
        text = _BEARER.sub(lambda m: f"{m.group(1)}{m.group(2)}{MASK}", text)
        return _LONG_TOKEN.sub(_mask_if_random, text)

    def knows_part_of(self, text: str) -> bool:
        """Whether ``text`` holds a known secret, or a fragment of one, even split by spaces."""
        return self._mask_known(text) != text or any(s in text for s in list(self._whole))

    def _mask_known(self, text: str) -> str:
        grams = self._grams
        if not grams or len(text) < MIN_FRAGMENT:
            return text
        # Compact the text (drop whitespace), remembering where each kept character was, so
        # a secret split by a line break still matches; then mask the original spans.
        where = [i for i, char in enumerate(text) if not char.isspace()]
        compact = "".join(text[i] for i in where)
        covered = [False] * len(compact)
        for start in range(len(compact) - MIN_FRAGMENT + 1):
            if compact[start:start + MIN_FRAGMENT] in grams:
                covered[start:start + MIN_FRAGMENT] = [True] * MIN_FRAGMENT
        if not any(covered):
            return text
        return _replace_spans(text, where, covered)


def _replace_spans(text: str, where: list[int], covered: list[bool]) -> str:
    parts: list[str] = []
    last = 0
    index = 0
    while index < len(covered):
        if not covered[index]:
            index += 1
            continue
        end = index
        while end + 1 < len(covered) and covered[end + 1]:
            end += 1
        parts.append(text[last:where[index]])
        parts.append(MASK)
        last = where[end] + 1
        index = end + 1
    parts.append(text[last:])
    return "".join(parts)


def _mask_if_random(match: re.Match[str]) -> str:
    token = match.group(0)
    mixed = (any(c.isupper() for c in token) and any(c.islower() for c in token)
             and any(c.isdigit() for c in token))
    return MASK if mixed and _entropy(token) >= ENTROPY_BITS else token


def _entropy(token: str) -> float:
    counts = Counter(token)
    return -sum(n / len(token) * math.log2(n / len(token)) for n in counts.values())


SECRETS = Scrubber()
"""The process's scrubber: it knows every ``ApiKey`` made in this process."""


def remember_secret(secret: str, shown: str = MASK) -> None:
    """Make ``SECRETS`` (and so every scrubbed error and log line) mask ``secret``."""
    SECRETS.add(secret, shown)


def scrub(text: str) -> str:
    """``text`` scrubbed by the process's scrubber (``SECRETS``)."""
    return SECRETS.scrub(text)


class ScrubbingFormatter(logging.Formatter):
    """A ``logging.Formatter`` whose output (message, traceback and all) is scrubbed."""

    def format(self, record: logging.LogRecord) -> str:
        """The record as the base formatter writes it, with secrets masked."""
        return scrub(super().format(record))


__all__ = ["ENTROPY_BITS", "MASK", "MIN_FRAGMENT", "SECRETS", "Scrubber",
           "ScrubbingFormatter", "remember_secret", "scrub"]
