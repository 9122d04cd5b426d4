"""beamish: an Elixir/OTP-style actor runtime on asyncio, and per-user LLM sessions built on it."""
