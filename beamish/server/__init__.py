"""The HTTP API (a mountable FastAPI router), authentication and ``beamish serve``."""
