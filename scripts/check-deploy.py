#!/usr/bin/env python3
"""Validates deploy/: the Kubernetes manifests against the bundled API schemas
(kubernetes-validate, offline) and against what gid's runtime promises (non-root, read-only
root, no privilege escalation, no capabilities, a writable work dir; schedules without shell
date arithmetic; no retry of configuration errors or alerts in doubt), and the AWS Batch
job's shape and retry strategy."""
import json
import pathlib
import subprocess
import sys

import yaml

root = pathlib.Path(__file__).resolve().parent.parent / "deploy"
manifests = sorted((root / "k8s").glob("*.yaml"))
result = subprocess.run(["kubernetes-validate", "--strict", *map(str, manifests)])
if result.returncode != 0:
    sys.exit("deploy/k8s: manifests do not validate")

# gid's exit codes (README "Exit codes") that a retry cannot fix.
NOT_RETRIED = {2, 3}


def fail(path, message):
    sys.exit(f"deploy: {path.name}: {message}")


for path in manifests:
    doc = yaml.safe_load(path.read_text())
    job = doc["spec"]["jobTemplate"]["spec"] if doc["kind"] == "CronJob" else doc["spec"]
    pod = job["template"]["spec"]
    context = pod.get("securityContext", {})
    if not (context.get("runAsNonRoot") and context.get("runAsUser") == 10001):
        fail(path, "the pod must run as non-root uid 10001 (the image's user)")
    for container in pod["containers"]:
        sc = container.get("securityContext", {})
        if not sc.get("readOnlyRootFilesystem"):
            fail(path, f"{container['name']}: readOnlyRootFilesystem must be true")
        if sc.get("allowPrivilegeEscalation") is not False:
            fail(path, f"{container['name']}: allowPrivilegeEscalation must be false")
        if sc.get("capabilities", {}).get("drop") != ["ALL"]:
            fail(path, f"{container['name']}: capabilities must drop ALL")
        mounts = {m["mountPath"] for m in container.get("volumeMounts", [])}
        if "/var/lib/gid" not in mounts:
            fail(path, f"{container['name']}: the work dir /var/lib/gid must be a volume")
        words = " ".join(container.get("command", []) + container.get("args", []))
        if "date " in words or "$(" in words.replace("$(JOB_COMPLETION_INDEX)", ""):
            fail(path, f"{container['name']}: no shell arithmetic in the command: {words}")
    rules = job.get("podFailurePolicy", {}).get("rules", [])
    refused = {
        code
        for rule in rules
        if rule["action"] in ("FailJob", "FailIndex")
        for code in rule.get("onExitCodes", {}).get("values", [])
    }
    if not NOT_RETRIED <= refused:
        fail(path, f"exit codes {sorted(NOT_RETRIED)} must not be retried (podFailurePolicy)")
    if not job.get("ttlSecondsAfterFinished"):
        fail(path, "finished Jobs must be cleaned up (ttlSecondsAfterFinished)")
    if doc["kind"] == "CronJob":
        spec = doc["spec"]
        if spec.get("concurrencyPolicy") != "Forbid" or not spec.get("startingDeadlineSeconds"):
            fail(path, "the CronJob needs concurrencyPolicy Forbid and startingDeadlineSeconds")
        if "--month=previous" not in words:
            fail(path, "the scheduled run reports --month=previous")

batch = json.loads((root / "aws-batch" / "backfill-array-job.json").read_text())
definition = batch["jobDefinition"]
command = " ".join(definition["containerProperties"]["command"])
assert "--month-index" in command and "AWS_BATCH_JOB_ARRAY_INDEX" in command, command
assert batch["submitJob"]["arrayProperties"]["size"] == 44
assert batch["submitJob"]["jobDefinition"] == definition["jobDefinitionName"]
decisions = definition["retryStrategy"]["evaluateOnExit"]


def decision(exit_code):
    """What AWS Batch does with an attempt that ended with `exit_code` (first match wins)."""
    for rule in decisions:
        pattern = rule.get("onExitCode")
        if pattern is not None and (pattern == str(exit_code) or pattern == "*"):
            return rule["action"]
        if "onReason" in rule and rule["onReason"] == "*":
            return rule["action"]
    return "RETRY"


for code in NOT_RETRIED:
    assert decision(code) == "EXIT", f"Batch retries exit code {code}"
for code in (1, 143):
    assert decision(code) == "RETRY", f"Batch does not retry exit code {code}"
assert definition["containerProperties"].get("readonlyRootFilesystem") is True
print(f"deploy: {len(manifests)} Kubernetes manifests and the AWS Batch job are valid")
