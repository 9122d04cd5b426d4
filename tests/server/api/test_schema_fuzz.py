"""The whole HTTP API against its own OpenAPI document, with schemathesis (bounded).

A real ``beamish serve`` in a subprocess (SQLite, echo provider, a Fernet key); every
operation gets a few generated requests as a user and as an admin, and every answer must be
no server error, have a documented status and content type, and match its documented schema.
Derandomized, so a run is repeatable; ``EXAMPLES`` bounds it.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from schemathesis.checks import (
    content_type_conformance,
    not_a_server_error,
    response_schema_conformance,
    status_code_conformance,
)
from schemathesis.core.result import Err

from beamish.auth import TokenSigner

ROOT = Path(__file__).resolve().parents[3]
KEY = "c2NoZW1hdGhlc2lzLWZ1enotdGVzdHMta2V5LTMyYiE="  # a Fernet key: 32 bytes, base64
EXAMPLES = int(os.environ.get("BEAMISH_TEST_FUZZ_EXAMPLES", "8"))  # more: a longer hunt
CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance,
          response_schema_conformance]


@pytest.fixture(scope="module")
def server_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """`beamish serve --port 0` in an empty directory, with the tests' key."""
    folder = tmp_path_factory.mktemp("fuzz")
    env = {k: v for k, v in os.environ.items() if not k.startswith("BEAMISH_")}
    env |= {"PYTHONUNBUFFERED": "1", "PYTHONPATH": str(ROOT), "BEAMISH_SECRET_KEY": KEY,
            "BEAMISH_SERVER__REQUEST_LOG": "false"}
    with (folder / "stderr.log").open("w") as stderr:
        process = subprocess.Popen([sys.executable, "-m", "beamish.cli", "serve", "--port", "0"],
                                   cwd=folder, env=env, stdout=subprocess.PIPE, stderr=stderr,
                                   text=True)
    assert process.stdout is not None
    port = 0
    for line in process.stdout:
        found = re.search(r"serving on http://127\.0\.0\.1:(\d+)", line)
        if found:
            port = int(found.group(1))
            break
    assert port, (folder / "stderr.log").read_text()
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        process.kill()
        process.wait()
        process.stdout.close()


@pytest.mark.timeout(600)
@pytest.mark.parametrize("who", ["user", "admin"])
def test_every_operation_keeps_its_schema(server_url: str, who: str) -> None:
    """No 5xx, no undocumented status or content type, no body off its schema."""
    token = TokenSigner(KEY).issue("ada" if who == "user" else "root", admin=who == "admin")
    headers = {"Authorization": f"Bearer {token}"}
    schema = schemathesis.openapi.from_url(f"{server_url}/openapi.json")
    failures: dict[str, str] = {}
    for result in schema.get_all_operations():
        if isinstance(result, Err):  # the document itself is broken: fail on it
            raise result.err()
        operation = result.ok()

        @settings(max_examples=EXAMPLES, deadline=None, database=None, derandomize=True,
                  phases=[Phase.explicit, Phase.generate],
                  suppress_health_check=list(HealthCheck))
        @given(case=operation.as_strategy())
        def fuzz(case: schemathesis.Case[Any]) -> None:
            case.call_and_validate(headers=headers, checks=CHECKS)

        try:
            fuzz()
        except (Exception, BaseExceptionGroup) as failure:  # collected: every operation's
            failures[operation.label] = _summary(str(failure))
    assert failures == {}, "\n".join(f"{k}: {v}" for k, v in sorted(failures.items()))


def _summary(report: str) -> str:
    """The checks that failed, the statuses and the start of each answer: one line."""
    kept = [line.strip() for line in report.splitlines()
            if line.strip().startswith(("- ", "Received", "[", "`", "curl"))]
    return " | ".join(kept)[:600]
