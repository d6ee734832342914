"""Who may change runs and files through the dashboard and the API: one check, in every handler.

`WriteGuard.require(request)` is the first line of every handler that changes the store or
files (launch, Run the demo, duplicate, cancel, resume, delete, save name/notes, evaluate,
upload); a hidden button is still an HTTP endpoint, so the check lives in the handler, not in
the page. When the guard holds a token (serve binds a non-loopback address, or
`--require-token`), a request is allowed when

- its session was unlocked: the operator typed the token once into the page's token box
  (`unlock`, per browser session; compared with `hmac.compare_digest`), or
- it carries the token in an `Authorization: Bearer <token>` or `X-Studio-Token` header (API
  clients: `gradio_client.Client(url, headers={"Authorization": "Bearer ..."})`).

- on a Hugging Face Space, `owner(request)` says yes: the Space owner's Hugging Face login
  (app.spaces.SpaceAccess.is_owner); the token is then the Space's admin secret, if set.

Without a token or an owner check (the loopback default) every request is allowed.
"""

from __future__ import annotations

import hmac
import secrets
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import gradio as gr

TOKEN_HEADER = "x-studio-token"
REFUSED = "This action needs the operator token: enter it in the token box at the top of the page."
MAX_SESSIONS = 10_000


def new_token() -> str:
    """A fresh random operator token (32 bytes, URL-safe)."""
    return secrets.token_urlsafe(32)


def same_token(given: str | None, expected: str) -> bool:
    """Constant-time comparison of a presented token with the operator's.

    >>> same_token("abc", "abc"), same_token("abd", "abc"), same_token(None, "abc")
    (True, False, False)
    """
    if not given:
        return False
    return hmac.compare_digest(given.encode("utf-8"), expected.encode("utf-8"))


@dataclass(eq=False)
class WriteGuard:
    """The operator token (None: not required) and the browser sessions that presented it."""

    token: str | None = None
    owner: Callable[[Any], bool] | None = None  # a Space's owner login (app.spaces)
    refused: str = REFUSED
    _sessions: set[str] = field(default_factory=set)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def required(self) -> bool:
        return self.token is not None or self.owner is not None

    def unlock(self, given: str, request: gr.Request | None) -> bool:
        """Unlock this browser session when `given` is the token; False otherwise."""
        session = getattr(request, "session_hash", None)
        if self.token is None or not session or not same_token(given.strip(), self.token):
            return not self.required
        with self._lock:
            if len(self._sessions) >= MAX_SESSIONS:
                self._sessions.clear()
            self._sessions.add(session)
        return True

    def forget(self, request: gr.Request | None) -> None:
        """Lock the session again (the page was closed)."""
        with self._lock:
            self._sessions.discard(getattr(request, "session_hash", None))

    def allows(self, request: gr.Request | None) -> bool:
        """Whether `request` may change runs and files (see the module docstring)."""
        if not self.required:
            return True
        if request is None:
            return False
        if self.token is not None and same_token(_header_token(request), self.token):
            return True
        if self.owner is not None and self.owner(request):
            return True
        with self._lock:
            return getattr(request, "session_hash", None) in self._sessions

    def require(self, request: gr.Request | None) -> None:
        """Raise the page's one-line error unless `request` may write."""
        if not self.allows(request):
            raise gr.Error(self.refused, print_exception=False)


def _header_token(request: Any) -> str | None:
    headers = getattr(request, "headers", None) or {}
    auth = headers.get("authorization") or ""
    if auth.lower().startswith("bearer "):
        return auth[7:].strip()
    return headers.get(TOKEN_HEADER)
