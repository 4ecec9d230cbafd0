"""Change sets, drift detection and ContinueUpdateRollback on the stack timeline of cfn.py.

- A resolver that evaluates a template's resource properties for a stack (parameters, pseudo
  parameters, the stack's physical ids and attributes, exports), used for the "before" and "after"
  of a change set and for the expected properties of drift detection.
- analyze(): the ResourceChanges an update would make, with Replacement from the resource
  reference pages' "Update requires" (REQUIRES_RECREATION below).
- The handlers, installed on moto's CloudFormationResponse (replacing moto's own change sets).

Every behaviour and its AWS source is listed in tests/emulator/README.md.
"""
from __future__ import annotations

import copy
import json
import re
import uuid
from typing import Any

from moto.cloudformation.exceptions import ValidationError
from moto.cloudformation.models import cloudformation_backends
from moto.cloudformation.responses import CloudFormationResponse
from moto.core.exceptions import ServiceException
from moto.core.responses import ActionResult, EmptyResult

from . import cfn, state


class CfnFault(ServiceException):
    def __init__(self, code: str, message: str):
        self.code = code
        super().__init__(message)


def change_set_not_found(name: str) -> CfnFault:
    return CfnFault("ChangeSetNotFound", f"ChangeSet [{name}] does not exist")


# ---------------------------------------------------------------- update behaviours
# "Update requires" of each property on the resource reference pages (Always = Replacement,
# Conditionally = replacement depending on other values); properties not listed: No interruption
# or Some interruptions (RequiresRecreation Never). Sources in the README.
REQUIRES_RECREATION: dict[str, dict[str, str]] = {
    "AWS::ElastiCache::ReplicationGroup": {
        "AtRestEncryptionEnabled": "Always",
        "CacheSubnetGroupName": "Always",
        # The reference page says Replacement; ElastiCache upgrades Redis OSS to Valkey in place
        # (ModifyReplicationGroup Engine), so the emulator reports it as conditional and updates in
        # place (see Known infidelities).
        "Engine": "Conditionally",
        "GlobalReplicationGroupId": "Always",
        "KmsKeyId": "Always",
        "Port": "Always",
        "PreferredCacheClusterAZs": "Always",
        "ReplicasPerNodeGroup": "Always",
        "ReplicationGroupId": "Always",
        "SnapshotArns": "Always",
        "SnapshotName": "Always",
        "TransitEncryptionEnabled": "Always",
        "NodeGroupConfiguration": "Conditionally",
        "NumNodeGroups": "Conditionally",
    },
    "AWS::ElastiCache::SubnetGroup": {"CacheSubnetGroupName": "Always"},
    "AWS::ElastiCache::ParameterGroup": {"CacheParameterGroupFamily": "Always"},
    "AWS::EC2::SecurityGroup": {"GroupName": "Always", "GroupDescription": "Always", "VpcId": "Always"},
    "AWS::CloudWatch::Alarm": {"AlarmName": "Always"},
    # AWS::DynamoDB::Table (README, "DynamoDB"): TableName, KeySchema and ImportSourceSpecification
    # Replacement; AttributeDefinitions "Some interruptions. Replacement if you edit an existing
    # AttributeDefinition"; the others No interruption / Some interruptions.
    "AWS::DynamoDB::Table": {
        "TableName": "Always",
        "KeySchema": "Always",
        "ImportSourceSpecification": "Always",
        "AttributeDefinitions": "Conditionally",
    },
}

# The property that gives a resource a custom name ("Name type"): such a resource cannot be
# replaced unless the name changes.
NAME_PROPERTY = {
    "AWS::ElastiCache::ReplicationGroup": "ReplicationGroupId",
    "AWS::ElastiCache::SubnetGroup": "CacheSubnetGroupName",
    "AWS::EC2::SecurityGroup": "GroupName",
    "AWS::CloudWatch::Alarm": "AlarmName",
    "AWS::DynamoDB::Table": "TableName",
}

# Types to which CloudFormation propagates stack-level tags (those with a Tags property).
TAGGED_TYPES = {
    "AWS::ElastiCache::ReplicationGroup",
    "AWS::ElastiCache::SubnetGroup",
    "AWS::ElastiCache::ParameterGroup",
    "AWS::EC2::SecurityGroup",
    "AWS::DynamoDB::Table",
}


def _replaces_at_execution(rtype: str, old_props: dict[str, Any], new_props: dict[str, Any]) -> bool:
    """Whether a change whose Replacement is "Conditional" does replace the resource when it is
    executed: for a DynamoDB table, an existing AttributeDefinition whose type changes ("Replacement
    if you edit an existing AttributeDefinition")."""
    if rtype != "AWS::DynamoDB::Table":
        return False
    old_types = {str(a.get("AttributeName")): _norm(a.get("AttributeType")) for a in old_props.get("AttributeDefinitions") or [] if isinstance(a, dict)}
    for a in new_props.get("AttributeDefinitions") or []:
        if isinstance(a, dict) and str(a.get("AttributeName")) in old_types and old_types[str(a.get("AttributeName"))] != _norm(a.get("AttributeType")):
            return True
    return False


# ---------------------------------------------------------------- resolver
_NOVALUE = object()


class Resolver:
    def __init__(self, st: Any, tpl: dict[str, Any], params: dict[str, str]):
        self.st = st
        self.tpl = tpl
        self.params = params
        self.conds: dict[str, bool] = {}
        self.pseudo = {
            "AWS::StackName": st.name,
            "AWS::StackId": st.stack_id,
            "AWS::Region": st.region,
            "AWS::AccountId": st.account_id,
            "AWS::Partition": "aws",
            "AWS::URLSuffix": "amazonaws.com",
        }

    def param(self, name: str) -> Any:
        v = self.params[name]
        ptype = (self.tpl.get("Parameters", {}).get(name) or {}).get("Type", "String")
        if ptype == "CommaDelimitedList" or ptype.startswith("List<"):
            return [x.strip() for x in v.split(",")] if v != "" else []
        return v

    def ref(self, name: str) -> Any:
        if name == "AWS::NoValue":
            return _NOVALUE
        if name in self.params:
            return self.param(name)
        if name in self.pseudo:
            return self.pseudo[name]
        return self.st.physical_id(name) or self.st.res.get(name, {}).get("PhysicalResourceId") or ""

    def getatt(self, lid: str, attr: str) -> Any:
        obj = self.st.stack.resource_map._parsed_resources.get(lid)
        try:
            return obj.get_cfn_attribute(attr) if obj is not None else ""
        except Exception:  # noqa: BLE001
            return ""

    def cond(self, name: str) -> bool:
        return cfn.cond_value(name, self.params, self.tpl, self.conds)

    def __call__(self, node: Any) -> Any:
        if isinstance(node, dict) and len(node) == 1:
            k, v = next(iter(node.items()))
            if k == "Ref":
                return self.ref(v)
            if k == "Fn::GetAtt":
                lid, attr = (v[0], v[1]) if isinstance(v, list) else tuple(v.split(".", 1))
                return self.getatt(lid, attr)
            if k == "Fn::Sub":
                return self.sub(v)
            if k == "Fn::Join":
                items = self(v[1])
                return str(v[0]).join(cfn._s(x) for x in (items or []) if x is not _NOVALUE)
            if k == "Fn::Split":
                return str(self(v[1])).split(v[0])
            if k == "Fn::Select":
                items = self(v[1]) or []
                i = int(self(v[0]))
                return items[i] if i < len(items) else ""
            if k == "Fn::If":
                return self(v[1] if self.cond(v[0]) else v[2])
            if k == "Fn::FindInMap":
                m, a, b = (self(x) for x in v)
                return self.tpl.get("Mappings", {}).get(m, {}).get(cfn._s(a), {}).get(cfn._s(b))
            if k == "Fn::ImportValue":
                name = self(v)
                ex = cloudformation_backends[self.st.account_id][self.st.region].exports.get(name)
                return ex.value if ex is not None else ""
            if k == "Fn::GetAZs":
                return [f"{self.st.region}{z}" for z in "abc"]
            if k == "Fn::Base64":
                import base64

                return base64.b64encode(str(self(v)).encode()).decode()
            if k == "Fn::Cidr":
                from .models import _fn_cidr

                return _fn_cidr([self(x) for x in v])
            if k == "Condition":
                return self.cond(v)
            if k in ("Fn::Equals", "Fn::Not", "Fn::And", "Fn::Or"):
                return cfn.eval_expr(node, self.params, self.tpl, self.conds)
        if isinstance(node, dict):
            out = {}
            for k, v in node.items():
                r = self(v)
                if r is not _NOVALUE:
                    out[k] = r
            return out
        if isinstance(node, list):
            return [r for r in (self(x) for x in node) if r is not _NOVALUE]
        return node

    def sub(self, v: Any) -> str:
        text, local = (v[0], v[1] or {}) if isinstance(v, list) else (v, {})

        def one(m: re.Match) -> str:
            key = m.group(1)
            if key.startswith("!"):
                return "${" + key[1:] + "}"
            if key in local:
                return cfn._s(self(local[key]))
            if "." in key and key.split(".")[0] not in self.params:
                lid, attr = key.split(".", 1)
                return cfn._s(self.getatt(lid, attr))
            r = self.ref(key)
            return "" if r is _NOVALUE else cfn._s(r if not isinstance(r, list) else ",".join(r))

        return re.sub(r"\$\{([^}]+)\}", one, text)

    def properties(self, logical: str) -> dict[str, Any]:
        r = self.tpl.get("Resources", {}).get(logical) or {}
        props = self(r.get("Properties") or {})
        return props if isinstance(props, dict) else {}


# ---------------------------------------------------------------- change analysis
def _cond_params(node: Any, tpl: dict[str, Any], seen: set[str] | None = None) -> set[str]:
    """Parameters that decide the conditions an expression uses (Fn::If, Condition)."""
    seen = seen if seen is not None else set()
    names: set[str] = set()
    cfn._if_conds(node, names)

    def conds_in(n: Any) -> None:
        if isinstance(n, dict):
            for k, v in n.items():
                if k == "Condition" and isinstance(v, str):
                    names.add(v)
                conds_in(v)
        elif isinstance(n, list):
            for i in n:
                conds_in(i)

    conds_in(node)
    out: set[str] = set()
    for c in names - seen:
        seen.add(c)
        expr = tpl.get("Conditions", {}).get(c)
        refs: set[str] = set()
        cfn._refs(expr, refs)
        out |= refs
        out |= _cond_params(expr, tpl, seen)
    return out


def _getatt_targets(node: Any, out: dict[str, str]) -> None:
    if isinstance(node, dict):
        for k, v in node.items():
            if k == "Fn::GetAtt":
                lid, attr = (v[0], v[1]) if isinstance(v, list) else tuple(v.split(".", 1))
                out[lid] = f"{lid}.{attr}"
            else:
                _getatt_targets(v, out)
    elif isinstance(node, list):
        for i in node:
            _getatt_targets(i, out)


def _tags(props: dict[str, Any], stack_tags: dict[str, str], rtype: str) -> dict[str, str]:
    out = {}
    if rtype in TAGGED_TYPES:
        out.update(stack_tags)
    for t in props.get("Tags") or []:
        if isinstance(t, dict) and "Key" in t:
            out[str(t["Key"])] = cfn._s(t.get("Value", ""))
    return out


def _norm(v: Any) -> Any:
    if isinstance(v, dict):
        return {k: _norm(x) for k, x in v.items()}
    if isinstance(v, list):
        return [_norm(x) for x in v]
    return cfn._s(v)


def analyze(st: Any, old_tpl: dict[str, Any], new_tpl: dict[str, Any], old_params: dict[str, str], new_params: dict[str, str], old_tags: dict[str, str], new_tags: dict[str, str]) -> list[dict[str, Any]]:
    """The ResourceChanges of an update from (old_tpl, old_params, old_tags) to the new ones: a
    real diff of the resolved properties, per property, with what caused it."""
    before = Resolver(st, old_tpl, old_params)
    after = Resolver(st, new_tpl, new_params)
    old_active = cfn.active_resources(old_tpl, old_params)
    new_active = cfn.active_resources(new_tpl, new_params)
    changed_params = {k for k in set(old_params) | set(new_params) if cfn._s(old_params.get(k)) != cfn._s(new_params.get(k))}
    order = [x for level in cfn.levels(new_tpl, new_active) for x in level]
    new_physical: set[str] = set()  # resources that get a new physical id (added or replaced)
    out: list[dict[str, Any]] = []
    for lid in order:
        rtype = new_tpl["Resources"][lid].get("Type", "")
        if lid not in old_active:
            out.append({"Action": "Add", "LogicalResourceId": lid, "ResourceType": rtype, "Scope": [], "Details": []})
            new_physical.add(lid)
            continue
        old_expr = (old_tpl["Resources"][lid].get("Properties") or {})
        new_expr = (new_tpl["Resources"][lid].get("Properties") or {})
        old_props = before.properties(lid)
        new_props = after.properties(lid)
        table = REQUIRES_RECREATION.get(rtype, {})
        details: list[dict[str, Any]] = []
        for p in sorted(set(old_props) | set(new_props) | set(old_expr) | set(new_expr)):
            if p == "Tags":
                continue
            expr = new_expr.get(p, old_expr.get(p))
            refs: set[str] = set()
            cfn._refs(expr, refs)
            atts: dict[str, str] = {}
            _getatt_targets(expr, atts)
            dynamic = sorted(r for r in refs if r in new_physical)
            differs = _norm(old_props.get(p)) != _norm(new_props.get(p))
            if not differs and not dynamic:
                continue
            rr = table.get(p, "Never")
            target = {"Attribute": "Properties", "Name": p, "RequiresRecreation": rr}
            found = False
            if old_expr.get(p) != new_expr.get(p):
                details.append({"Target": target, "Evaluation": "Static", "ChangeSource": "DirectModification"})
                found = True
            for cp in sorted(((refs | _cond_params(expr, new_tpl)) & changed_params) - set(new_tpl.get("Resources", {}))):
                details.append({"Target": target, "Evaluation": "Static", "ChangeSource": "ParameterReference", "CausingEntity": cp})
                found = True
            for r in dynamic:
                if r in atts:
                    details.append({"Target": target, "Evaluation": "Dynamic", "ChangeSource": "ResourceAttribute", "CausingEntity": atts[r]})
                else:
                    details.append({"Target": target, "Evaluation": "Dynamic", "ChangeSource": "ResourceReference", "CausingEntity": r})
                found = True
            if not found:
                details.append({"Target": target, "Evaluation": "Static", "ChangeSource": "DirectModification"})
        old_t = _tags(old_props, old_tags, rtype)
        new_t = _tags(new_props, new_tags, rtype)
        if old_t != new_t:
            target = {"Attribute": "Tags", "RequiresRecreation": "Never"}
            expr = new_expr.get("Tags")
            refs = set()
            cfn._refs(expr, refs)
            causes = sorted(((refs | _cond_params(expr, new_tpl)) & changed_params))
            if old_expr.get("Tags") != new_expr.get("Tags") or old_tags != new_tags or not causes:
                details.append({"Target": target, "Evaluation": "Static", "ChangeSource": "DirectModification"})
            for cp in causes:
                details.append({"Target": target, "Evaluation": "Static", "ChangeSource": "ParameterReference", "CausingEntity": cp})
        if not details:
            continue
        recreate = [d for d in details if d["Target"].get("RequiresRecreation") in ("Always", "Conditionally")]
        if any(d["Target"]["RequiresRecreation"] == "Always" and d["Evaluation"] == "Static" for d in recreate):
            replacement = "True"
        elif recreate:
            replacement = "Conditional"
        else:
            replacement = "False"
        change: dict[str, Any] = {
            "Action": "Modify",
            "LogicalResourceId": lid,
            "PhysicalResourceId": st.physical_id(lid) or st.res.get(lid, {}).get("PhysicalResourceId") or "",
            "ResourceType": rtype,
            "Replacement": replacement,
            "Scope": sorted({d["Target"]["Attribute"] for d in details}),
            "Details": details,
        }
        if replacement == "Conditional" and _replaces_at_execution(rtype, old_props, new_props):
            change["oms_replaces"] = True
        if replacement == "True" or change.get("oms_replaces"):
            new_physical.add(lid)
            name_prop = NAME_PROPERTY.get(rtype)
            if name_prop and new_props.get(name_prop) not in (None, "") and cfn._s(new_props.get(name_prop)) == cfn._s(old_props.get(name_prop)):
                change["oms_custom_named"] = True
        out.append(change)
    for lid in old_active:
        if lid not in new_active:
            out.append(
                {
                    "Action": "Remove",
                    "LogicalResourceId": lid,
                    "PhysicalResourceId": st.physical_id(lid) or st.res.get(lid, {}).get("PhysicalResourceId") or "",
                    "ResourceType": old_tpl["Resources"][lid].get("Type", ""),
                    "Scope": [],
                    "Details": [],
                }
            )
    return out


def _public_change(c: dict[str, Any]) -> dict[str, Any]:
    rc = {k: v for k, v in c.items() if not k.startswith("oms_")}
    if rc["Action"] != "Modify":
        rc.pop("Scope", None)
        rc.pop("Details", None)
    if not rc.get("PhysicalResourceId"):
        rc.pop("PhysicalResourceId", None)
    return rc


# ---------------------------------------------------------------- change sets
NO_CHANGES = "The submitted information didn't contain changes. Submit different information to create a change set."
_CS_NAME = re.compile(r"^[a-zA-Z][-a-zA-Z0-9]*$")


class ChangeSet:
    def __init__(self, st: Any, name: str, body: str, tpl: dict[str, Any], params: dict[str, str], tags: dict[str, str], token: str | None, description: str | None, extra: dict[str, Any]):
        self.st = st
        self.name = name
        self.id = f"arn:aws:cloudformation:{st.region}:{st.account_id}:changeSet/{name}/{uuid.uuid4()}"
        self.body, self.tpl, self.params, self.tags = body, tpl, params, tags
        self.token = token
        self.description = description
        self.extra = extra
        self.creation_time = state.now()
        self.status = "CREATE_PENDING"
        self.status_reason: str | None = None
        self.execution_status = "UNAVAILABLE"
        self.changes: list[dict[str, Any]] = []

    def summary(self) -> dict[str, Any]:
        d: dict[str, Any] = {
            "StackId": self.st.stack_id,
            "StackName": self.st.name,
            "ChangeSetId": self.id,
            "ChangeSetName": self.name,
            "ExecutionStatus": self.execution_status,
            "Status": self.status,
            "CreationTime": cfn.ts(self.creation_time),
            "IncludeNestedStacks": False,
        }
        if self.status_reason:
            d["StatusReason"] = self.status_reason
        if self.description:
            d["Description"] = self.description
        return d

    def describe(self) -> dict[str, Any]:
        d = self.summary()
        specs = self.tpl.get("Parameters", {}) or {}
        # moto's transformer turns the dict into ParameterKey/ParameterValue members
        d["Parameters"] = {k: (cfn.NO_ECHO_MASK if str(specs.get(k, {}).get("NoEcho", "")).lower() == "true" else v) for k, v in self.params.items()}
        d["Tags"] = [{"Key": k, "Value": v} for k, v in self.tags.items()]
        d["NotificationARNs"] = list(self.extra.get("notification_arns") or [])
        if self.extra.get("capabilities"):
            d["Capabilities"] = list(self.extra["capabilities"])
        # moto's transformer wraps each in a Change of Type Resource
        d["Changes"] = [_public_change(c) for c in self.changes] if self.status == "CREATE_COMPLETE" else []
        return d


def _all_change_sets(resp: CloudFormationResponse) -> list[ChangeSet]:
    return [cs for st in cfn._states_for(resp) for cs in st.change_sets]


def find_change_set(resp: CloudFormationResponse, name: str, stack_name: str | None) -> ChangeSet:
    if name.startswith("arn:"):
        for cs in _all_change_sets(resp):
            if cs.id == name:
                return cs
        raise change_set_not_found(name)
    if not stack_name:
        raise ValidationError(message="StackName must be specified if ChangeSetName is not specified as an ARN.")
    st = cfn.find_live(resp, stack_name)
    if st is None:
        raise ValidationError(message=f"Stack [{stack_name}] does not exist")
    for cs in st.change_sets:
        if cs.name == name:
            return cs
    raise change_set_not_found(name)


def create_change_set(self: CloudFormationResponse) -> ActionResult:
    state.advance()
    stack_name = self._get_param("StackName") or ""
    name = self._get_param("ChangeSetName") or ""
    cs_type = self._get_param("ChangeSetType") or "UPDATE"
    token = self._get_param("ClientToken")
    if not _CS_NAME.match(name) or len(name) > 128:
        raise ValidationError(
            message=f"1 validation error detected: Value '{name}' at 'changeSetName' failed to satisfy constraint: Member must satisfy regular expression pattern: [a-zA-Z][-a-zA-Z0-9]*"
        )
    if cs_type != "UPDATE":
        raise ValidationError(message=f"ChangeSetType {cs_type} is not supported by this emulator; only UPDATE change sets of existing stacks are.")
    st = cfn.find_live(self, stack_name)
    if st is None:
        raise ValidationError(message=f"Stack [{stack_name}] does not exist")
    for cs in st.change_sets:
        if cs.name == name:
            if token and cs.token == token:
                return ActionResult({"Id": cs.id, "StackId": st.stack_id})
            raise CfnFault("AlreadyExistsException", f"ChangeSet {name} already exists")
    body, tpl, params, tags = cfn.update_request(self, st)
    extra = {
        "capabilities": self._get_param("Capabilities", []) or [],
        "notification_arns": self._get_param("NotificationARNs", []) or st.extra.get("notification_arns", []),
        "role_arn": self._get_param("RoleARN"),
    }
    cs = ChangeSet(st, name, body, tpl, params, tags, token, self._get_param("Description"), extra)
    same = cfn.no_change(st, tpl, params, tags)
    changes = [] if same else analyze(st, st.tpl, tpl, st.params, params, st.tags, tags)
    st.change_sets.append(cs)
    delay = max(0.0, float(state.CONFIG.get("change_set_delay_seconds", 0.5)))
    t0 = cs.creation_time

    def in_progress(_due: float) -> None:
        if cs.status == "CREATE_PENDING":
            cs.status = "CREATE_IN_PROGRESS"

    def done(_due: float) -> None:
        if cs.status != "CREATE_IN_PROGRESS":
            return
        if same:
            cs.status = "FAILED"
            cs.status_reason = NO_CHANGES
            return
        cs.changes = changes
        cs.status = "CREATE_COMPLETE"
        if cs.execution_status == "UNAVAILABLE":
            cs.execution_status = "AVAILABLE"

    state.schedule(t0 + delay / 2, in_progress)
    state.schedule(t0 + delay, done)
    state.advance()
    return ActionResult({"Id": cs.id, "StackId": st.stack_id})


def describe_change_set(self: CloudFormationResponse) -> ActionResult:
    state.advance()
    cs = find_change_set(self, self._get_param("ChangeSetName") or "", self._get_param("StackName"))
    return ActionResult(cs.describe())


def list_change_sets(self: CloudFormationResponse) -> ActionResult:
    state.advance()
    name = self._get_param("StackName") or ""
    st = cfn.find_live(self, name)
    if st is None:
        raise ValidationError(message=f"Stack [{name}] does not exist")
    return ActionResult({"Summaries": [cs.summary() for cs in st.change_sets]})


def delete_change_set(self: CloudFormationResponse) -> EmptyResult:
    state.advance()
    cs = find_change_set(self, self._get_param("ChangeSetName") or "", self._get_param("StackName"))
    if cs.execution_status == "EXECUTE_IN_PROGRESS":
        raise CfnFault("InvalidChangeSetStatus", f"Cannot delete ChangeSet {cs.id} while it is in status {cs.execution_status}")
    cs.st.change_sets.remove(cs)
    cs.status = "DELETE_COMPLETE"
    return EmptyResult()


def execute_change_set(self: CloudFormationResponse) -> ActionResult:
    state.advance()
    cs = find_change_set(self, self._get_param("ChangeSetName") or "", self._get_param("StackName"))
    st = cs.st
    token = self._get_param("ClientRequestToken")
    if cs.execution_status != "AVAILABLE" or cs.status != "CREATE_COMPLETE":
        raise CfnFault(
            "InvalidChangeSetStatus",
            f"ChangeSet [{cs.id}] cannot be executed in its current status of [{cs.status}] and execution status of [{cs.execution_status}]",
        )
    if st.status not in cfn.UPDATABLE:
        raise CfnFault("InvalidChangeSetStatus", f"Stack:{st.stack_id} is in {st.status} state and can not be updated.")
    if str(self._get_param("DisableRollback", "")).lower() == "true":
        st.extra["disable_rollback"] = True
    cfn.start_update(st, cs.body, cs.tpl, cs.params, cs.tags, token, cs.extra.get("role_arn"), change_set=cs)
    state.advance()
    return ActionResult({})


def on_update_started(st: Any, change_set: ChangeSet | None) -> None:
    """ExecuteChangeSet "deletes all other change sets associated with the stack because they
    aren't valid for the updated stack"; an UpdateStack leaves them OBSOLETE ("because the stack
    was already updated")."""
    if change_set is not None:
        st.change_sets = [change_set]
        change_set.execution_status = "EXECUTE_IN_PROGRESS"
        st.executing_change_set = change_set
        return
    for cs in st.change_sets:
        if cs.execution_status in ("AVAILABLE", "UNAVAILABLE"):
            cs.execution_status = "OBSOLETE"


# ---------------------------------------------------------------- drift
_REMOVED = {"oms": "removed"}


def _path(p: str) -> list[str]:
    return [x for x in p.strip().strip("/").split("/") if x != ""]


_MISSING = object()


def _get(node: Any, parts: list[str]) -> Any:
    for x in parts:
        if isinstance(node, dict) and x in node:
            node = node[x]
        elif isinstance(node, list) and x.isdigit() and int(x) < len(node):
            node = node[int(x)]
        else:
            return _MISSING
    return node


def _set(node: Any, parts: list[str], value: Any) -> None:
    for x in parts[:-1]:
        if isinstance(node, dict):
            node = node.setdefault(x, {})
        elif isinstance(node, list) and x.isdigit() and int(x) < len(node):
            node = node[int(x)]
        else:
            return
    last = parts[-1]
    if isinstance(node, dict):
        if value is _REMOVED:
            node.pop(last, None)
        else:
            node[last] = value
    elif isinstance(node, list) and last.isdigit():
        i = int(last)
        if value is _REMOVED:
            if i < len(node):
                node.pop(i)
        elif i < len(node):
            node[i] = value
        else:
            node.append(value)


def _str(v: Any) -> str:
    if v is _MISSING or v is _REMOVED or v is None:
        return "null"
    if isinstance(v, (dict, list)):
        return json.dumps(v, sort_keys=True)
    return str(cfn._s(v))


def expected_properties(st: Any, logical: str) -> dict[str, Any]:
    return Resolver(st, st.tpl, st.params).properties(logical)


def make_drift(st: Any, logical: str, prop: str, value: Any) -> dict[str, Any]:
    """POST /_oms/drift: the resource's actual property at `prop` becomes `value` (null: removed),
    as if changed outside CloudFormation."""
    parts = _path(prop)
    if not parts:
        raise ValueError("property must name a property path, e.g. CacheNodeType or Tags/0/Value")
    at = _get(expected_properties(st, logical), parts)
    st.drift_overlays.setdefault(logical, {})["/" + "/".join(parts)] = {
        "value": _REMOVED if value is None else value,
        "expected_at": at if at is _MISSING else copy.deepcopy(at),
    }
    return {"stack_name": st.name, "resource": logical, "property": "/" + "/".join(parts), "value": value}


def _detect(st: Any, logical_ids: list[str] | None, at: float) -> list[dict[str, Any]]:
    out = []
    for logical, e in cfn._resource_rows(st):
        if logical_ids and logical not in logical_ids:
            continue
        if e.get("ResourceStatus") == "DELETE_COMPLETE":
            continue
        expected = expected_properties(st, logical)
        actual = copy.deepcopy(expected)
        diffs = []
        overlays = st.drift_overlays.get(logical, {})
        for path, ov in list(overlays.items()):
            parts = _path(path)
            cur = _get(expected, parts)
            then = ov["expected_at"]
            if (then is _MISSING) != (cur is _MISSING) or (cur is not _MISSING and _norm(then) != _norm(cur)):
                # A stack update has set this property since: CloudFormation rewrote it.
                overlays.pop(path)
                continue
            _set(actual, parts, ov["value"])
            if ov["value"] is _REMOVED:
                kind = "REMOVE"
            elif cur is _MISSING:
                kind = "ADD"
            else:
                if _norm(cur) == _norm(ov["value"]):
                    continue
                kind = "NOT_EQUAL"
            diffs.append({"PropertyPath": path, "ExpectedValue": _str(cur), "ActualValue": _str(ov["value"]), "DifferenceType": kind})
        status = "MODIFIED" if diffs else "IN_SYNC"
        row: dict[str, Any] = {
            "StackId": st.stack_id,
            "LogicalResourceId": logical,
            "ResourceType": e.get("ResourceType", ""),
            "ExpectedProperties": json.dumps(expected, sort_keys=True, default=str),
            "ActualProperties": json.dumps(actual, sort_keys=True, default=str),
            "StackResourceDriftStatus": status,
            "Timestamp": cfn.ts(at),
        }
        if e.get("PhysicalResourceId"):
            row["PhysicalResourceId"] = e["PhysicalResourceId"]
        if diffs:
            row["PropertyDifferences"] = diffs
        out.append(row)
        st.res_drift[logical] = {"status": status, "time": at}
    return out


def detect_stack_drift(self: CloudFormationResponse) -> ActionResult:
    state.advance()
    name = self._get_param("StackName") or ""
    st = cfn.find_live(self, name)
    if st is None:
        raise ValidationError(message=f"Stack with id {name} does not exist")
    logical_ids = self._get_param("LogicalResourceIds", []) or []
    det_id = str(uuid.uuid4())
    det = {"id": det_id, "st": st, "started": state.now(), "status": "DETECTION_IN_PROGRESS"}
    state.DRIFT_DETECTIONS[det_id] = det
    delay = max(0.0, float(state.CONFIG.get("drift_delay_seconds", 0.5)))

    def done(due: float) -> None:
        rows = _detect(st, logical_ids, due)
        drifted = sum(1 for r in rows if r["StackResourceDriftStatus"] != "IN_SYNC")
        det.update({"status": "DETECTION_COMPLETE", "drifted": drifted, "time": due})
        st.drift_status = "DRIFTED" if drifted else "IN_SYNC"
        st.drift_time = due
        st.drift_results = rows

    state.schedule(det["started"] + delay, done)
    state.advance()
    return ActionResult({"StackDriftDetectionId": det_id})


def describe_stack_drift_detection_status(self: CloudFormationResponse) -> ActionResult:
    state.advance()
    det_id = self._get_param("StackDriftDetectionId") or ""
    det = state.DRIFT_DETECTIONS.get(det_id)
    if det is None or det["st"].account_id != self.current_account or det["st"].region != self.region:
        raise ValidationError(message=f"Drift detection with id {det_id} does not exist")
    d: dict[str, Any] = {
        "StackId": det["st"].stack_id,
        "StackDriftDetectionId": det_id,
        "DetectionStatus": det["status"],
        "Timestamp": cfn.ts(det.get("time", det["started"])),
    }
    if det["status"] == "DETECTION_COMPLETE":
        d["StackDriftStatus"] = "DRIFTED" if det["drifted"] else "IN_SYNC"
        d["DriftedStackResourceCount"] = det["drifted"]
    return ActionResult(d)


def describe_stack_resource_drifts(self: CloudFormationResponse) -> ActionResult:
    state.advance()
    name = self._get_param("StackName") or ""
    st = cfn.find_live(self, name)
    if st is None:
        raise ValidationError(message=f"Stack with id {name} does not exist")
    filters = self._get_param("StackResourceDriftStatusFilters", []) or []
    rows = [r for r in getattr(st, "drift_results", []) if not filters or r["StackResourceDriftStatus"] in filters]
    return ActionResult({"StackResourceDrifts": rows})


# ---------------------------------------------------------------- ContinueUpdateRollback
def continue_update_rollback(self: CloudFormationResponse) -> ActionResult:
    state.advance()
    name = self._get_param("StackName") or ""
    st = cfn.find_live(self, name)
    if st is None:
        raise ValidationError(message=f"Stack with id {name} does not exist")
    if st.status != "UPDATE_ROLLBACK_FAILED":
        raise ValidationError(message=f"Stack:{st.stack_id} is in {st.status} state and can not continue update rollback.")
    skip = self._get_param("ResourcesToSkip", []) or []
    bad = [r for r in skip if r not in st.rollback_failed]
    if bad:
        raise ValidationError(
            message=f"Resources [{', '.join(bad)}] cannot be skipped: only resources in UPDATE_FAILED state because the rollback failed can be skipped."
        )
    now = state.now()
    st.gen += 1
    st.op = "update"
    st.token = self._get_param("ClientRequestToken")
    st.stack_event(now, "UPDATE_ROLLBACK_IN_PROGRESS", "User Initiated")
    for r in skip:
        # "CloudFormation sets the status of the specified resources to UPDATE_COMPLETE and
        # continues to roll back the stack."
        st.res_event(now, r, "UPDATE_COMPLETE")
    lv = [[r for r in level if r not in skip] for level in st.rollback_left]
    lv = [level for level in lv if level]
    st.rollback_left = []
    st.rollback_failed = set()
    cfn.plan_rollback(st, now, lv, cfn._take_fail(st.name, "update_rollback"))
    state.advance()
    return ActionResult({})


def install() -> None:
    for fn in (
        create_change_set,
        describe_change_set,
        list_change_sets,
        delete_change_set,
        execute_change_set,
        detect_stack_drift,
        describe_stack_drift_detection_status,
        describe_stack_resource_drifts,
        continue_update_rollback,
    ):
        setattr(CloudFormationResponse, fn.__name__, cfn._in_callers_account(fn))
