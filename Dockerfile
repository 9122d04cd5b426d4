# beamish serve in a container: `docker compose up` (compose.yaml) runs it beside PostgreSQL.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

WORKDIR /src
COPY pyproject.toml README.md ./
COPY beamish ./beamish
RUN pip install . && rm -rf /src

# Never root: the server needs no privilege, and its key file (.beamish/) lives in its home.
RUN useradd --create-home --uid 10001 --shell /usr/sbin/nologin beamish
USER beamish
WORKDIR /home/beamish

EXPOSE 4000
HEALTHCHECK --interval=10s --timeout=3s --start-period=10s --retries=3 \
    CMD ["python", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:4000/health', timeout=2)"]

CMD ["beamish", "serve", "--host", "0.0.0.0", "--log-format", "json"]
