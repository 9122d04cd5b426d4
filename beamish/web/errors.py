"""The web app's errors, all :class:`WebError`::

    WebError
    ├── SignInLinkError     a sign-in link's code is malformed, badly signed, expired or used
    ├── CrossOriginError    a state-changing request came from another origin (403)
    ├── FormTooLargeError   a form's body is beyond the bound (413)
    ├── ProxyRefusedError   a page's API call the web app does not pass on (its status)
    ├── UsageRangeError     the usage page's date range is malformed or too long (400)
    └── OutputFormError     an outputs page's form or filter is not usable (400)

Each message says what was wrong and what to do; none quotes a code or a token.
"""

from __future__ import annotations


class WebError(Exception):
    """Base of the web app's errors."""


class SignInLinkError(WebError):
    """A sign-in link cannot sign anyone in (its message says why)."""


class CrossOriginError(WebError):
    """A state-changing request did not come from a page of this site."""


class FormTooLargeError(WebError):
    """A form's body is longer than the web app reads."""


class ProxyRefusedError(WebError):
    """A page's API call refused before the API sees it: ``status`` says how."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


class UsageRangeError(WebError, ValueError):
    """A date range the usage page cannot show (its message says why and what to give)."""


class OutputFormError(WebError):
    """A form or filter of the outputs pages cannot be used (its message says which field
    and why)."""


__all__ = ["CrossOriginError", "FormTooLargeError", "OutputFormError", "ProxyRefusedError",
           "SignInLinkError", "UsageRangeError", "WebError"]
