"""Who may drive a Space (app.spaces): the owner's login, write role in the owning org, or the
admin token; and SYSTEM=spaces set exactly when SPACE_ID is."""

from __future__ import annotations

import gradio as gr
import pytest

from app.spaces import SpaceAccess, enter_spaces_mode
from engine.config import ConfigError, SpacesSettings


class FakeRequest:
    """What Gradio hands a handler: a request whose Starlette scope holds the session."""

    def __init__(self, session: dict | None, headers: dict | None = None):
        self.scope = {} if session is None else {"session": session}
        self.headers = headers or {}
        self.session_hash = "page-session"


def logged_in(user: str, expires_in: float = 3600) -> FakeRequest:
    import time

    info = {
        "access_token": f"tok-{user}",
        "expires_at": time.time() + expires_in,
        "userinfo": {"preferred_username": user},
    }
    return FakeRequest({"oauth_info": info})


def access(owner: str = "alice", orgs: dict | None = None) -> SpaceAccess:
    calls = []

    def whoami(token: str) -> dict:
        calls.append(token)
        return {"orgs": (orgs or {}).get(token, [])}

    a = SpaceAccess.from_settings(SpacesSettings(space_id=f"{owner}/s", owner=owner), whoami=whoami)
    a.calls = calls
    return a


def test_only_the_owners_login_is_the_owner():
    a = access()
    assert a.is_owner(logged_in("alice"))
    assert not a.is_owner(logged_in("mallory"))
    assert not a.is_owner(logged_in("Alice"))  # user names are exact
    assert not a.is_owner(logged_in("alice", expires_in=-10))  # an expired login is no login
    assert not a.is_owner(FakeRequest(None)) and not a.is_owner(None)
    assert not a.is_owner(FakeRequest({"oauth_info": {"userinfo": {}}}))


def test_write_role_in_the_owning_org_counts_and_is_cached():
    orgs = {
        "tok-bob": [{"name": "lab", "roleInOrg": "write"}],
        "tok-carol": [
            {"name": "lab", "roleInOrg": "read"},
            {"name": "other", "roleInOrg": "admin"},
        ],
        "tok-dan": [{"name": "lab", "roleInOrg": "admin"}],
    }
    a = access(owner="lab", orgs=orgs)
    assert a.is_owner(logged_in("bob")) and a.is_owner(logged_in("bob"))
    assert a.calls.count("tok-bob") == 1  # whoami is rate-limited: asked once per 5 minutes
    assert a.is_owner(logged_in("dan"))
    assert not a.is_owner(logged_in("carol"))


def test_a_failing_whoami_is_not_the_owner():
    def broken(token):
        raise OSError("hub unreachable")

    a = SpaceAccess.from_settings(SpacesSettings(space_id="lab/s", owner="lab"), whoami=broken)
    assert not a.is_owner(logged_in("bob"))


def test_the_write_guard_lets_the_owner_or_the_admin_secret_write():
    """serve's guard on a Space: the owner's login, or the admin secret (header or unlocked
    session, compared by app.auth in constant time); nobody else, and never without a login."""
    from app.auth import WriteGuard

    space = access()
    guard = WriteGuard("s3cret-token", owner=space.is_owner, refused=space.refusal())
    assert guard.required
    assert guard.allows(logged_in("alice"))
    assert guard.allows(FakeRequest(None, {"authorization": "Bearer s3cret-token"}))
    assert not guard.allows(FakeRequest(None, {"authorization": "Bearer s3cret-tokeN"}))
    assert not guard.allows(logged_in("mallory")) and not guard.allows(None)
    with pytest.raises(gr.Error, match="Only the owner of this Space"):
        guard.require(logged_in("mallory"))
    no_secret = WriteGuard(None, owner=space.is_owner)  # no admin secret: only the login
    assert no_secret.required and not no_secret.unlock("", FakeRequest(None))
    assert not no_secret.allows(FakeRequest(None, {"authorization": "Bearer "}))
    assert no_secret.allows(logged_in("alice"))


def test_system_is_set_only_on_a_space():
    env = {"SPACE_ID": "alice/s", "SPACE_AUTHOR_NAME": "alice"}
    assert enter_spaces_mode(env).on_spaces and env["SYSTEM"] == "spaces"
    plain: dict[str, str] = {}
    assert not enter_spaces_mode(plain).on_spaces and "SYSTEM" not in plain
    with pytest.raises(ConfigError):
        enter_spaces_mode({"SPACE_ID": "a/s", "VERL_STUDIO_TRY_IT_MAX_STEPS": "many"})
