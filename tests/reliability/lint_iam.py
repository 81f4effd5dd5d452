#!/usr/bin/env python3
"""Lints IAM policies with parliament (https://github.com/duo-labs/parliament, pinned in
scripts/requirements-test.txt) and prints the findings as JSON.

    .venv/bin/python tests/reliability/lint_iam.py POLICIES.json

POLICIES.json: a list of {"name", "kind": "identity" | "trust", "resource": ARN, "document"}.
tests/security.rs writes it from what it reads back from moto after `lew setup`.

Output: {"checked": [names], "findings": [...], "ignored": [...]}, each finding as
{"policy", "issue", "severity", "detail", "location"}. The community auditors are on too.

What is ignored, and why (nothing else is; each rule names one finding of one policy):
- MALFORMED "Statement contains neither Resource nor NotResource" on trust policies: parliament
  lints identity policies, and a role's trust policy never has a Resource (the role is the
  resource). So each trust policy is also linted a second time as the resource policy it is,
  with the role's ARN as its Resource, and that pass must be clean but for the next rule.
- CREDENTIALS_EXPOSURE (community auditor) for sts:AssumeRole in that second pass: allowing
  AssumeRole to one service principal is what a trust policy is for.
- RESOURCE_STAR for ecs:ListTasks in the launcher's policy: ListTasks' only resource type is a
  container instance, which Fargate tasks do not have, so it cannot be scoped by ARN; lew's
  statement limits it with the `ecs:cluster` condition to the app's cluster instead (the AWS
  CDK does the same).
- CREDENTIALS_EXPOSURE (community) for ecr:GetAuthorizationToken in the execution role: ECS
  needs it to pull the worker image, and AWS allows it only on Resource "*".
- PERMISSIONS_MANAGEMENT_ACTIONS (community) for iam:PassRole in the launcher's policy: RunTask
  must pass the task and execution roles; the statement names exactly those two roles and
  requires iam:PassedToService = ecs-tasks.amazonaws.com (tests/security.rs checks that).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import parliament
from parliament import analyze_policy_string, enhance_finding

# As parliament's CLI does with --include-community-auditors: their severities and titles.
parliament.override_config(
    str(Path(parliament.__file__).parent / "community_auditors" / "config_override.yaml")
)

TRUST_WITHOUT_RESOURCE = "Statement contains neither Resource nor NotResource"


def findings_of(document: dict[str, Any], name: str) -> list[dict[str, Any]]:
    policy = analyze_policy_string(
        json.dumps(document), filepath=name, include_community_auditors=True
    )
    return [
        {
            "policy": name,
            "issue": f.issue,
            "severity": enhance_finding(f).severity,
            "detail": f.detail if isinstance(f.detail, str | list | dict) else str(f.detail),
            "location": {k: str(v) for k, v in (f.location or {}).items()},
        }
        for f in policy.findings
    ]


# (policy kind, policy name suffix, issue, detail or actions) -> why it is not a problem
IGNORED = [
    ("trust", "/trust", "MALFORMED", TRUST_WITHOUT_RESOURCE, "a trust policy has no Resource"),
    (
        "trust",
        "(as the role's resource policy)",
        "CREDENTIALS_EXPOSURE",
        "['sts:assumerole']",
        "allowing AssumeRole to its service principal is what a trust policy does",
    ),
    (
        "identity",
        "-launcher/lew",
        "RESOURCE_STAR",
        ["ecs:ListTasks"],
        "ecs:ListTasks cannot be scoped by ARN on Fargate; limited by ecs:cluster instead",
    ),
    (
        "identity",
        "-execution/lew",
        "CREDENTIALS_EXPOSURE",
        "['ecr:getauthorizationtoken']",
        "pulling the image needs the ECR token; AWS allows it only on Resource *",
    ),
    (
        "identity",
        "-launcher/lew",
        "PERMISSIONS_MANAGEMENT_ACTIONS",
        "['iam:passrole']",
        "RunTask passes the two task roles (named, and only to ecs-tasks.amazonaws.com)",
    ),
]


def ignore_reason(kind: str, finding: dict[str, Any]) -> str | None:
    for rule_kind, suffix, issue, detail, reason in IGNORED:
        location = finding["location"]
        matches_detail = detail in (
            finding["detail"],
            location.get("actions"),
            location.get("string"),
        )
        if (
            rule_kind == kind
            and finding["policy"].endswith(suffix)
            and finding["issue"] == issue
            and matches_detail
        ):
            return reason
    return None


def main(argv: list[str]) -> int:
    with open(argv[1], encoding="utf-8") as source:
        policies = json.load(source)
    found: list[dict[str, Any]] = []
    ignored: list[dict[str, Any]] = []
    checked = []
    for policy in policies:
        documents = [(policy["name"], policy["document"])]
        if policy["kind"] == "trust":
            # The same statements as the resource policy of the role they protect.
            document = json.loads(json.dumps(policy["document"]))
            statements = document.get("Statement", [])
            for statement in statements if isinstance(statements, list) else [statements]:
                statement.setdefault("Resource", policy["resource"])
            documents.append((policy["name"] + " (as the role's resource policy)", document))
        for name, document in documents:
            checked.append(name)
            for finding in findings_of(document, name):
                reason = ignore_reason(policy["kind"], finding)
                if reason:
                    ignored.append({**finding, "reason": reason})
                else:
                    found.append(finding)
    print(json.dumps({"checked": checked, "findings": found, "ignored": ignored}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
