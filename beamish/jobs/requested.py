"""Whether a job gets the provider and model it asked for, without I/O.

A job's ``overrides`` (or the provider and model a re-run or regeneration pins) are the
``request`` layer of config resolution. The resolver skips a layer it cannot use — a
provider that is not configured or not serving, a model not in its catalog — with a warning,
and resolves from the layers below: right for a user's stored preferences, wrong for a job
that named what it wants, which would then run, and be stored, as another model's answer.

So a job whose request layer was skipped does not run elsewhere: ``Jobs.enqueue`` refuses it
when resolution already skips it then (``InvalidJobError``), and an attempt that meets it
later (the provider went away while the job waited) fails for good, saying why — with the
resolver's warnings of the request layer, which say what was skipped and why.
"""

from __future__ import annotations

from beamish.llm.hierarchy import ConfigRequest, Layer, ResolvedConfig

_REQUEST_SKIPPED = f"{Layer.REQUEST}: skipped "


def named(request: ConfigRequest | None) -> str | None:
    """What ``request`` names of provider and model (``openai:gpt-4o``, ``provider
    'openai'``, ``model 'gpt-4o'``), or None when it names neither."""
    if request is None or (request.provider is None and request.model is None):
        return None
    if request.provider is not None and request.model is not None:
        return f"{request.provider}:{request.model}"
    if request.provider is not None:
        return f"provider {request.provider!r}"
    return f"model {request.model!r}"


def unserved(request: ConfigRequest | None, config: ResolvedConfig) -> str | None:
    """Why ``config`` does not use the provider or model ``request`` names (a sentence for
    the job's user), or None when it does (or the request names neither)."""
    asked = named(request)
    if asked is None or request is None:
        return None
    kept = ((request.provider is None or config.sources.get("provider") is Layer.REQUEST)
            and (request.model is None or config.sources.get("model") is Layer.REQUEST))
    if kept:
        return None
    return unusable(asked, config.warnings)


def unusable(asked: str, warnings: tuple[str, ...]) -> str:
    """The sentence saying the job's ``asked`` provider or model cannot be used, with the
    resolver's ``warnings`` about the request layer (all of them, if none is about it)."""
    own = [w.removeprefix(_REQUEST_SKIPPED) for w in warnings if w.startswith(_REQUEST_SKIPPED)]
    why = "; ".join(own or warnings) or "the resolver did not say why"
    return (f"the job asks for {asked}, which cannot be used ({why}); it does not run on "
            "another model instead: name a provider and model that are configured and "
            "serving, or leave them out for the user's configuration")


__all__ = ["named", "unserved", "unusable"]
