"""Plugin and core routes through the generated, typed methods."""

from __future__ import annotations

import inspect
import typing

import pydantic
import pytest

import learnloop
import learnloop._operations as ops
from learnloop import Forbidden


def declared_return(cls: type, name: str):
    return typing.get_type_hints(getattr(cls, name), globalns=vars(ops))["return"]


def matches(value, tp) -> bool:
    """The answer has the declared type (the client validated it; this checks what came back)."""
    if tp is typing.Any:
        return True
    try:
        pydantic.TypeAdapter(tp).validate_python(value)
    except pydantic.ValidationError:
        return False
    return True


def reads_without_arguments(cls: type):
    """The GET methods of a class that take no argument but workspace."""
    for name, fn in sorted(vars(cls).items()):
        if name.startswith("_") or not inspect.isfunction(fn):
            continue
        params = list(inspect.signature(fn).parameters.values())[1:]
        src = inspect.getsource(fn)
        if '"GET"' in src and all(p.default is not inspect.Parameter.empty for p in params):
            yield name


def test_every_plain_read_answers_its_declared_type(admin):
    """Each GET without required arguments, of every plugin and the core, answers what the document declares."""
    called = []
    groups = [(ops.CoreApi, admin)] + [(sync, admin.plugins[name]) for name, (sync, _) in ops.PLUGINS.items()]
    for cls, target in groups:
        for name in reads_without_arguments(cls):
            result = getattr(target, name)()
            tp = declared_return(cls, name)
            assert matches(result, tp), f"{cls.__name__}.{name} answered {type(result).__name__}, declared {tp}"
            called.append(f"{cls.__name__}.{name}")
    assert len(called) >= 20, called


def test_trust_learns_and_routes(writer, uid):
    good, bad = f"{uid}-good", f"{uid}-bad"
    records = []
    for n in range(16):
        agent, approved = (good, n % 8 != 0) if n < 8 else (bad, n % 4 == 0)
        records.append(learnloop.prediction_record(id=f"{uid}-{n}", plugin="trust", subject=agent, kind="security",
                                                   confidence=0.8))
        records.append(learnloop.outcome_record(id=f"{uid}-{n}-r", plugin="trust", prediction_id=f"{uid}-{n}",
                                                label="approved" if approved else "rejected", success=approved))
    assert writer.ingest(records).rejected == 0
    decision = writer.trust.route(recommendation_type="security", candidates=[good, bad], strategy="greedy")
    assert decision["pick"] == good
    assert [r["agent_id"] for r in decision["ranking"]] == [good, bad]
    profile = writer.trust.get_agent(good)
    assert profile["overall_trust_score"] > writer.trust.get_agent(bad)["overall_trust_score"]


def test_cost_assess(writer, uid):
    for n in range(3):
        writer.predict(id=f"{uid}-{n}", plugin="cost", subject=f"ec2-{n}", kind="rightsizing", value=400.0,
                       payload={"region": "eu-west-1", "resource_type": "ec2"})
        writer.outcome(id=f"{uid}-{n}-x", plugin="cost", prediction_id=f"{uid}-{n}", value=350.0, success=True)
    a = writer.cost.assess(recommendation_type="rightsizing", resource_type="ec2", region="eu-west-1",
                           predicted_savings=400.0, risk_level="low")
    assert "calibrated_savings" in a
    with pytest.raises(learnloop.InvalidInput) as e:
        writer.cost.assess(recommendation_type="rightsizing", resource_type="ec2", region="eu-west-1",
                           predicted_savings=-1.0)
    assert e.value.field == "predicted_savings"


def test_drift_model_performance_and_path_parameters(writer, uid):
    model = f"{uid} model: ünï"  # path parameters are percent-encoded
    records = []
    for n in range(6):
        records.append(learnloop.prediction_record(id=f"{uid}-{n}", plugin="drift", subject=model,
                                                   kind="regression", value=float(n)))
        records.append(learnloop.outcome_record(id=f"{uid}-{n}-a", plugin="drift", prediction_id=f"{uid}-{n}",
                                                value=float(n) + 0.5))
    assert writer.ingest(records).inserted == 12
    perf = writer.drift.get_model_performance(model)
    assert perf["model"] == model


def test_roles_apply_to_generated_methods(reader, admin):
    with pytest.raises(Forbidden):
        reader.list_jobs()
    jobs = admin.list_jobs()
    assert jobs is not None


def test_the_async_classes_mirror_the_sync_ones():
    for name, (sync, asyn) in ops.PLUGINS.items():
        assert {n for n in vars(sync) if not n.startswith("_")} == {n for n in vars(asyn) if not n.startswith("_")}
        for n, fn in vars(asyn).items():
            if not n.startswith("_"):
                assert inspect.iscoroutinefunction(fn), f"Async{sync.__name__}.{n}"
