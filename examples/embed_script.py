"""Embedding beamish in a script: preferences, a session, a call, a stream, the usage.

Run it with ``python -m examples.embed_script [--database sqlite:///path.db]`` (a temporary
SQLite file by default). With no provider keys configured, the offline echo provider answers,
and says so.
"""

from __future__ import annotations

import argparse
import asyncio
import tempfile
from pathlib import Path

import beamish
from beamish.llm.providers.stream import StreamDone, TokenDelta


async def main(database_url: str) -> None:
    """Set a preference, chat in a session, print where each value came from and the usage."""
    async with beamish.Application(beamish.Settings(database_url=database_url)) as rt:
        await rt.users.set_default("ada", "echo", "echo-1")
        session = await rt.sessions.open(None, "ada")
        sid = session.session_id

        answer = await rt.complete(sid, "What is an actor?", task_type="chat")
        print(f"answer: {answer.completion.text}")
        print(answer.config.explain())

        print("stream:", end=" ")
        async with rt.stream(sid, "Tell me about supervisors", options={"temperature": 0.2}) as s:
            async for event in s:
                if isinstance(event, TokenDelta):
                    print(event.text, end="", flush=True)
                elif isinstance(event, StreamDone):
                    print(f"\n  ({event.usage.total_tokens} tokens from {event.model})")

        usage = await rt.sessions.usage(sid)
        print(f"session usage: {usage.requests} requests, {usage.total_tokens} tokens")
        stats = await rt.users.get_usage_stats("ada")
        print(f"ada overall: {stats.totals.requests} requests")


def _cli() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--database", help="database URL (default: a temporary SQLite file)")
    args = parser.parse_args()
    if args.database:
        asyncio.run(main(args.database))
        return
    with tempfile.TemporaryDirectory(prefix="beamish-example-") as folder:
        asyncio.run(main(f"sqlite:///{Path(folder) / 'beamish.db'}"))


if __name__ == "__main__":
    _cli()
