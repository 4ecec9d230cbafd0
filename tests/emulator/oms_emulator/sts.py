"""Accounts: which account a request acts in, and STS's refusals before moto.

moto keys every backend by account id. A request acts in the account of its
access key: moto's AssumeRole / AssumeRoleWithWebIdentity create a temporary key
in the role's account (the account id in the role ARN), every other key acts in
the default account 123456789012. moto hands out credentials for any role ARN;
this module adds an optional model of the target roles' trust policies
(config `assumable_roles`), the ExternalId constraint of the API model, and a
refusal of temporary keys moto no longer knows (after /_oms/reset), which would
otherwise act in the default account without notice.
"""
from __future__ import annotations

import re
from typing import Any

from . import state

# AssumeRole's ExternalId: "Length Constraints: Minimum length of 2. Maximum length of 1224.
# Pattern: [\w+=,.@:\/-]*" (https://docs.aws.amazon.com/STS/latest/APIReference/API_AssumeRole.html).
# AWS's \w is ASCII.
EXTERNAL_ID_PATTERN = r"[\w+=,.@:\/-]*"
_EXTERNAL_ID = re.compile(EXTERNAL_ID_PATTERN, re.ASCII)

Refusal = tuple[int, str, str]  # HTTP status, error code, message


def _iam_accounts() -> Any:
    from moto.iam.models import iam_backends

    return list(iam_backends.items())  # a copy: moto adds accounts as they are used


def account_of(access_key: str) -> str:
    """The account a request signed with this key acts in (moto's rule, see above)."""
    from moto.iam.models import get_account_id_from

    return get_account_id_from(access_key)


def known_key(access_key: str) -> bool:
    return any(access_key in partition.access_keys for _acct, parts in _iam_accounts() for partition in parts.values())


def caller_arn(access_key: str) -> str:
    """The caller as GetCallerIdentity shows it: an assumed-role session for keys from
    AssumeRole, moto's `arn:aws:sts::<default account>:user/moto` for any other key."""
    from moto.sts.models import sts_backends

    return sts_backends[account_of(access_key)]["aws"].get_caller_identity(access_key, "us-east-1")[1]


def _constraint(value: str, field: str, rule: str) -> Refusal:
    # How AWS reports a violated API model constraint (moto does the same for RoleSessionName).
    return 400, "ValidationError", f"1 validation error detected: Value '{value}' at '{field}' failed to satisfy constraint: {rule}"


def refusal(action: str, params: dict[str, str], access_key: str) -> Refusal | None:
    """Why AWS would refuse this request before moto handles it, or None."""
    # Temporary credentials (ASIA...) moto does not know: AWS answers InvalidClientTokenId (403,
    # Common Errors of every API reference, e.g.
    # https://docs.aws.amazon.com/AWSCloudFormation/latest/APIReference/CommonErrors.html).
    if access_key.startswith("ASIA") and not known_key(access_key):
        return 403, "InvalidClientTokenId", "The security token included in the request is invalid."
    if action not in ("AssumeRole", "AssumeRoleWithWebIdentity"):
        return None
    role = params.get("RoleArn", "")
    external_id = params.get("ExternalId")
    if action == "AssumeRole" and external_id is not None:
        if len(external_id) < 2:
            return _constraint(external_id, "externalId", "Member must have length greater than or equal to 2")
        if len(external_id) > 1224:
            return _constraint(external_id, "externalId", "Member must have length less than or equal to 1224")
        if not _EXTERNAL_ID.fullmatch(external_id):
            return _constraint(external_id, "externalId", f"Member must satisfy regular expression pattern: {EXTERNAL_ID_PATTERN}")
    # The trust model: when any role is listed, only listed roles may be assumed, and a listed
    # role with an external id only with that external id (the trust policy's
    # `"Condition": {"StringEquals": {"sts:ExternalId": ...}}`).
    roles = state.CONFIG.get("assumable_roles") or {}
    if not roles:
        return None
    trust = roles.get(role)
    if action == "AssumeRoleWithWebIdentity":
        # No caller credentials and no ExternalId here; only the listing counts.
        return None if trust is not None else (403, "AccessDenied", "Not authorized to perform sts:AssumeRoleWithWebIdentity")
    if trust is None or (trust.get("external_id") is not None and external_id != trust["external_id"]):
        return 403, "AccessDenied", f"User: {caller_arn(access_key)} is not authorized to perform: sts:AssumeRole on resource: {role}"
    return None


def validate_roles(roles: Any) -> str | None:
    """Why an `assumable_roles` value is malformed, or None."""
    for arn, trust in roles.items():
        if trust is None:
            continue
        if not isinstance(trust, dict) or set(trust) - {"external_id"}:
            return f"assumable_roles[{arn}] must be null or an object with only external_id"
        if not isinstance(trust.get("external_id"), (str, type(None))):
            return f"assumable_roles[{arn}].external_id must be a string or null"
    return None
