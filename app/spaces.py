"""The dashboard as a Hugging Face Space: anyone browses, only the owner drives.

Spaces mode is on when the Spaces runtime set SPACE_ID (`SpacesSettings.from_env`).

SYSTEM. Gradio mounts the real Hugging Face OAuth routes only when SYSTEM=spaces
(gradio.utils.get_space); otherwise it mounts a mock login that signs every visitor in as the
owner of whatever HF token the environment holds (gradio/oauth.py `_add_mocked_oauth_routes`).
Docker Spaces do not set SYSTEM, so `enter_spaces_mode` sets it when SPACE_ID is set, before the
Blocks are built, and never otherwise (the same image run elsewhere keeps the plain token mode).

Who is the owner (`SpaceAccess.is_owner`), decided inside each write handler, never by hiding a
button (a private event is still an HTTP endpoint):
- the Hugging Face login of the caller's session (gr.LoginButton; Gradio keeps the OAuth profile
  in its signed session cookie and reads it with `gradio.oauth._get_valid_oauth_info_from_session`,
  the same reader that injects `gr.OAuthProfile`) whose user name is SPACE_AUTHOR_NAME;
- for a Space owned by an org, a login whose `whoami` lists that org with the write or admin role
  (README front matter asks for the read-memberships scope; answers cached 5 minutes, as trackio's
  `check_oauth_token_has_write_access` does, because whoami is rate-limited);
- the admin token (the Space secret VERL_STUDIO_ADMIN_TOKEN): the WriteGuard's operator token
  (app.auth), typed once per browser session or sent as a header, compared in constant time.
`serve` builds that WriteGuard with `SpaceAccess.is_owner` as its owner check, so every write
handler's one `ctx.guard.require(request)` covers the Space too. Everyone else may browse, and start a "try it" run while the owner has that switched on
(engine.spaces.SpaceRules: the demo recipe, capped steps, one run at a time).
"""

from __future__ import annotations

import hashlib
import logging
import os
import threading
import time
from collections.abc import Callable, MutableMapping
from dataclasses import dataclass, field
from typing import Any

import gradio as gr

from engine.config import SpacesSettings
from engine.spaces import SpaceRules

log = logging.getLogger(__name__)

ORG_CACHE_S = 300.0
WRITE_ROLES = ("write", "admin")
PAPER = "https://arxiv.org/abs/2509.23808"


def enter_spaces_mode(environ: MutableMapping[str, str] | None = None) -> SpacesSettings:
    """Read the Spaces settings; when SPACE_ID is set, set SYSTEM=spaces (real OAuth in Gradio).

    Call before building the Blocks. Raises engine.config.ConfigError for a malformed variable."""
    environ = os.environ if environ is None else environ
    settings = SpacesSettings.from_env(dict(environ))
    if settings.on_spaces:
        environ["SYSTEM"] = "spaces"
        if not settings.owner:
            log.warning("SPACE_AUTHOR_NAME is not set: only the admin token can act as the owner")
    return settings


def _hub_whoami(token: str) -> dict:
    from huggingface_hub import whoami

    return whoami(token=token)


def session_login(request: gr.Request | None) -> tuple[str | None, str | None]:
    """(Hugging Face user name, OAuth access token) of the caller's login session, or Nones."""
    from gradio import oauth
    from gradio.helpers import _session_from_request

    try:
        info = oauth._get_valid_oauth_info_from_session(_session_from_request(request))
    except Exception:  # a session cookie Gradio cannot read is no login
        return None, None
    if not info:
        return None, None
    user = (info.get("userinfo") or {}).get("preferred_username")
    return (user or None), info.get("access_token")


@dataclass(eq=False)
class SpaceAccess:
    """Owner checks and run rules of one Space app (per app; nothing module-level)."""

    settings: SpacesSettings
    rules: SpaceRules
    whoami: Callable[[str], dict] = _hub_whoami
    _org_cache: dict[str, tuple[float, bool]] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    @classmethod
    def from_settings(cls, settings: SpacesSettings, **kw: Any) -> SpaceAccess:
        return cls(settings=settings, rules=SpaceRules.from_settings(settings), **kw)

    def _org_write(self, token: str) -> bool:
        key = hashlib.sha256(token.encode()).hexdigest()
        now = time.monotonic()
        with self._lock:
            cached = self._org_cache.get(key)
        if cached and now - cached[0] < ORG_CACHE_S:
            return cached[1]
        try:
            orgs = self.whoami(token).get("orgs") or []
        except Exception as exc:  # the Hub unreachable or the token revoked: not the owner
            log.warning("whoami failed while checking org membership: %s", exc)
            return False
        allowed = any(
            o.get("name") == self.settings.owner and o.get("roleInOrg") in WRITE_ROLES for o in orgs
        )
        with self._lock:
            self._org_cache[key] = (now, allowed)
        return allowed

    def is_owner(self, request: gr.Request | None) -> bool:
        """Whether the caller's Hugging Face login is the owner or has write in the owning org.
        (The admin token is the WriteGuard's: app.auth.)"""
        user, token = session_login(request)
        if not user or not self.settings.owner:
            return False
        if user == self.settings.owner:
            return True
        return bool(token) and self._org_write(token)

    def refusal(self) -> str:
        """The one line a refused caller sees."""
        return (
            f"Only the owner of this Space can do this: sign in with Hugging Face as "
            f"{self.settings.owner or 'the owner'}, or enter the admin token."
        )


def about_markdown(settings: SpacesSettings) -> str:
    """The Space's header: what VERL is, the paper, and who may launch."""
    owner = settings.owner or "the owner"
    return (
        "**VERL** (*Velocity-Exploiting Rank Learning*) trains reasoning models with GRPO and adds "
        "a bonus to each response's advantage from how the effective rank of its hidden states "
        f"moves (ER, its velocity ERV, its acceleration ERA) — [arXiv:2509.23808]({PAPER}). "
        "Browse the seeded runs, traces and analysis freely; launching, cancelling and deleting "
        f"runs needs the Space owner's Hugging Face login ({owner}) or the admin token."
    )


def try_it_open(ctx: Any) -> bool:
    """Whether visitors may press Run the demo now (a Space whose owner switched try-it on)."""
    return ctx.space is not None and ctx.space.rules.try_it


def owner_bar(ctx: Any) -> None:
    """The Space's header: about text, the Hugging Face login, and the owner's "try it" switch."""
    space: SpaceAccess = ctx.space
    cap = space.settings.try_it_max_steps
    with gr.Row(equal_height=True):
        gr.Markdown(about_markdown(space.settings), elem_id="space-about")
        gr.LoginButton(elem_id="space-login", scale=0, min_width=220)
    try_it = gr.Checkbox(
        value=space.rules.try_it,
        label=f"Owner: let visitors press Run the demo (demo recipe, at most {cap} steps, "
        "one run at a time)",
        elem_id="space-try-it",
    )

    def set_try_it(on: bool, request: gr.Request = None) -> bool:
        ctx.guard.require(request)
        space.rules.try_it = bool(on)
        log.info("try-it runs %s", "on" if on else "off")
        return space.rules.try_it

    changed = try_it.input(set_try_it, inputs=[try_it], outputs=[try_it], api_visibility="private")
    changed.failure(lambda: space.rules.try_it, outputs=[try_it], api_visibility="private")


def submit(ctx: Any, request: gr.Request | None, cfg: Any, *, demo: bool = False, **kw: Any) -> int:
    """Queue a run from a handler (ConfigError from the submit-time check passes through).

    On a Space: the owner's config (ctx.guard allows the caller), one run at a time; for a
    visitor pressing Run the demo (`demo`), the capped try-it run while the owner allows it;
    anything else refused (gr.Error, one line). Elsewhere: the run service with ctx.policy."""
    from engine.runs import service

    if ctx.space is None:
        return service.submit(ctx.store, cfg, policy=ctx.policy, **kw)
    owner = ctx.guard.allows(request)
    if not owner and not demo:
        ctx.guard.require(request)
    try:
        return ctx.space.rules.submit(ctx.store, cfg, owner=owner, policy=ctx.policy, **kw)
    except service.RunError as exc:
        raise gr.Error(f"{exc}.", print_exception=False) from None
