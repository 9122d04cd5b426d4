"""One set of submission rules: a job's label, version and backoff values are taken or
refused alike by ``JobRequest`` (the Python API) and ``JobSubmission`` (HTTP, the user
channel), with the same message."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import ValidationError

from beamish.jobs import JobRequest, JobSubmission

_CASES = [
    ({"backoff_base_s": 0.0}, "greater than 0"),
    ({"backoff_cap_s": 0.0}, "greater than 0"),
    ({"backoff_base_s": -1.0}, "greater than 0"),
    ({"backoff_cap_s": 86_401.0}, "less than or equal to 86400"),
    ({"backoff_base_s": 10.0, "backoff_cap_s": 5.0}, "backoff_base_s must be at most"),
    ({"backoff_base_s": 0.001, "backoff_cap_s": 0.001}, None),
    ({"backoff_base_s": 86_400.0}, None),
    ({"template": "t", "label": "prod"}, None),
    ({"template": "t", "version": 2**31 - 1}, None),
    ({"template": "t", "version": 2**31}, "less than or equal to"),
    ({"template": "t", "version": 0}, "greater than or equal to 1"),
    ({"template": "t", "label": ""}, "at least 1 character"),
    ({"template": "t", "label": "x" * 65}, "at most 64 characters"),
    ({"template": "t", "label": "prod", "version": 2}, "not both"),
    ({"prompt": "x", "label": "prod"}, "give them with template"),
    ({"prompt": "x", "version": 2}, "give them with template"),
]


def _as_request(fields: dict[str, Any]) -> dict[str, Any]:
    """``fields`` of a submission as the Python API names them."""
    renamed = {"label": "template_label", "version": "template_version"}
    request = {renamed.get(key, key): value for key, value in fields.items()}
    if "template" not in request:
        request.setdefault("prompt", "x")
    return {"user_id": "ada", **request}


def _refusal(model: type[JobRequest] | type[JobSubmission],
             fields: dict[str, Any]) -> str | None:
    try:
        model.model_validate(fields)
    except ValidationError as error:
        return str(error)
    return None


@pytest.mark.parametrize(("fields", "said"), _CASES)
def test_the_python_api_and_a_submission_take_and_refuse_the_same_values(
        fields: dict[str, Any], said: str | None) -> None:
    """Each value is taken by both models, or refused by both saying the same."""
    submitted = _refusal(JobSubmission, {"prompt": "x", **fields} if "template" not in
                         fields else fields)
    requested = _refusal(JobRequest, _as_request(fields))
    if said is None:
        assert (submitted, requested) == (None, None)
    else:
        assert submitted is not None
        assert requested is not None
        assert said in submitted
        assert said in requested
