"""PreferenceTable: the contexts' cached preferences, published, withdrawn and invalidated."""

from __future__ import annotations

from beamish.llm.hierarchy import ResolvedConfig
from beamish.sessions.preferences import PreferenceTable

S1 = ("ada", "s1")
A1, B1 = ("ada", "a1"), ("bob", "b1")


def _config(model: str) -> ResolvedConfig:
    return ResolvedConfig.model_validate({
        "provider": "echo", "model": model, "task_type": "chat", "tier": "free",
        "user_id": "ada", "parameters": {}, "sources": {}})


def test_a_published_dict_is_read_until_its_owner_withdraws_it() -> None:
    """Reads see what the owner caches; a withdrawal by an older owner leaves a newer one."""
    table = PreferenceTable()
    old: dict[str, ResolvedConfig] = {}
    table.publish(S1, old)
    assert table.cached(S1, "chat") is None
    old["chat"] = _config("m1")
    assert table.cached(S1, "chat") == _config("m1")
    new: dict[str, ResolvedConfig] = {"chat": _config("m2")}
    table.publish(S1, new)  # a restarted context, same session id
    table.withdraw(S1, old)  # the old one's exit, reported late
    assert table.cached(S1, "chat") == _config("m2")
    table.withdraw(S1, new)
    assert (len(table), table.cached(S1, "chat")) == (0, None)


def test_invalidation_clears_the_named_sessions_or_all_and_counts() -> None:
    """invalidate(ids) clears those sessions' caches, invalidate(None) every one."""
    table = PreferenceTable()
    ada, bob = {"chat": _config("a")}, {"chat": _config("b")}
    table.publish(A1, ada)
    table.publish(B1, bob)
    table.invalidate([A1, ("ada", "gone")])
    assert (ada, bob, table.generation) == ({}, {"chat": _config("b")}, 1)
    table.invalidate(None)
    assert (bob, table.generation, len(table)) == ({}, 2, 2)
