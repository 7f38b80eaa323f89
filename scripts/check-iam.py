#!/usr/bin/env python3
"""Checks deploy/iam/ against the code: every policy is valid IAM JSON without wildcard
actions, every AWS operation the code calls (found in the sources, not listed by hand) is
granted by some policy, and no policy grants an action the code never calls.

An operation is an SDK client call (`client.get_object()`, `self.client\n.put_object()`) in
crates/ or pipelines/; the file it is in says the service."""
import json
import pathlib
import re
import sys

ROOT = pathlib.Path(__file__).resolve().parent.parent
POLICIES = sorted((ROOT / "deploy" / "iam").glob("*.json"))

# Which service a source file's SDK calls go to.
SERVICE_OF = [
    ("crates/gid-storage/", "s3"),
    ("crates/gid-notify/", "sns"),
    ("crates/gid-enrich/src/aws/translate", "translate"),
    ("crates/gid-enrich/src/aws/comprehend", "comprehend"),
    ("crates/gid-enrich/src/aws/rekognition", "rekognition"),
    ("crates/gid-aws/", "sts"),
]

# Operations whose IAM action is not the operation's own name.
ACTION_OF = {
    ("s3", "list_objects_v2"): "s3:ListBucket",
    ("s3", "head_bucket"): "s3:ListBucket",
    ("s3", "head_object"): "s3:GetObject",
    ("s3", "list_buckets"): "s3:ListAllMyBuckets",
    ("s3", "create_multipart_upload"): "s3:PutObject",
    ("s3", "upload_part"): "s3:PutObject",
    ("s3", "complete_multipart_upload"): "s3:PutObject",
    ("s3", "delete_objects"): "s3:DeleteObject",
    ("s3", "get_public_access_block"): "s3:GetBucketPublicAccessBlock",
    ("s3", "put_public_access_block"): "s3:PutBucketPublicAccessBlock",
    ("sns", "get_sms_sandbox_account_status"): "sns:GetSMSSandboxAccountStatus",
    # Every identity may ask who it is: STS needs no permission for it.
    ("sts", "get_caller_identity"): None,
}

# Builder methods that look like calls on a client but are not operations.
NOT_OPERATIONS = {"clone", "config", "with_config"}

CALL = re.compile(r"\bclient(?:\(\))?\s*\.\s*([a-z][a-z0-9_]*)\(\)")


def service_of(path):
    rel = path.relative_to(ROOT).as_posix()
    for prefix, service in SERVICE_OF:
        if rel.startswith(prefix):
            return service
    return None


def camel(op):
    return "".join(part.capitalize() for part in op.split("_"))


def code_actions():
    """IAM action -> the files whose operations need it."""
    actions = {}
    for path in sorted(ROOT.glob("crates/**/src/**/*.rs")) + sorted(
        ROOT.glob("pipelines/**/src/**/*.rs")
    ):
        text = path.read_text()
        # Unit tests call clients too (against stubs): they need no production grant.
        text = text.split("#[cfg(test)]")[0]
        for op in CALL.findall(text):
            if op in NOT_OPERATIONS:
                continue
            service = service_of(path)
            if service is None:
                sys.exit(
                    f"check-iam: {path.relative_to(ROOT)} calls {op}() on an SDK client, "
                    "but scripts/check-iam.py does not know which service that file talks "
                    "to: add it to SERVICE_OF"
                )
            action = ACTION_OF.get((service, op), f"{service}:{camel(op)}")
            if action is not None:
                actions.setdefault(action, set()).add(str(path.relative_to(ROOT)))
    return actions


def policy_actions(path):
    try:
        doc = json.loads(path.read_text())
    except json.JSONDecodeError as e:
        sys.exit(f"check-iam: {path.name} is not valid JSON: {e}")
    if doc.get("Version") != "2012-10-17":
        sys.exit(f'check-iam: {path.name}: "Version" must be "2012-10-17"')
    granted = set()
    for statement in doc.get("Statement", []):
        sid = statement.get("Sid", "?")
        if statement.get("Effect") != "Allow":
            sys.exit(f"check-iam: {path.name} {sid}: only Allow statements are expected")
        if "Resource" not in statement:
            sys.exit(f"check-iam: {path.name} {sid}: no Resource")
        actions = statement.get("Action", [])
        actions = [actions] if isinstance(actions, str) else actions
        for action in actions:
            if "*" in action:
                sys.exit(f"check-iam: {path.name} {sid}: wildcard action {action}")
            granted.add(action)
    if not granted:
        sys.exit(f"check-iam: {path.name} grants nothing")
    return granted


def main():
    if not POLICIES:
        sys.exit("check-iam: deploy/iam/ holds no policy")
    needed = code_actions()
    granted = {}
    for path in POLICIES:
        for action in policy_actions(path):
            granted.setdefault(action, []).append(path.name)
    missing = sorted(set(needed) - set(granted))
    extra = sorted(set(granted) - set(needed))
    problems = [
        f"{a} is called by {', '.join(sorted(needed[a]))} but no policy in deploy/iam/ grants it"
        for a in missing
    ] + [
        f"{a} is granted by {', '.join(granted[a])} but no code calls it (least privilege)"
        for a in extra
    ]
    if problems:
        sys.exit("check-iam:\n  " + "\n  ".join(problems))
    print(
        f"check-iam: {len(POLICIES)} policies grant exactly the {len(needed)} actions the code calls"
    )


main()
