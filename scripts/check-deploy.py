#!/usr/bin/env python3
"""Validates deploy/: Kubernetes manifests against the bundled API schemas
(kubernetes-validate, offline), and the AWS Batch JSON's shape."""
import json
import pathlib
import subprocess
import sys

root = pathlib.Path(__file__).resolve().parent.parent / "deploy"
manifests = sorted(str(p) for p in (root / "k8s").glob("*.yaml"))
result = subprocess.run(["kubernetes-validate", "--strict", *manifests])
if result.returncode != 0:
    sys.exit("deploy/k8s: manifests do not validate")

batch = json.loads((root / "aws-batch" / "backfill-array-job.json").read_text())
definition = batch["jobDefinition"]
command = " ".join(definition["containerProperties"]["command"])
assert "--month-index" in command and "AWS_BATCH_JOB_ARRAY_INDEX" in command, command
assert batch["submitJob"]["arrayProperties"]["size"] == 44
assert batch["submitJob"]["jobDefinition"] == definition["jobDefinitionName"]
print(f"deploy: {len(manifests)} Kubernetes manifests and the AWS Batch job are valid")
