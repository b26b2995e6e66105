"""Keys, roles, workspaces and unknown routes: each error is its own exception."""

from __future__ import annotations

import pytest

import learnloop
from learnloop import Forbidden, InvalidInput, NotFound, Unauthorized


def record(uid: str) -> dict:
    return dict(id=f"{uid}-p", plugin="drift", subject="m", kind="regression", value=1.0)


def test_no_key_and_a_wrong_key_are_unauthorized(server, uid):
    for key in (None, "ll_not-a-key"):
        with learnloop.Client(server.url, api_key=key) as ll:
            with pytest.raises(Unauthorized) as e:
                ll.predict(**record(uid))
        assert e.value.status == 401 and e.value.detail


def test_a_reader_cannot_write(reader, uid):
    with pytest.raises(Forbidden) as e:
        reader.predict(**record(uid))
    assert e.value.status == 403


def test_a_key_cannot_leave_its_workspace(server, uid):
    with learnloop.Client(server.url, api_key=server.keys["other"], workspace="default") as ll:
        with pytest.raises(Forbidden) as e:
            ll.predict(**record(uid))
    assert "other" in e.value.detail and "default" in e.value.detail


def test_an_admin_key_must_name_the_workspace(server, uid):
    with learnloop.Client(server.url, api_key=server.admin_key) as ll:
        with pytest.raises(InvalidInput) as e:
            ll.predict(**record(uid))
        assert e.value.field == "workspace"
        assert ll.predict(**record(uid), workspace="default").inserted


def test_unknown_routes_and_resources_are_not_found(writer):
    with pytest.raises(NotFound) as e:
        writer.request("GET", "/api/v1/no-such-plugin/x")
    assert e.value.status == 404
    with pytest.raises(NotFound):
        writer.drift.assign_local("no-such-test", "unit-1")


def test_client_arguments_are_checked():
    with pytest.raises(ValueError, match="base_url"):
        learnloop.Client("127.0.0.1:8080")
    with pytest.raises(ValueError, match="api_key"):
        learnloop.Client("http://127.0.0.1:1", api_key="  ")
    with pytest.raises(ValueError, match="max_attempts"):
        learnloop.RetryPolicy(max_attempts=0)
    with pytest.raises(ValueError, match="retry_statuses"):
        learnloop.RetryPolicy(retry_statuses=frozenset({404}))
