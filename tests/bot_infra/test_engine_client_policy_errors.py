"""The engine client's typed errors for the content policy: requester_blocked (403 with
Retry-After) is not a token problem, and the refusal that blocks says for how long."""
from __future__ import annotations

import json

import pytest

from bot import engine_client as ec


def response(status: int, error: dict, headers: dict | None = None) -> "ec._Response":
    return ec._Response(status, headers or {}, json.dumps({"error": error}).encode(), "http://engine")


def test_requester_blocked_is_its_own_error_with_retry_after():
    with pytest.raises(ec.RequesterBlocked) as err:
        ec._raise_for(response(403, {"code": "requester_blocked", "message": "too many"}, {"Retry-After": "840"}), 5)
    assert err.value.retry_after_s == 840 and err.value.status == 403
    with pytest.raises(ec.Unauthorized):
        ec._raise_for(response(403, {"code": "unauthorized", "message": "no"}), 5)


def test_the_refusal_that_blocks_carries_the_block_length():
    body = {"code": "prompt_refused", "message": "refused", "rule": "global.violence", "category": "violence"}
    with pytest.raises(ec.PromptRefused) as err:
        ec._raise_for(response(422, body), 5)
    assert err.value.blocked_for_s is None and err.value.rule == "global.violence"
    with pytest.raises(ec.PromptRefused) as err:
        ec._raise_for(response(422, {**body, "escalation": "blocked"}, {"Retry-After": "900"}), 5)
    assert err.value.blocked_for_s == 900
