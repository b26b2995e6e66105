"""scripts/generate.py on small documents: names, parameters, bodies, refusals."""

from __future__ import annotations

import json

import pytest

from test_generated_current import load_generator

gen = load_generator()


def doc_with(paths: dict, schemas: dict = None) -> dict:
    return {"openapi": "3.1.0", "info": {"title": "learnloop", "version": "0"}, "paths": paths,
            "components": {"schemas": schemas or {}}}


def op(tags=None, operation_id=None, params=(), body=None, answer=None):
    o = {"responses": {"200": {"description": "OK", "content": {"application/json": {"schema": answer or {}}}}},
         "parameters": list(params)}
    if tags:
        o["tags"] = tags
    if operation_id:
        o["operationId"] = operation_id
    if body is not None:
        o["requestBody"] = {"required": True, "content": {"application/json": {"schema": body}}}
    return o


def names(doc: dict):
    _, ops = gen.normalize(json.loads(json.dumps(doc, sort_keys=True)))
    return {(o.group, o.method, o.path): o.name for o in ops}


def test_names_from_operation_ids_lose_the_plugin_prefix():
    d = doc_with({
        "/api/v1/trust/route": {"post": op(["trust"], "trust_route")},
        "/api/v1/drift/models/{model}/performance": {"get": op(["drift"], "drift_get_model_performance")},
        "/api/v1/insights": {"get": op(["findings"], "list_insights")},
    })
    assert names(d) == {
        ("trust", "POST", "/api/v1/trust/route"): "route",
        ("drift", "GET", "/api/v1/drift/models/{model}/performance"): "get_model_performance",
        ("core", "GET", "/api/v1/insights"): "list_insights",
    }


def test_fallback_names_from_method_and_path():
    d = doc_with({
        "/api/v1/trust/route": {"post": op(["trust"])},
        "/api/v1/trust/agents": {"get": op(["trust"])},
        "/api/v1/trust/agents/{agent}": {"get": op(["trust"])},
        "/api/v1/drift/ab_tests": {"get": op(["drift"]), "post": op(["drift"])},
        "/api/v1/drift/ab_tests/{test}": {"get": op(["drift"])},
        "/api/v1/drift/models/{model}/reference": {"put": op(["drift"]), "delete": op(["drift"])},
        "/api/v1/alerts/{id}/ack": {"post": op()},
        "/api/v1/jobs/{plugin}/{job}/run": {"post": op()},
    })
    assert set(names(d).values()) == {
        "route", "list_agents", "get_agent", "list_ab_tests", "create_ab_test", "get_ab_test", "set_model_reference",
        "delete_model_reference", "ack_alert", "run_job",
    }


def test_duplicate_operation_ids_and_hidden_client_methods_are_refused():
    with pytest.raises(gen.GenerateError, match="must be unique"):
        names(doc_with({"/api/v1/trust/a": {"get": op(["trust"], "trust_x")},
                        "/api/v1/trust/b": {"get": op(["trust"], "trust_x")}}))
    with pytest.raises(gen.GenerateError, match="would hide the client's own 'predict'"):
        names(doc_with({"/api/v1/predictions": {"post": op(None, "predict")}}))


def test_parameters_bodies_and_answers_are_typed():
    q = [{"name": "from", "in": "query", "schema": {"type": "string", "format": "date-time"}},
         {"name": "limit", "in": "query", "required": True, "schema": {"type": "integer"}},
         {"name": "workspace", "in": "query", "schema": {"type": "string"}},
         {"name": "model", "in": "path", "required": True, "schema": {"type": "string"}}]
    body = {"type": "object", "required": ["reason"], "properties": {
        "reason": {"type": "string"}, "strategy": {"enum": ["thompson", "greedy"]}}}
    answer = {"$ref": "#/components/schemas/Answer"}
    d = doc_with({"/api/v1/drift/models/{model}/retrain": {"post": op(["drift"], "drift_retrain", q, body, answer)}},
                 {"Answer": {"type": "object", "properties": {"created": {"type": "boolean"}}}})
    models_doc, ops = gen.normalize(json.loads(json.dumps(d, sort_keys=True)))
    assert "DriftRetrainRequest" in models_doc["components"]["schemas"], "inline bodies become models"
    classes = {"Answer": "model", "DriftRetrainRequest": "model"}
    src = "\n".join(gen.emit_method(ops[0], gen.Types(models_doc["components"]["schemas"], classes), False))
    assert "model: str," in src
    assert "limit: int," in src and "reason: str," in src
    assert "from_: Optional[Union[datetime, str]] = None," in src
    assert 'strategy: Optional[Literal["thompson", "greedy"]] = None,' in src
    assert "workspace: Optional[str] = None," in src
    assert ") -> models.Answer:" in src
    assert 'query={"from": from_, "limit": limit, "workspace": workspace}' in src
    assert 'body=_body({"reason": reason, "strategy": strategy})' in src
