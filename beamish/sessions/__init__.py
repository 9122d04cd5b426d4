"""Per-session context actors, the janitor and the usage recorder (built on :mod:`beamish.runtime`).

Home of the session layer: one supervised actor per chat session caching the user's resolved
LLM preferences, enhancing requests and counting usage, and a janitor expiring stale sessions.
"""
