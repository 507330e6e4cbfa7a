"""The packaged template carries the production guardrails (deploy/guardrails.js): alarms on
metrics the code really emits, to one SNS topic; a dashboard of those metrics and of every
function; reserved concurrency, a published version and a `live` alias behind the URL of every
function; stage parameters; and it passes cfn-lint.

What the code emits is not retyped here: every `record_*` helper of shared.observability runs
and its EMF documents are read back (namespace, metric name and each published dimension set
with its values).
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any, get_args

import pytest

from shared import observability
from tests.support.packaging import ROOT, TEMPLATE, resources, serverless, serverless_config

FUNCTIONS: dict[str, dict[str, Any]] = serverless_config()["functions"]
Metric = tuple[str, str, frozenset[tuple[str, str]]]


def _every_webhook_outcome() -> None:
    for outcome in get_args(observability.WebhookOutcome):
        observability.record_webhook_event("payment_intent.succeeded", outcome)


def _exercises() -> dict[str, Callable[[], None]]:
    """One call per outcome of every metric helper (the test below keeps this list complete)."""
    return {
        "record_reading_created": lambda: observability.record_reading_created(2),
        "record_consumer_run": lambda: observability.record_consumer_run(1, 1, 1),
        "record_webhook_event": _every_webhook_outcome,
        "record_stars_moved": lambda: observability.record_stars_moved(5, 2),
        "record_queue_health": lambda: observability.record_queue_health(
            {"depth": 1, "oldest_queued_age_seconds": 1.5, "retries_due": 1, "dead_letters": 1}),
        "record_reconciliation": lambda: observability.record_reconciliation(1, 1),
    }


@pytest.fixture(scope="module")
def emitted() -> set[Metric]:
    lines: list[str] = []
    observability.metrics.use_sink(lines.append)
    try:
        for function in FUNCTIONS:
            observability.metrics.clear()
            for exercise in _exercises().values():
                exercise()
            observability.metrics.flush(function)
    finally:
        observability.metrics.use_sink(None)
        observability.metrics.clear()
    found: set[Metric] = set()
    for line in lines:
        document = json.loads(line)
        for directive in document["_aws"]["CloudWatchMetrics"]:
            for dimension_set in directive["Dimensions"]:
                dims = frozenset((key, str(document[key])) for key in dimension_set)
                found |= {(directive["Namespace"], m["Name"], dims) for m in directive["Metrics"]}
    return found


def _by_function(template: dict[str, Any]) -> dict[str, str]:
    """Function name in serverless.yml -> its AWS::Lambda::Function logical id."""
    found = {}
    for logical_id, resource in resources(template, "AWS::Lambda::Function").items():
        handler = resource["Properties"]["Handler"]
        found.update({n: logical_id for n, fn in FUNCTIONS.items() if fn["handler"] == handler})
    assert set(found) == set(FUNCTIONS)
    return found


def test_every_metric_helper_is_exercised() -> None:
    helpers = {name for name in observability.__all__ if name.startswith("record_")}
    assert helpers == set(_exercises())


def test_every_product_alarm_names_a_metric_the_code_emits(template, emitted) -> None:
    product = [a["Properties"] for a in resources(template, "AWS::CloudWatch::Alarm").values()
               if a["Properties"]["Namespace"] != "AWS/Lambda"]
    named = {(a["Namespace"], a["MetricName"],
              frozenset((d["Name"], d["Value"]) for d in a["Dimensions"])) for a in product}
    assert named <= emitted, named - emitted
    assert {m for _, m, _ in named} == {"DeadLetters", "QueueLagSeconds", "WebhookEvents",
                                        "ReconciliationDrift"}
    failed = [a for a in product if a["MetricName"] == "WebhookEvents"]
    assert [{d["Name"]: d["Value"] for d in a["Dimensions"]}["outcome"] for a in failed] == [
        "failed"]


def test_every_alarm_notifies_the_topic_and_names_its_runbook_section(template) -> None:
    runbooks = (ROOT / "docs" / "runbooks.md").read_text(encoding="utf-8")
    anchors = {re.sub(r"[^a-z0-9 -]", "", h.lower()).replace(" ", "-")
               for h in re.findall(r"^#+ (.+)$", runbooks, re.MULTILINE)}
    alarms = resources(template, "AWS::CloudWatch::Alarm").values()
    assert alarms
    for alarm in alarms:
        props = alarm["Properties"]
        assert props["AlarmActions"] == [{"Ref": "AlarmTopic"}] == props["OKActions"]
        section = re.search(r"Runbook: docs/runbooks\.md#([a-z0-9-]+)", props["AlarmDescription"])
        assert section and section.group(1) in anchors, props["AlarmDescription"]
    assert template["Resources"]["AlarmTopic"]["Type"] == "AWS::SNS::Topic"


def test_each_function_has_errors_throttles_and_duration_alarms(template) -> None:
    functions = resources(template, "AWS::Lambda::Function")
    watched: dict[str, dict[str, dict[str, Any]]] = {}
    for alarm in resources(template, "AWS::CloudWatch::Alarm").values():
        props = alarm["Properties"]
        if props["Namespace"] == "AWS/Lambda":
            [dimension] = props["Dimensions"]
            assert dimension["Name"] == "FunctionName"
            watched.setdefault(dimension["Value"]["Ref"], {})[props["MetricName"]] = props
    assert set(watched) == set(functions)
    for logical_id, metrics in watched.items():
        assert set(metrics) == {"Errors", "Throttles", "Duration"}
        timeout_ms = functions[logical_id]["Properties"]["Timeout"] * 1000
        # Near the timeout: it alarms before invocations are cut off, not on normal latency.
        assert timeout_ms / 2 <= metrics["Duration"]["Threshold"] < timeout_ms
        assert metrics["Throttles"]["Threshold"] == 0


def test_each_function_has_the_reserved_concurrency_of_its_stage(template) -> None:
    params = serverless_config()["params"]
    concurrency = {**params["default"]["reservedConcurrency"],
                   **params["dev"]["reservedConcurrency"]}
    for name, logical_id in _by_function(template).items():
        reserved = template["Resources"][logical_id]["Properties"]["ReservedConcurrentExecutions"]
        assert reserved == int(concurrency.get(name, concurrency["default"])) >= 1, name


def test_each_function_url_serves_a_retained_version_through_the_live_alias(template,
                                                                            packaged) -> None:
    res = template["Resources"]
    artifact = (packaged.parent / ".build" / "mimivibe.zip").read_bytes()
    code_sha = base64.b64encode(hashlib.sha256(artifact).digest()).decode()
    for name, logical_id in _by_function(template).items():
        [alias] = [a for a in resources(template, "AWS::Lambda::Alias").values()
                   if a["Properties"]["FunctionName"] == {"Ref": logical_id}]
        assert alias["Properties"]["Name"] == "live", name
        version_id = alias["Properties"]["FunctionVersion"]["Fn::GetAtt"][0]
        version = res[version_id]
        assert version["Type"] == "AWS::Lambda::Version"
        assert version["Properties"]["FunctionName"] == {"Ref": logical_id}
        assert version["Properties"]["CodeSha256"] == code_sha
        # A deploy replaces the version; the previous one stays for a rollback.
        assert version["DeletionPolicy"] == version["UpdateReplacePolicy"] == "Retain"
    assert not [k for k in res if re.search(r"LambdaVersion[A-Za-z0-9]{20,}$", k)]


def test_dashboard_names_emitted_metrics_and_every_function(template, emitted) -> None:
    body = json.loads(template["Resources"]["Dashboard"]["Properties"]["DashboardBody"]["Fn::Sub"])
    product: set[Metric] = set()
    per_function: dict[str, set[str]] = {}
    for widget in body["widgets"]:
        for metric in widget["properties"]["metrics"]:
            fields = [m for m in metric if isinstance(m, str)]
            namespace, name, dims = fields[0], fields[1], fields[2:]
            pairs = frozenset(zip(dims[::2], dims[1::2], strict=True))
            if namespace == "AWS/Lambda":
                [(key, value)] = pairs
                assert key == "FunctionName"
                per_function.setdefault(name, set()).add(value)
            else:
                product.add((namespace, name, pairs))
    assert product <= emitted, product - emitted
    assert {n for _, n, _ in product} >= {
        "ReadingsCreated", "ReadingsCompleted", "ReadingRetries", "DeadLetters", "QueueDepth",
        "QueueLagSeconds", "WebhookEvents", "StarsCredited", "StarsSpent", "StarsClawedBack"}
    every = {f"${{{logical_id}}}" for logical_id in _by_function(template).values()}
    assert {k: v for k, v in per_function.items() if k in ("Invocations", "Errors", "Duration")} \
        == dict.fromkeys(("Invocations", "Errors", "Duration"), every)


def _sibling(packaged: Path, work: Path) -> Path:
    """A copy of the packaged folder sharing its artifact (packaging clears .serverless)."""
    for entry in packaged.parent.iterdir():
        if entry.is_file():
            shutil.copy2(entry, work / entry.name)
        elif entry.name == "deploy":
            shutil.copytree(entry, work / entry.name)
        elif entry.name != ".serverless":
            (work / entry.name).symlink_to(entry.resolve())
    return work


@pytest.fixture(scope="module")
def prod_packaged(packaged: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The same artifact packaged for prod."""
    work = _sibling(packaged, tmp_path_factory.mktemp("sls-prod"))
    serverless(work, "package", "--stage", "prod", "--param=alarmEmail=alarms@example.com")
    return work / ".serverless"


NEW_FUNCTION = """functions:
  canary:
    handler: functions/session/handler.handler
    role: CanaryRole
    environment:
      MIMIVIBE_SECRET_ID: !Ref CanarySecret
    url: true

"""


def test_a_new_function_entry_alone_gets_every_guardrail(packaged, template, tmp_path) -> None:
    work = _sibling(packaged, tmp_path)
    config = (work / "serverless.yml").read_text()
    assert config.count("\nfunctions:\n") == 1
    (work / "serverless.yml").write_text(config.replace("\nfunctions:\n", "\n" + NEW_FUNCTION))
    serverless(work, "package", "--stage", "dev")
    grown = json.loads((work / ".serverless" / TEMPLATE).read_text())["Resources"]

    added = {k: v["Type"] for k, v in grown.items() if k not in template["Resources"]}
    assert added == {
        "CanaryLambdaFunction": "AWS::Lambda::Function", "CanaryLogGroup": "AWS::Logs::LogGroup",
        "CanarySecret": "AWS::SecretsManager::Secret", "CanaryRole": "AWS::IAM::Role",
        "CanaryLiveVersion": "AWS::Lambda::Version", "CanaryLiveAlias": "AWS::Lambda::Alias",
        "CanaryLambdaFunctionUrl": "AWS::Lambda::Url",
        "CanaryLambdaPermissionFnUrl": "AWS::Lambda::Permission",
        "CanaryLambdaPermissionFn": "AWS::Lambda::Permission",
        "CanaryErrorsAlarm": "AWS::CloudWatch::Alarm",
        "CanaryThrottlesAlarm": "AWS::CloudWatch::Alarm",
        "CanaryDurationAlarm": "AWS::CloudWatch::Alarm",
    }
    assert grown["CanaryLambdaFunctionUrl"]["Properties"]["Qualifier"] == "live"
    assert grown["CanaryLambdaFunction"]["Properties"]["ReservedConcurrentExecutions"] >= 1
    assert "${CanaryLambdaFunction}" in grown["Dashboard"]["Properties"]["DashboardBody"]["Fn::Sub"]


@pytest.fixture(scope="module")
def prod_template(prod_packaged: Path) -> dict[str, Any]:
    return dict(json.loads((prod_packaged / TEMPLATE).read_text()))


def test_stage_params_set_thresholds_concurrency_and_the_alarm_email(template,
                                                                     prod_template) -> None:
    params = serverless_config()["params"]
    dev, prod = template["Resources"], prod_template["Resources"]
    assert "AlarmEmailSubscription" not in dev  # no address, no subscription to confirm
    assert prod["AlarmEmailSubscription"]["Properties"] == {
        "TopicArn": {"Ref": "AlarmTopic"}, "Protocol": "email", "Endpoint": "alarms@example.com"}
    for stage, res in (("dev", dev), ("prod", prod)):
        lag = res["QueueLagAlarm"]["Properties"]["Threshold"]
        assert lag == int(params[stage]["queueLagAlarmSeconds"]), stage
        webhook = res["StripeDashwebhookLambdaFunction"]["Properties"]
        expected = {**params["default"]["reservedConcurrency"],
                    **params[stage]["reservedConcurrency"]}
        assert webhook["ReservedConcurrentExecutions"] == int(
            expected.get("stripe-webhook", expected["default"]))
    assert prod["QueueLagAlarm"]["Properties"]["Threshold"] < dev["QueueLagAlarm"][
        "Properties"]["Threshold"]


def test_packaged_templates_pass_cfn_lint(packaged, prod_packaged) -> None:
    # W3005 (a DependsOn also implied by a reference) is osls's own, on every function's role.
    result = subprocess.run(
        [str(Path(sys.executable).parent / "cfn-lint"), str(packaged / TEMPLATE),
         str(prod_packaged / TEMPLATE), "--ignore-checks", "W3005"],
        capture_output=True, text=True, timeout=300, check=False)
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-2000:]
