"""Per-user LLM configuration resolution and provider clients.

Home of the resolution hierarchy (request > task override > user default > ... > system
default) with per-field provenance, and the OpenAI, Anthropic, OpenAI-compatible and echo
providers.
"""
