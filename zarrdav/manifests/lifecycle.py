"""Bucket lifecycle rules that can take away versions manifests pin.

A rule that expires noncurrent versions under the Zarr prefix (DANDI's
"trailing delete", 30 days) silently breaks every old manifest; one that
expires current versions adds delete markers, which makes them noncurrent;
one that moves versions to an archive storage class makes them unreadable
until restored. Rules that only clean up multipart uploads or orphaned
delete markers are harmless.
"""

from __future__ import annotations

from typing import Any

from botocore.exceptions import ClientError

# Storage classes whose objects must be restored before a GET.
_ARCHIVE_CLASSES = {"GLACIER", "DEEP_ARCHIVE"}


def risky_rules(client: Any, bucket: str, prefix: str) -> list[str]:
    """One line per enabled rule and action that can break manifests under ``prefix``."""
    try:
        rules = client.get_bucket_lifecycle_configuration(Bucket=bucket).get("Rules", [])
    except ClientError as error:
        if error.response.get("Error", {}).get("Code") == "NoSuchLifecycleConfiguration":
            return []
        raise
    found = []
    for rule in rules:
        if rule.get("Status") != "Enabled":
            continue
        scope, covers = _scope(rule, prefix)
        if not covers:
            continue
        name = f"rule {rule.get('ID') or '(no id)'!r} ({scope})"
        found += [f"{name}: {risk}" for risk in _risks(rule)]
    return found


def _scope(rule: dict[str, Any], prefix: str) -> tuple[str, bool]:
    """What the rule applies to, and whether that can include keys under ``prefix``."""
    scope = rule.get("Filter") or {}
    conditions = scope.get("And") or scope
    rule_prefix = str(rule.get("Prefix", conditions.get("Prefix", "")))
    tags = list(conditions.get("Tags", []))
    if "Tag" in scope:
        tags.append(scope["Tag"])
    described = [f"prefix {rule_prefix!r}" if rule_prefix else "every key"]
    described += [f"tagged {tag.get('Key')}={tag.get('Value')}" for tag in tags]
    covers = rule_prefix.startswith(prefix) or prefix.startswith(rule_prefix)
    return ", ".join(described), covers


def _risks(rule: dict[str, Any]) -> list[str]:
    risks = []
    noncurrent = rule.get("NoncurrentVersionExpiration")
    if noncurrent:
        kept = noncurrent.get("NewerNoncurrentVersions")
        keeping = f", keeping the newest {kept}" if kept else ""
        days = noncurrent.get("NoncurrentDays")
        risks.append(f"expires noncurrent versions {days} days after they become noncurrent{keeping}")
    expiration = rule.get("Expiration") or {}
    if "Days" in expiration:
        risks.append(f"adds delete markers to current versions {expiration['Days']} days after they are written")
    if "Date" in expiration:
        risks.append(f"adds delete markers to current versions from {expiration['Date']}")
    for key, which in (("NoncurrentVersionTransitions", "noncurrent"), ("Transitions", "current")):
        for transition in rule.get(key, []):
            if transition.get("StorageClass") in _ARCHIVE_CLASSES:
                days = transition.get("NoncurrentDays", transition.get("Days"))
                when = f"after {days} days" if days is not None else f"from {transition.get('Date')}"
                risks.append(
                    f"moves {which} versions to {transition['StorageClass']} {when}"
                    " (unreadable until restored)"
                )
    return risks
