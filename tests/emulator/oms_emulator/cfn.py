"""Asynchronous, event-producing CloudFormation on top of moto's stack engine.

moto still parses templates and creates/updates/deletes the resources in its
backends; this module owns what clients *see*: stack status, events, resource
statuses, parameters, outputs and exports, driven by a per-stack timeline that
state.advance() plays forward before every request.

Handlers are installed as methods of moto's CloudFormationResponse.
"""
from __future__ import annotations

import functools
import json
import logging
import re
import uuid
from datetime import datetime, timezone
from typing import Any

import yaml
from moto.cloudformation import parsing
from moto.cloudformation.exceptions import AlreadyExistsException, ValidationError
from moto.cloudformation.models import cloudformation_backends
from moto.cloudformation.responses import CloudFormationResponse
from moto.cloudformation.utils import yaml_tag_constructor
from moto.core.exceptions import ServiceException
from moto.core.responses import ActionResult, EmptyResult

from . import state
from .models import OmsReplicationGroup

log = logging.getLogger("oms_emulator")

IN_PROGRESS_SUFFIX = "_IN_PROGRESS"
NO_ECHO_MASK = "****"  # what DescribeStacks returns for a NoEcho parameter
UPDATABLE = {"CREATE_COMPLETE", "UPDATE_COMPLETE", "UPDATE_ROLLBACK_COMPLETE", "IMPORT_COMPLETE", "IMPORT_ROLLBACK_COMPLETE"}
DEFAULT_REASONS = {
    "create": "Resource handler returned message: \"Cache subnet group or security group is invalid (Service: ElastiCache, Status Code: 400, Request ID: 00000000-0000-0000-0000-000000000000)\" (RequestToken: 00000000-0000-0000-0000-000000000000, HandlerErrorCode: InvalidRequest)",
    "update": "Resource handler returned message: \"Insufficient cache cluster capacity (Service: ElastiCache, Status Code: 400, Request ID: 00000000-0000-0000-0000-000000000000)\" (RequestToken: 00000000-0000-0000-0000-000000000000, HandlerErrorCode: ServiceLimitExceeded)",
    "update_rollback": "Resource handler returned message: \"Replication group is not in a valid state for this operation (Service: ElastiCache, Status Code: 400, Request ID: 00000000-0000-0000-0000-000000000000)\" (RequestToken: 00000000-0000-0000-0000-000000000000, HandlerErrorCode: InvalidRequest)",
    "delete": "Resource handler returned message: \"Replication group is in use by a snapshot operation (Service: ElastiCache, Status Code: 400, Request ID: 00000000-0000-0000-0000-000000000000)\" (RequestToken: 00000000-0000-0000-0000-000000000000, HandlerErrorCode: ResourceConflict)",
}


# Pseudo parameters for Conditions and Rules: those of the caller's account and region, set
# before each handler runs (the global lock serialises handlers).
PSEUDO: dict[str, str] = {"AWS::Region": "us-east-1", "AWS::AccountId": "123456789012", "AWS::Partition": "aws"}


def ts(t: float) -> datetime:
    d = datetime.fromtimestamp(t, timezone.utc).replace(tzinfo=None)
    return d.replace(microsecond=(d.microsecond // 1000) * 1000)  # AWS reports milliseconds


def iso(t: float) -> str:
    return datetime.fromtimestamp(t, timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.") + f"{int((t % 1) * 1000):03d}Z"


def parse_template(body: str) -> dict[str, Any]:
    yaml.add_multi_constructor("", yaml_tag_constructor)
    try:
        d = json.loads(body)
    except ValueError:
        try:
            d = yaml.load(body, Loader=yaml.Loader)
        except Exception:
            raise ValidationError(message="Template format error: JSON not well-formed. (line 1,  column 1)")
    if not isinstance(d, dict):
        raise ValidationError(message="Template format error: unsupported structure.")
    if not d.get("Resources"):
        raise ValidationError(message="Template format error: At least one Resources member must be defined.")
    return d


# ---------------------------------------------------------------- template analysis
def _refs(node: Any, out: set[str]) -> None:
    if isinstance(node, dict):
        for k, v in node.items():
            if k == "Ref" and isinstance(v, str):
                out.add(v)
            elif k == "Fn::GetAtt":
                if isinstance(v, list) and v:
                    out.add(v[0])
                elif isinstance(v, str):
                    out.add(v.split(".")[0])
            elif k == "Fn::Sub":
                tpl = v[0] if isinstance(v, list) else v
                if isinstance(tpl, str):
                    for m in re.findall(r"\$\{([^!}][^}]*)\}", tpl):
                        out.add(m.split(".")[0])
                if isinstance(v, list) and len(v) > 1:
                    _refs(v[1], out)
            else:
                _refs(v, out)
    elif isinstance(node, list):
        for i in node:
            _refs(i, out)


def eval_expr(node: Any, params: dict[str, str], tpl: dict[str, Any], conds: dict[str, bool]) -> Any:
    """Small evaluator for Conditions and Rules (string semantics, as AWS)."""
    if isinstance(node, dict) and len(node) == 1:
        k, v = next(iter(node.items()))
        if k == "Ref":
            if v in params:
                return params[v]
            return PSEUDO.get(v, "")
        if k == "Condition":
            return cond_value(v, params, tpl, conds)
        if k == "Fn::Equals":
            a, b = (eval_expr(x, params, tpl, conds) for x in v)
            return _s(a) == _s(b)
        if k == "Fn::Not":
            return not eval_expr(v[0], params, tpl, conds)
        if k == "Fn::And":
            return all(eval_expr(x, params, tpl, conds) for x in v)
        if k == "Fn::Or":
            return any(eval_expr(x, params, tpl, conds) for x in v)
        if k == "Fn::Contains":
            lst, val = eval_expr(v[0], params, tpl, conds), eval_expr(v[1], params, tpl, conds)
            return _s(val) in [_s(x) for x in (lst or [])]
        if k == "Fn::EachMemberEquals":
            lst, val = eval_expr(v[0], params, tpl, conds), eval_expr(v[1], params, tpl, conds)
            return all(_s(x) == _s(val) for x in (lst or []))
        if k == "Fn::EachMemberIn":
            a, b = eval_expr(v[0], params, tpl, conds), eval_expr(v[1], params, tpl, conds)
            return all(_s(x) in [_s(y) for y in (b or [])] for x in (a or []))
        if k == "Fn::If":
            c, t, f = v
            return eval_expr(t if cond_value(c, params, tpl, conds) else f, params, tpl, conds)
        if k == "Fn::FindInMap":
            m, a, b = (eval_expr(x, params, tpl, conds) for x in v)
            return tpl.get("Mappings", {}).get(m, {}).get(a, {}).get(b)
    if isinstance(node, list):
        return [eval_expr(x, params, tpl, conds) for x in node]
    return node


def _s(x: Any) -> Any:
    if isinstance(x, bool):
        return str(x).lower()
    if isinstance(x, (int, float)):
        return str(int(x)) if float(x).is_integer() else str(x)
    return x


def cond_value(name: str, params: dict[str, str], tpl: dict[str, Any], conds: dict[str, bool]) -> bool:
    if name not in conds:
        expr = tpl.get("Conditions", {}).get(name)
        conds[name] = bool(eval_expr(expr, params, tpl, conds)) if expr is not None else False
    return conds[name]


def active_resources(tpl: dict[str, Any], params: dict[str, str]) -> list[str]:
    conds: dict[str, bool] = {}
    out = []
    for lid, r in tpl.get("Resources", {}).items():
        c = r.get("Condition")
        if c and not cond_value(c, params, tpl, conds):
            continue
        out.append(lid)
    return out


def levels(tpl: dict[str, Any], ids: list[str]) -> list[list[str]]:
    res = tpl.get("Resources", {})
    idset = set(ids)
    deps: dict[str, set[str]] = {}
    for lid in ids:
        d: set[str] = set()
        _refs(res[lid].get("Properties", {}), d)
        dep_on = res[lid].get("DependsOn", [])
        if isinstance(dep_on, str):
            dep_on = [dep_on]
        d |= set(dep_on)
        deps[lid] = (d & idset) - {lid}
    lvl: dict[str, int] = {}

    def get(l: str, seen: tuple = ()) -> int:
        if l in lvl:
            return lvl[l]
        if l in seen:
            return 0
        v = 0 if not deps[l] else 1 + max(get(x, seen + (l,)) for x in deps[l])
        lvl[l] = v
        return v

    for lid in ids:
        get(lid)
    n = (max(lvl.values()) + 1) if lvl else 0
    return [[l for l in ids if lvl[l] == i] for i in range(n)]


# ---------------------------------------------------------------- parameters & rules
def _num(v: Any) -> float | None:
    try:
        return float(str(v).strip())
    except ValueError:
        return None


def _fmt(v: Any) -> str:
    f = float(v)
    return str(int(f)) if f.is_integer() else str(v)


def _constraint_error(name: str, spec: dict[str, Any], reason: str) -> ValidationError:
    if state.CONFIG.get("constraint_descriptions", True) and spec.get("ConstraintDescription"):
        reason = spec["ConstraintDescription"]
    return ValidationError(message=f"Parameter '{name}' {reason}")


def validate_value(name: str, spec: dict[str, Any], value: str) -> None:
    ptype = spec.get("Type", "String")
    values = [value]
    if ptype == "CommaDelimitedList" or ptype.startswith("List<"):
        values = [x.strip() for x in value.split(",")] if value != "" else []
    is_num = ptype == "Number" or ptype == "List<Number>"
    for v in values:
        if is_num:
            n = _num(v)
            if n is None:
                raise ValidationError(message=f"Parameter '{name}' must be a number")
            if "MinValue" in spec and n < float(spec["MinValue"]):
                raise _constraint_error(name, spec, f"must be a number not less than {_fmt(spec['MinValue'])}")
            if "MaxValue" in spec and n > float(spec["MaxValue"]):
                raise _constraint_error(name, spec, f"must be a number not greater than {_fmt(spec['MaxValue'])}")
        if "AllowedValues" in spec:
            allowed = [_s(a) for a in spec["AllowedValues"]]
            ok = v in allowed or (is_num and _num(v) is not None and any(_num(a) == _num(v) for a in allowed))
            if not ok:
                raise _constraint_error(name, spec, "must be one of AllowedValues")
        if not is_num:
            if "AllowedPattern" in spec and not re.fullmatch(spec["AllowedPattern"], v):
                raise _constraint_error(name, spec, f"must match pattern {spec['AllowedPattern']}")
            if "MinLength" in spec and len(v) < int(spec["MinLength"]):
                raise _constraint_error(name, spec, f"must contain at least {int(spec['MinLength'])} characters")
            if "MaxLength" in spec and len(v) > int(spec["MaxLength"]):
                raise _constraint_error(name, spec, f"must contain at most {int(spec['MaxLength'])} characters")


def resolve_params(tpl: dict[str, Any], given: list[dict[str, Any]], previous: dict[str, str] | None) -> dict[str, str]:
    specs = tpl.get("Parameters", {}) or {}
    gmap: dict[str, dict[str, Any]] = {}
    for p in given:
        gmap[p.get("ParameterKey")] = p
    unknown = [k for k in gmap if k not in specs]
    if unknown:
        raise ValidationError(message=f"Parameters: [{', '.join(unknown)}] do not exist in the template")
    out: dict[str, str] = {}
    missing = []
    for name, spec in specs.items():
        p = gmap.get(name)
        if p is not None and str(p.get("UsePreviousValue", "")).lower() == "true":
            if p.get("ParameterValue") not in (None, ""):
                raise ValidationError(
                    message=f"Invalid input for parameter key {name}. Cannot specify usePreviousValue as true and non empty value for a parameter"
                )
            if previous is None or name not in previous:
                raise ValidationError(
                    message=f"Invalid input for parameter key {name}. Cannot specify usePreviousValue as true for a parameter key not in the previous template"
                )
            out[name] = previous[name]
        elif p is not None and p.get("ParameterValue") is not None:
            out[name] = str(p["ParameterValue"])
        elif "Default" in spec:
            out[name] = _s(spec["Default"]) if not isinstance(spec["Default"], list) else ",".join(map(str, spec["Default"]))
        else:
            missing.append(name)
    if missing:
        raise ValidationError(message=f"Parameters: [{', '.join(missing)}] must have values")
    for name, spec in specs.items():
        validate_value(name, spec, out[name])
    return out


def check_rules(tpl: dict[str, Any], params: dict[str, str]) -> None:
    conds: dict[str, bool] = {}
    for _rule_name, rule in (tpl.get("Rules") or {}).items():
        rc = rule.get("RuleCondition")
        if rc is not None and not eval_expr(rc, params, tpl, conds):
            continue
        for a in rule.get("Assertions", []):
            if not eval_expr(a.get("Assert"), params, tpl, conds):
                raise ValidationError(message=a.get("AssertDescription") or "Template validation error: Assertion failed")


def _norm_params(tpl: dict[str, Any], params: dict[str, str]) -> dict[str, Any]:
    specs = tpl.get("Parameters", {}) or {}
    out: dict[str, Any] = {}
    for k, v in params.items():
        if specs.get(k, {}).get("Type") == "Number" and _num(v) is not None:
            out[k] = _num(v)
        else:
            out[k] = v
    return out


# ---------------------------------------------------------------- stack state
class StackState:
    def __init__(self, stack: Any, body: str, tpl: dict[str, Any], params: dict[str, str], tags: dict[str, str], token: str | None, extra: dict[str, Any]):
        self.stack = stack
        self.stack_id = stack.stack_id
        self.name = stack.name
        self.account_id = stack.account_id
        self.region = stack.region_name
        self.status = "CREATE_IN_PROGRESS"
        self.status_reason: str | None = None
        self.events: list[dict[str, Any]] = []
        self.res: dict[str, dict[str, Any]] = {}
        self.gen = 0
        self.op = "create"
        self.token = token
        self.create_token = token
        self.creation_time = state.now()
        self.last_updated_time: float | None = None
        self.deletion_time: float | None = None
        self.body = body
        self.tpl = tpl
        self.params = params
        self.tags = tags
        self.outputs: list[dict[str, Any]] | None = None
        self.extra = extra
        self.prev: dict[str, Any] | None = None
        self.deleted = False
        self.touched: set[str] = set()
        # drift (cfn_more): the stack's last detection, per-resource results, console-made changes
        self.drift_status = "NOT_CHECKED"
        self.drift_time: float | None = None
        self.res_drift: dict[str, dict[str, Any]] = {}
        self.drift_overlays: dict[str, dict[str, Any]] = {}
        # change sets (cfn_more), oldest first; the one being executed
        self.change_sets: list[Any] = []
        self.executing_change_set: Any = None
        # an UPDATE_ROLLBACK_FAILED stack: the levels still to roll back, the resources that failed
        self.rollback_left: list[list[str]] = []
        self.rollback_failed: set[str] = set()

    # ------------------------------------------------------------ events
    def _base_event(self, t: float, logical: str, rtype: str, physical: str | None, status: str, reason: str | None) -> dict[str, Any]:
        ev: dict[str, Any] = {
            "StackId": self.stack_id,
            "StackName": self.name,
            "LogicalResourceId": logical,
            "PhysicalResourceId": physical if physical is not None else "",
            "ResourceType": rtype,
            "Timestamp": ts(t),
            "ResourceStatus": status,
        }
        if reason:
            ev["ResourceStatusReason"] = reason
        if self.token:
            ev["ClientRequestToken"] = self.token
        return ev

    def stack_event(self, t: float, status: str, reason: str | None = None) -> None:
        ev = self._base_event(t, self.name, "AWS::CloudFormation::Stack", self.stack_id, status, reason)
        ev["EventId"] = str(uuid.uuid4())
        self.events.append(ev)
        self.status = status
        self.status_reason = reason
        self.stack.status = status

    def physical_id(self, logical: str) -> str | None:
        r = self.stack.resource_map._parsed_resources.get(logical)
        pid = getattr(r, "physical_resource_id", None)
        return pid if isinstance(pid, str) else None

    def rtype(self, logical: str) -> str:
        return self.tpl.get("Resources", {}).get(logical, {}).get("Type") or self.res.get(logical, {}).get("ResourceType", "AWS::CloudFormation::CustomResource")

    def res_event(self, t: float, logical: str, status: str, reason: str | None = None, physical: str | None = "auto", record: bool = True) -> None:
        """An event of resource `logical`; with record=False the resource's own row (status,
        physical id) stays as it is (the events of a replaced, old physical resource)."""
        if physical == "auto":
            physical = self.physical_id(logical) or self.res.get(logical, {}).get("PhysicalResourceId")
        rtype = self.rtype(logical)
        ev = self._base_event(t, logical, rtype, physical, status, reason)
        eid = f"{logical}-{status}-{iso(t)}"
        if any(e["EventId"] == eid for e in self.events[-20:]):
            eid = f"{logical}-{uuid.uuid4()}"
        ev["EventId"] = eid
        self.events.append(ev)
        if not record:
            return
        entry = self.res.setdefault(logical, {})
        entry.update({"ResourceType": rtype, "ResourceStatus": status, "Timestamp": ts(t), "ResourceStatusReason": reason})
        if physical:
            entry["PhysicalResourceId"] = physical
        self._on_resource_status(logical, status)

    def _on_resource_status(self, logical: str, status: str) -> None:
        r = self.stack.resource_map._parsed_resources.get(logical)
        if isinstance(r, OmsReplicationGroup):
            if status == "CREATE_IN_PROGRESS":
                r.status = "creating"
            elif status == "UPDATE_IN_PROGRESS":
                r.status = "modifying"
            elif status == "DELETE_IN_PROGRESS":
                r.status = "deleting"
            elif status in ("CREATE_COMPLETE", "UPDATE_COMPLETE", "UPDATE_FAILED", "DELETE_FAILED"):
                r.status = "available"
            elif status == "CREATE_FAILED":
                r.status = "create-failed"
            r.on_stack_status(status)
        hook = getattr(r, "oms_resource_status", None)
        if hook is not None:
            hook(status)

    # ------------------------------------------------------------ moto helpers
    def moto_delete(self, logical: str) -> None:
        rm = self.stack.resource_map
        r = rm._parsed_resources.get(logical)
        if logical not in rm._resource_json_map or r is None or not hasattr(r, "logical_resource_id"):
            rm._parsed_resources.pop(logical, None) if logical in rm._resource_json_map else None
            return
        try:
            rm._delete_resource(r, rm._resource_json_map[logical])
        except Exception as e:  # noqa: BLE001
            log.warning("deleting %s of %s: %s", logical, self.name, e)
        rm._parsed_resources.pop(logical, None)

    def moto_existing(self) -> list[str]:
        rm = self.stack.resource_map
        return [l for l in rm._resource_json_map if hasattr(rm._parsed_resources.get(l), "logical_resource_id")]

    def remove_exports(self) -> None:
        backend = cloudformation_backends[self.account_id][self.region]
        for name in [n for n, e in backend.exports.items() if e.exporting_stack_id == self.stack_id]:
            backend.exports.pop(name, None)

    def compute_outputs(self) -> list[dict[str, Any]] | None:
        rm = self.stack.resource_map
        outs = []
        conds = rm.lazy_condition_map
        for key, o in (self.tpl.get("Outputs") or {}).items():
            if "Condition" in o and not conds.get(o["Condition"]):
                continue
            try:
                val = parsing.clean_json(o.get("Value"), rm)
            except Exception as e:  # noqa: BLE001
                log.warning("output %s of %s: %s", key, self.name, e)
                continue
            if val is None:
                continue
            if isinstance(val, list):
                val = ",".join(map(str, val))
            d: dict[str, Any] = {"OutputKey": key, "OutputValue": str(val)}
            if o.get("Description"):
                d["Description"] = o["Description"]
            if o.get("Export"):
                try:
                    d["ExportName"] = str(parsing.clean_json(o["Export"].get("Name"), rm))
                except Exception:  # noqa: BLE001
                    pass
            outs.append(d)
        return outs or None

    def sync_exports(self) -> None:
        from moto.cloudformation.parsing import Export

        backend = cloudformation_backends[self.account_id][self.region]
        self.remove_exports()
        for o in self.outputs or []:
            if o.get("ExportName"):
                backend.exports[o["ExportName"]] = Export(self.stack_id, o["ExportName"], o["OutputValue"])

    # ------------------------------------------------------------ describe
    def shown_params(self) -> list[dict[str, str]]:
        """Parameters as DescribeStacks shows them: NoEcho values masked (the real ones stay
        in self.params, for UsePreviousValue)."""
        specs = self.tpl.get("Parameters", {}) or {}
        return [
            {"ParameterKey": k, "ParameterValue": NO_ECHO_MASK if str(specs.get(k, {}).get("NoEcho", False)).lower() == "true" else v}
            for k, v in self.params.items()
        ]

    def describe(self) -> dict[str, Any]:
        d: dict[str, Any] = {
            "StackId": self.stack_id,
            "StackName": self.name,
            "Parameters": self.shown_params(),
            "CreationTime": ts(self.creation_time),
            "StackStatus": self.status,
            "DisableRollback": bool(self.extra.get("disable_rollback", False)),
            "NotificationARNs": list(self.extra.get("notification_arns", [])),
            "Tags": dict(self.tags),  # moto's response transformer turns the dict into Key/Value members
            "EnableTerminationProtection": False,
            "DriftInformation": self.drift_information(),
        }
        if self.tpl.get("Description"):
            d["Description"] = self.tpl["Description"]
        if self.last_updated_time:
            d["LastUpdatedTime"] = ts(self.last_updated_time)
        if self.deletion_time:
            d["DeletionTime"] = ts(self.deletion_time)
        if self.status_reason:
            d["StackStatusReason"] = self.status_reason
        if self.extra.get("capabilities"):
            d["Capabilities"] = list(self.extra["capabilities"])
        if self.extra.get("role_arn"):
            d["RoleARN"] = self.extra["role_arn"]
        if self.extra.get("timeout"):
            d["TimeoutInMinutes"] = int(self.extra["timeout"])
        if self.outputs:
            d["Outputs"] = self.outputs
        return d

    def drift_information(self) -> dict[str, Any]:
        d: dict[str, Any] = {"StackDriftStatus": self.drift_status}
        if self.drift_time is not None:
            d["LastCheckTimestamp"] = ts(self.drift_time)
        return d

    def summary(self) -> dict[str, Any]:
        d: dict[str, Any] = {
            "StackId": self.stack_id,
            "StackName": self.name,
            "CreationTime": ts(self.creation_time),
            "StackStatus": self.status,
            "DriftInformation": self.drift_information(),
        }
        if self.tpl.get("Description"):
            d["TemplateDescription"] = self.tpl["Description"]
        if self.last_updated_time:
            d["LastUpdatedTime"] = ts(self.last_updated_time)
        if self.deletion_time:
            d["DeletionTime"] = ts(self.deletion_time)
        if self.status_reason:
            d["StackStatusReason"] = self.status_reason
        return d


# ---------------------------------------------------------------- timeline helpers
def _guard(st: StackState, fn: Any) -> Any:
    gen = st.gen

    def run(due: float) -> None:
        if st.gen == gen:
            fn(due)

    return run


def _slots(t0: float, d: float, n: int) -> list[tuple[float, float]]:
    if n == 0:
        return []
    step = d / n
    return [(t0 + i * step, t0 + (i + 1) * step) for i in range(n)]


def _tiny(a: float, b: float) -> float:
    return a + min(0.001, (b - a) / 10.0)


def _fail_reason(spec: dict[str, str], op: str, rtype: str | None = None) -> str:
    if spec.get("reason"):
        return spec["reason"]
    if rtype == "AWS::DynamoDB::Table":
        from .dynamodb import DEFAULT_REASONS as TABLE_REASONS

        return TABLE_REASONS[op]
    return DEFAULT_REASONS[op]


def _delete_refusal(st: "StackState", logical: str) -> str | None:
    """Why the service refuses to delete this resource now (e.g. a DynamoDB table with deletion
    protection), as the resource's DELETE_FAILED reason; None when it may be deleted."""
    r = st.stack.resource_map._parsed_resources.get(logical)
    hook = getattr(r, "oms_delete_refusal", None)
    return hook() if hook is not None else None


def _take_fail(name: str, op: str) -> dict[str, str] | None:
    spec = state.FAILS.pop((name, op), None)
    # Armed with "times": N, it stays armed for the next N-1 such operations.
    left = int((spec or {}).get("times", 1)) - 1
    if spec is not None and left > 0:
        state.FAILS[(name, op)] = {**spec, "times": left}
    return spec


def _fail_target(spec: dict[str, str] | None, candidates: list[str]) -> str | None:
    if spec is None:
        return None
    want = spec.get("resource") or "RedisReplicationGroup"
    if want in candidates:
        return want
    return candidates[-1] if candidates else want


# ---------------------------------------------------------------- create
def plan_create(st: StackState, t0: float, fail: dict[str, str] | None) -> None:
    d = state.stack_delay(st.name)
    ids = active_resources(st.tpl, st.params)
    lv = levels(st.tpl, ids)
    target = _fail_target(fail, [x for level in lv for x in level])
    st.stack_event(t0, "CREATE_IN_PROGRESS", "User Initiated")
    for (a, b), level in zip(_slots(t0, d, len(lv)), lv):
        def start(due: float, level: list[str] = level) -> None:
            for r in level:
                st.res_event(due, r, "CREATE_IN_PROGRESS", physical=None)

        def initiated(due: float, level: list[str] = level) -> None:
            for r in level:
                st.res_event(due, r, "CREATE_IN_PROGRESS", "Resource creation Initiated")

        def end(due: float, level: list[str] = level) -> None:
            if target in level:
                create_failed(st, due, level, target, _fail_reason(fail or {}, "create", st.rtype(target)))
                return
            for r in level:
                st.res_event(due, r, "CREATE_COMPLETE")

        state.schedule(a, _guard(st, start))
        state.schedule(_tiny(a, b), _guard(st, initiated))
        state.schedule(b, _guard(st, end))

    def final(due: float) -> None:
        st.outputs = st.compute_outputs()
        st.sync_exports()
        st.stack_event(due, "CREATE_COMPLETE")
        st.op = None

    state.schedule(t0 + d, _guard(st, final))


def create_failed(st: StackState, due: float, level: list[str], target: str, reason: str) -> None:
    st.gen += 1
    failed = []
    for r in level:
        if r == target:
            st.res_event(due, r, "CREATE_FAILED", reason)
        else:
            st.res_event(due, r, "CREATE_FAILED", "Resource creation cancelled")
        failed.append(r)
    if target not in level:
        st.res_event(due, target, "CREATE_FAILED", reason)
        failed.append(target)
    names = ", ".join(sorted(failed))
    if st.extra.get("disable_rollback"):
        st.stack_event(due, "CREATE_FAILED", f"The following resource(s) failed to create: [{names}]. ")
        st.op = None
        return
    st.stack_event(due, "ROLLBACK_IN_PROGRESS", f"The following resource(s) failed to create: [{names}]. Rollback requested by user.")
    st.remove_exports()
    st.stack.resource_map._oms_no_create = True
    touched = [l for l in st.res if st.res[l]["ResourceStatus"] in ("CREATE_COMPLETE", "CREATE_FAILED", "CREATE_IN_PROGRESS")]
    plan_removal(st, due, touched, final_status="ROLLBACK_COMPLETE", final_reason=None, fail=None, op="rollback")


def plan_removal(st: StackState, t0: float, logical_ids: list[str], final_status: str, final_reason: str | None, fail: dict[str, str] | None, op: str = "delete") -> None:
    """Delete logical_ids in reverse dependency order over the stack delay,
    then delete anything left silently and emit the final stack status."""
    d = state.stack_delay(st.name)
    all_ids = list(st.tpl.get("Resources", {}).keys())
    lv = [list(x) for x in reversed(levels(st.tpl, [l for l in all_ids if l in logical_ids]))]
    target = _fail_target(fail, [x for level in lv for x in level])
    for (a, b), level in zip(_slots(t0, d, len(lv)), lv):
        def start(due: float, level: list[str] = level) -> None:
            for r in level:
                st.res_event(due, r, "DELETE_IN_PROGRESS")

        def end(due: float, level: list[str] = level) -> None:
            failed: dict[str, str] = {}
            if target is not None and target in level:
                failed[target] = _fail_reason(fail or {}, "delete", st.rtype(target))
            if op == "delete":
                # The service refuses (deletion protection, a backup in progress): DELETE_FAILED
                # with its message, and the resource stays.
                for r in level:
                    why = None if r in failed else _delete_refusal(st, r)
                    if why:
                        failed[r] = why
            if failed:
                st.gen += 1
                for r in level:
                    if r in failed:
                        st.res_event(due, r, "DELETE_FAILED", failed[r])
                    else:
                        st.moto_delete(r)
                        st.res_event(due, r, "DELETE_COMPLETE")
                st.stack_event(due, "DELETE_FAILED", f"The following resource(s) failed to delete: [{', '.join(sorted(failed))}]. ")
                st.op = None
                return
            for r in level:
                pid = st.physical_id(r) or st.res.get(r, {}).get("PhysicalResourceId")
                st.moto_delete(r)
                st.res_event(due, r, "DELETE_COMPLETE", physical=pid)

        state.schedule(a, _guard(st, start))
        state.schedule(b, _guard(st, end))

    def final(due: float) -> None:
        for l in st.moto_existing():
            st.moto_delete(l)
        st.outputs = None
        if op == "delete":
            backend = cloudformation_backends[st.account_id][st.region]
            backend.stacks.pop(st.stack_id, None)
            backend.deleted_stacks[st.stack_id] = st.stack
            st.stack.status = "DELETE_COMPLETE"
            st.remove_exports()
            st.deleted = True
            st.deletion_time = due
        st.stack_event(due, final_status, final_reason)
        st.op = None

    state.schedule(t0 + d, _guard(st, final))


# ---------------------------------------------------------------- update
def _changed_resources(st: StackState, old_tpl: dict[str, Any], new_tpl: dict[str, Any], old_params: dict[str, str], new_params: dict[str, str], tags_changed: bool) -> tuple[list[tuple[str, str]], list[str]]:
    old_active = set(active_resources(old_tpl, old_params))
    new_active = active_resources(new_tpl, new_params)
    changed_params = {k for k in set(old_params) | set(new_params) if _s(old_params.get(k)) != _s(new_params.get(k))}
    old_conds: dict[str, bool] = {}
    new_conds: dict[str, bool] = {}
    changed_conds = {
        c for c in new_tpl.get("Conditions", {})
        if cond_value(c, old_params, old_tpl, old_conds) != cond_value(c, new_params, new_tpl, new_conds)
    }
    out: list[tuple[str, str]] = []
    for lid in new_active:
        if lid not in old_active:
            out.append((lid, "Add"))
            continue
        new_r = new_tpl["Resources"][lid]
        old_r = old_tpl["Resources"].get(lid)
        refs: set[str] = set()
        _refs(new_r.get("Properties", {}), refs)
        ifs: set[str] = set()
        _if_conds(new_r.get("Properties", {}), ifs)
        if (
            new_r != old_r
            or refs & changed_params
            or ifs & changed_conds
            or (tags_changed and "Tags" in new_r.get("Properties", {}))
        ):
            out.append((lid, "Modify"))
    removed = [lid for lid in old_active if lid not in set(new_active)]
    return out, removed


def _if_conds(node: Any, out: set[str]) -> None:
    if isinstance(node, dict):
        for k, v in node.items():
            if k == "Fn::If" and isinstance(v, list) and v:
                out.add(v[0])
            _if_conds(v, out)
    elif isinstance(node, list):
        for i in node:
            _if_conds(i, out)


def _apply_to_moto(st: StackState, body: str, params: dict[str, str], tags: dict[str, str]) -> None:
    stack = st.stack
    rm = stack.resource_map
    rm._oms_no_create = False
    stack.update(body, role_arn=st.extra.get("role_arn"), parameters=dict(params), tags=dict(tags))
    # moto does not pass stack tags on to resources; CloudFormation propagates them.
    from .dynamodb import refresh_stack_tags

    refresh_stack_tags(rm, dict(tags))
    for lid in rm.__dict__.pop("_oms_skipped", set()):
        if rm._parsed_resources.get(lid) is None:
            rm._parsed_resources.pop(lid, None)
    # moto ignores Conditions that flip: create/delete those resources here.
    conds = rm.lazy_condition_map
    for lid, r in rm._resource_json_map.items():
        c = r.get("Condition")
        if not c:
            continue
        if conds.get(c) and lid not in rm._parsed_resources:
            _ = rm[lid]
        elif not conds.get(c) and lid in rm._parsed_resources:
            st.moto_delete(lid)


REPLACING_REASON = "Requested update requires the creation of a new physical resource; hence creating one."


def custom_name_reason(physical: str) -> str:
    return (
        "CloudFormation cannot update a stack when a custom-named resource requires replacing. "
        f"Rename {physical} and update the stack again."
    )


def plan_update(st: StackState, t0: float, fail: dict[str, str] | None, changes: list[tuple[str, str]], removed: list[str], analysis: dict[str, dict[str, Any]] | None = None) -> None:
    analysis = analysis or {}
    d = state.stack_delay(st.name)
    kinds = dict(changes)
    # Resources whose change requires replacement (ResourceChange.Replacement "True"): custom-named
    # ones fail the update, the others get a new physical resource and the old one is deleted in
    # the cleanup phase.
    for lid, c in analysis.items():
        if c.get("Action") == "Modify" and lid not in kinds and lid in st.tpl.get("Resources", {}):
            kinds[lid] = "Modify"
    # Replacement "True", and a "Conditional" one that does replace at execution (oms_replaces).
    replace = {lid: c for lid, c in analysis.items() if c.get("Action") == "Modify" and (c.get("Replacement") == "True" or c.get("oms_replaces"))}
    blocked = {lid: c for lid, c in replace.items() if c.get("oms_custom_named")}
    old_pids = {lid: (st.physical_id(lid) or st.res.get(lid, {}).get("PhysicalResourceId")) for lid in replace}
    old_objs = {lid: st.stack.resource_map._parsed_resources.get(lid) for lid in replace}
    target = _fail_target(fail, list(kinds))
    if target is not None and target not in kinds and target in st.tpl.get("Resources", {}):
        kinds[target] = "Modify"
    ids = [l for l in st.tpl.get("Resources", {}) if l in kinds]
    lv = levels(st.tpl, ids)
    st.stack_event(t0, "UPDATE_IN_PROGRESS", "User Initiated")
    applied = {"done": False}

    def apply(due: float) -> bool:
        if applied["done"]:
            return True
        try:
            _apply_to_moto(st, st.body, st.params, st.tags)
        except Exception as e:  # noqa: BLE001
            msg = getattr(e, "message", None) or str(e)
            log.warning("moto update of %s failed: %s", st.name, msg)
            first = ids[0] if ids else st.name
            update_failed(st, due, [first], first, msg, applied=True)
            return False
        applied["done"] = True
        return True

    for (a, b), level in zip(_slots(t0, d, len(lv)), lv):
        def start(due: float, level: list[str] = level) -> None:
            for r in level:
                st.touched.add(r)
                if kinds[r] == "Add":
                    st.res_event(due, r, "CREATE_IN_PROGRESS", physical=None)
                elif r in replace and r not in blocked:
                    st.res_event(due, r, "UPDATE_IN_PROGRESS", REPLACING_REASON)
                else:
                    st.res_event(due, r, "UPDATE_IN_PROGRESS")

        def end(due: float, level: list[str] = level) -> None:
            if target in level:
                update_failed(st, due, level, target, _fail_reason(fail or {}, "update", st.rtype(target)), applied=applied["done"])
                return
            stop = next((r for r in level if r in blocked), None)
            if stop is not None:
                update_failed(st, due, level, stop, custom_name_reason(old_pids.get(stop) or stop), applied=applied["done"])
                return
            if not apply(due):
                return
            for r in level:
                if r in replace:
                    st.res_event(due, r, "UPDATE_IN_PROGRESS", "Resource creation Initiated")
                st.res_event(due, r, "CREATE_COMPLETE" if kinds[r] == "Add" else "UPDATE_COMPLETE")

        state.schedule(a, _guard(st, start))
        state.schedule(b, _guard(st, end))

    def final(due: float) -> None:
        if not apply(due):
            return
        st.stack_event(due, "UPDATE_COMPLETE_CLEANUP_IN_PROGRESS")
        for r, pid in old_pids.items():
            # The old physical resource of a replaced one (UpdateReplacePolicy Delete).
            st.res_event(due, r, "DELETE_IN_PROGRESS", physical=pid, record=False)
            old = old_objs.get(r)
            if old is not None and old is not st.stack.resource_map._parsed_resources.get(r) and hasattr(old, "delete"):
                try:
                    old.delete(st.account_id, st.region)
                except Exception as e:  # noqa: BLE001
                    log.warning("deleting the replaced %s of %s: %s", r, st.name, e)
            st.res_event(due, r, "DELETE_COMPLETE", physical=pid, record=False)
        for r in removed:
            pid = st.res.get(r, {}).get("PhysicalResourceId")
            st.res_event(due, r, "DELETE_IN_PROGRESS", physical=pid)
            st.res_event(due, r, "DELETE_COMPLETE", physical=pid)
        st.outputs = st.compute_outputs()
        st.sync_exports()
        st.stack_event(due, "UPDATE_COMPLETE")
        st.prev = None
        st.op = None
        _finish_change_set(st, "EXECUTE_COMPLETE")

    state.schedule(t0 + d, _guard(st, final))


def _finish_change_set(st: StackState, status: str) -> None:
    cs = getattr(st, "executing_change_set", None)
    if cs is not None:
        cs.execution_status = status
        st.executing_change_set = None


def update_failed(st: StackState, due: float, level: list[str], target: str, reason: str, applied: bool) -> None:
    st.gen += 1
    prev = st.prev or {}
    for r in level:
        was_add = st.res.get(r, {}).get("ResourceStatus") == "CREATE_IN_PROGRESS"
        if r == target:
            st.res_event(due, r, "CREATE_FAILED" if was_add else "UPDATE_FAILED", reason)
        else:
            st.res_event(due, r, "CREATE_FAILED" if was_add else "UPDATE_FAILED", "Resource update cancelled")
    st.stack_event(due, "UPDATE_ROLLBACK_IN_PROGRESS", f"The following resource(s) failed to update: [{target}]. ")
    _finish_change_set(st, "EXECUTE_FAILED")
    if applied:
        try:
            _apply_to_moto(st, prev["body"], prev["params"], prev["tags"])
        except Exception as e:  # noqa: BLE001
            log.warning("rollback of %s in moto failed: %s", st.name, e)
    touched = list(st.touched)
    ids = [l for l in prev["tpl"].get("Resources", {}) if l in touched]
    lv = [list(x) for x in reversed(levels(prev["tpl"], ids))]
    plan_rollback(st, due, lv, _take_fail(st.name, "update_rollback"))


def plan_rollback(st: StackState, t0: float, lv: list[list[str]], fail: dict[str, str] | None) -> None:
    """The resources of `lv` (levels, in rollback order) are updated back to the previous template
    over a stack delay, then UPDATE_ROLLBACK_COMPLETE. An armed `update_rollback` failure fails the
    rollback on its resource: UPDATE_FAILED, and the stack ends UPDATE_ROLLBACK_FAILED with the
    resources still to roll back kept for ContinueUpdateRollback."""
    prev = st.prev or {}
    d = state.stack_delay(st.name)
    target = _fail_target(fail, [x for level in lv for x in level])
    for i, ((a, b), lvl) in enumerate(zip(_slots(t0, d, len(lv)), lv)):
        def start(t: float, lvl: list[str] = lvl) -> None:
            for r in lvl:
                st.res_event(t, r, "UPDATE_IN_PROGRESS")

        def end(t: float, lvl: list[str] = lvl, i: int = i) -> None:
            if target is not None and target in lvl:
                st.gen += 1
                for r in lvl:
                    if r == target:
                        st.res_event(t, r, "UPDATE_FAILED", _fail_reason(fail or {}, "update_rollback", st.rtype(r)))
                    else:
                        st.res_event(t, r, "UPDATE_COMPLETE")
                st.rollback_left = [[target]] + [list(x) for x in lv[i + 1:]]
                st.rollback_failed = {target}
                st.stack_event(t, "UPDATE_ROLLBACK_FAILED", f"The following resource(s) failed to update: [{target}]. ")
                st.op = None
                for l in st.moto_existing():
                    rr = st.stack.resource_map._parsed_resources.get(l)
                    if isinstance(rr, OmsReplicationGroup):
                        rr.status = "available"
                return
            for r in lvl:
                st.res_event(t, r, "UPDATE_COMPLETE")

        state.schedule(a, _guard(st, start))
        state.schedule(b, _guard(st, end))

    def final(t: float) -> None:
        st.stack_event(t, "UPDATE_ROLLBACK_COMPLETE_CLEANUP_IN_PROGRESS")
        st.body, st.tpl, st.params, st.tags = prev["body"], prev["tpl"], prev["params"], prev["tags"]
        st.outputs = prev["outputs"]
        st.stack_event(t, "UPDATE_ROLLBACK_COMPLETE")
        st.prev = None
        st.op = None
        st.rollback_left = []
        st.rollback_failed = set()
        for l in st.moto_existing():
            rr = st.stack.resource_map._parsed_resources.get(l)
            if isinstance(rr, OmsReplicationGroup):
                rr.status = "available"

    state.schedule(t0 + d, _guard(st, final))


# ---------------------------------------------------------------- lookup
def _backend(resp: CloudFormationResponse) -> Any:
    return cloudformation_backends[resp.current_account][resp.region]


def _states_for(resp: CloudFormationResponse) -> list[StackState]:
    return [s for s in state.STACKS.values() if s.account_id == resp.current_account and s.region == resp.region]


def find_live(resp: CloudFormationResponse, name_or_id: str) -> StackState | None:
    for s in _states_for(resp):
        if not s.deleted and (s.name == name_or_id or s.stack_id == name_or_id):
            return s
    return None


def find_any(resp: CloudFormationResponse, name_or_id: str) -> StackState | None:
    s = find_live(resp, name_or_id)
    if s:
        return s
    for s in _states_for(resp):
        if s.stack_id == name_or_id:
            return s
    return None


def _tags_param(resp: CloudFormationResponse) -> dict[str, str] | None:
    tags = resp._get_param("Tags")
    if tags is None:
        return None
    return {t["Key"]: t.get("Value", "") for t in tags}


def _template_body(resp: CloudFormationResponse) -> str | None:
    body = resp._get_param("TemplateBody")
    url = resp._get_param("TemplateURL")
    if not body and url:
        body = resp._get_stack_from_s3_url(url)
    return body


_NAME_RE = re.compile(r"^[a-zA-Z][-a-zA-Z0-9]*$")


def _refused_resource(stack: Any) -> dict[str, str] | None:
    """A resource its service refused to create (models set oms_create_error), as a failure
    spec: it gets CREATE_FAILED with the service's message and the stack rolls back."""
    for logical, r in stack.resource_map._parsed_resources.items():
        if getattr(r, "oms_create_error", None):
            return {"resource": logical, "reason": r.oms_create_error}
    return None


# ---------------------------------------------------------------- handlers
def create_stack(self: CloudFormationResponse) -> ActionResult:
    state.advance()
    name = self._get_param("StackName") or ""
    token = self._get_param("ClientRequestToken")
    if not _NAME_RE.match(name) or len(name) > 128:
        raise ValidationError(
            message=f"1 validation error detected: Value '{name}' at 'stackName' failed to satisfy constraint: Member must satisfy regular expression pattern: [a-zA-Z][-a-zA-Z0-9]*|arn:[-a-zA-Z0-9:/._+]*"
        )
    existing = find_live(self, name)
    if existing is not None:
        if token and existing.create_token == token:
            return ActionResult({"StackId": existing.stack_id})
        raise AlreadyExistsException(f"Stack [{name}] already exists")
    body = _template_body(self)
    if not body:
        raise ValidationError(message="Either Template URL or Template Body must be specified.")
    tpl = parse_template(body)
    params = resolve_params(tpl, self._get_param("Parameters", []) or [], None)
    check_rules(tpl, params)
    tags = _tags_param(self) or {}
    extra = {
        "role_arn": self._get_param("RoleARN"),
        "notification_arns": self._get_param("NotificationARNs", []) or [],
        "capabilities": self._get_param("Capabilities", []) or [],
        "disable_rollback": str(self._get_param("DisableRollback", "false")).lower() == "true"
        or self._get_param("OnFailure") == "DO_NOTHING",
        "timeout": self._get_param("TimeoutInMinutes"),
    }
    backend = _backend(self)
    before = set(backend.stacks)
    try:
        stack = backend.create_stack(
            name=name,
            template=body,
            parameters=dict(params),
            notification_arns=extra["notification_arns"],
            tags=dict(tags),
            role_arn=extra["role_arn"],
        )
    except Exception as e:
        for sid in set(backend.stacks) - before:
            s = backend.stacks.pop(sid)
            try:
                s.resource_map._oms_no_create = True
                s.resource_map.delete()
            except Exception:  # noqa: BLE001
                pass
            for n in [n for n, ex in backend.exports.items() if ex.exporting_stack_id == sid]:
                backend.exports.pop(n, None)
        if isinstance(e, ServiceException):
            raise
        raise ValidationError(message=f"Template error: {e}")
    # Exports appear only once the stack is complete.
    for n in [n for n, ex in backend.exports.items() if ex.exporting_stack_id == stack.stack_id]:
        backend.exports.pop(n, None)
    st = StackState(stack, body, tpl, params, tags, token, extra)
    state.STACKS[st.stack_id] = st
    plan_create(st, state.now(), _take_fail(name, "create") or _refused_resource(stack))
    state.advance()
    return ActionResult({"StackId": st.stack_id})


def update_stack(self: CloudFormationResponse) -> ActionResult:
    state.advance()
    name = self._get_param("StackName") or ""
    token = self._get_param("ClientRequestToken")
    st = find_live(self, name)
    if st is None:
        raise ValidationError(message=f"Stack [{name}] does not exist")
    if token and st.token == token and st.op == "update":
        return ActionResult({"StackId": st.stack_id})
    body, tpl, params, tags = update_request(self, st)
    if no_change(st, tpl, params, tags):
        raise ValidationError(message="No updates are to be performed.")
    start_update(st, body, tpl, params, tags, token, self._get_param("RoleARN"))
    state.advance()
    return ActionResult({"StackId": st.stack_id})


def update_request(self: CloudFormationResponse, st: StackState) -> tuple[str, dict[str, Any], dict[str, str], dict[str, str]]:
    """The template body, parsed template, parameters and tags an update of `st` asks for (UpdateStack,
    CreateChangeSet), after the checks both make: the stack can be updated, one template source, rules."""
    if st.status not in UPDATABLE:
        raise ValidationError(message=f"Stack:{st.stack_id} is in {st.status} state and can not be updated.")
    use_prev = str(self._get_param("UsePreviousTemplate", "false")).lower() == "true"
    body = _template_body(self)
    if use_prev and body:
        raise ValidationError(message="You cannot specify both usePreviousTemplate and Template Body/Template URL.")
    if use_prev:
        body = st.body
    if not body:
        raise ValidationError(message="Either Template URL or Template Body must be specified.")
    tpl = parse_template(body)
    params = resolve_params(tpl, self._get_param("Parameters", []) or [], st.params)
    check_rules(tpl, params)
    tags_in = _tags_param(self)
    tags = st.tags if tags_in is None else tags_in
    return body, tpl, params, tags


def no_change(st: StackState, tpl: dict[str, Any], params: dict[str, str], tags: dict[str, str]) -> bool:
    """Whether an update to tpl/params/tags changes nothing (parameters compare as their types do)."""
    return tpl == st.tpl and _norm_params(tpl, params) == _norm_params(st.tpl, st.params) and tags == st.tags


def start_update(st: StackState, body: str, tpl: dict[str, Any], params: dict[str, str], tags: dict[str, str], token: str | None, role_arn: str | None, change_set: Any = None) -> None:
    """Starts an update of `st` to body/params/tags on the timeline (UpdateStack, ExecuteChangeSet)."""
    from . import cfn_more

    changes, removed = _changed_resources(st, st.tpl, tpl, st.params, params, tags != st.tags)
    analysis = {c["LogicalResourceId"]: c for c in cfn_more.analyze(st, st.tpl, tpl, st.params, params, st.tags, tags)}
    cfn_more.on_update_started(st, change_set)
    st.prev = {"body": st.body, "tpl": st.tpl, "params": st.params, "tags": st.tags, "outputs": st.outputs}
    st.body, st.tpl, st.params, st.tags = body, tpl, params, tags
    st.op = "update"
    st.touched = set()
    st.token = token
    st.last_updated_time = state.now()
    if role_arn:
        st.extra["role_arn"] = role_arn
    plan_update(st, st.last_updated_time, _take_fail(st.name, "update"), changes, removed, analysis)


def _resolve_str(v: Any, st: StackState) -> str | None:
    if isinstance(v, str):
        return v
    if isinstance(v, dict) and len(v) == 1:
        k, a = next(iter(v.items()))
        pseudo = {"AWS::StackName": st.name, "AWS::Region": st.region, "AWS::AccountId": st.account_id, "AWS::StackId": st.stack_id}
        if k == "Ref":
            return st.params.get(a, pseudo.get(a))
        if k == "Fn::Sub" and isinstance(a, str):
            return re.sub(r"\$\{([^}]+)\}", lambda m: str(st.params.get(m.group(1), pseudo.get(m.group(1), m.group(0)))), a)
        if k == "Fn::Join" and isinstance(a, list) and len(a) == 2 and isinstance(a[1], list):
            parts = [_resolve_str(x, st) for x in a[1]]
            return None if None in parts else a[0].join(parts)  # type: ignore[arg-type]
    return None


def imports_of(st: StackState) -> set[str]:
    out: set[str] = set()

    def walk(n: Any) -> None:
        if isinstance(n, dict):
            for k, v in n.items():
                if k == "Fn::ImportValue":
                    r = _resolve_str(v, st)
                    if r:
                        out.add(r)
                else:
                    walk(v)
        elif isinstance(n, list):
            for i in n:
                walk(i)

    walk(st.tpl.get("Resources"))
    walk(st.tpl.get("Outputs"))
    return out


def _export_in_use(self: CloudFormationResponse, st: StackState) -> tuple[str, str] | None:
    exports = [o["ExportName"] for o in st.outputs or [] if o.get("ExportName")]
    if not exports:
        return None
    for other in _states_for(self):
        if other is st or other.deleted:
            continue
        used = imports_of(other)
        for name in exports:
            if name in used:
                return name, other.name
    return None


def delete_stack(self: CloudFormationResponse) -> EmptyResult:
    state.advance()
    name = self._get_param("StackName") or ""
    token = self._get_param("ClientRequestToken")
    st = find_live(self, name)
    if st is None:
        return EmptyResult()  # AWS: deleting a missing or deleted stack succeeds
    if st.status == "DELETE_IN_PROGRESS":
        return EmptyResult()
    now = state.now()
    if st.status == "CREATE_IN_PROGRESS":
        st.gen += 1
        for l, e in list(st.res.items()):
            if e["ResourceStatus"] == "CREATE_IN_PROGRESS":
                st.res_event(now, l, "CREATE_FAILED", "Resource creation cancelled")
    elif st.status.endswith(IN_PROGRESS_SUFFIX):
        raise ValidationError(message=f"Stack [{st.stack_id}] cannot be deleted while in status {st.status}")
    in_use = _export_in_use(self, st)
    if in_use is not None:
        # AWS accepts the call, then cancels the deletion and returns the stack
        # to its previous status.
        prev_status = st.status
        st.gen += 1
        st.op = "delete"
        st.token = token
        st.stack_event(now, "DELETE_IN_PROGRESS", "User Initiated")

        def cancel(due: float, prev_status: str = prev_status, in_use: tuple[str, str] = in_use) -> None:
            st.stack_event(due, prev_status, f"Delete canceled. Cannot delete export {in_use[0]} as it is in use by {in_use[1]}.")
            st.op = None

        state.schedule(now + min(state.stack_delay(st.name), 1.0), _guard(st, cancel))
        state.advance()
        return EmptyResult()
    st.gen += 1
    st.op = "delete"
    st.token = token
    st.stack.resource_map._oms_no_create = True
    st.stack_event(now, "DELETE_IN_PROGRESS", "User Initiated")
    to_delete = [l for l in st.moto_existing() if st.res.get(l, {}).get("ResourceStatus") not in (None, "DELETE_COMPLETE")]
    plan_removal(st, now, to_delete, "DELETE_COMPLETE", None, _take_fail(st.name, "delete"), op="delete")
    state.advance()
    return EmptyResult()


def describe_stacks(self: CloudFormationResponse) -> ActionResult:
    state.advance()
    name = self._get_param("StackName")
    if name:
        st = find_any(self, name)
        if st is None:
            raise ValidationError(message=f"Stack with id {name} does not exist")
        return ActionResult({"Stacks": [st.describe()]})
    stacks = [s.describe() for s in sorted(_states_for(self), key=lambda s: -s.creation_time) if not s.deleted]
    return ActionResult({"Stacks": stacks})


def describe_stack_events(self: CloudFormationResponse) -> ActionResult:
    state.advance()
    name = self._get_param("StackName") or ""
    st = find_any(self, name)
    if st is None:
        raise ValidationError(message=f"Stack [{name}] does not exist")
    return ActionResult({"StackEvents": list(reversed(st.events))})


def _resource_rows(st: StackState) -> list[tuple[str, dict[str, Any]]]:
    rows = []
    for l in st.tpl.get("Resources", {}):
        e = st.res.get(l)
        if e is None:
            continue
        if e["ResourceStatus"] == "DELETE_COMPLETE" and not st.deleted:
            continue
        rows.append((l, e))
    return rows


def _resource_row(st: Any, logical: str, e: dict[str, Any], time_key: str, with_stack: bool) -> dict[str, Any]:
    """One resource as DescribeStackResources (`Timestamp`, with the stack), DescribeStackResource
    (`LastUpdatedTimestamp`, with the stack) or ListStackResources (without) report it."""
    d: dict[str, Any] = {"StackName": st.name, "StackId": st.stack_id} if with_stack else {}
    d.update(
        {
            "LogicalResourceId": logical,
            "ResourceType": e["ResourceType"],
            time_key: e["Timestamp"],
            "ResourceStatus": e["ResourceStatus"],
            "DriftInformation": _resource_drift_info(st, logical),
        }
    )
    if e.get("PhysicalResourceId"):
        d["PhysicalResourceId"] = e["PhysicalResourceId"]
    if e.get("ResourceStatusReason"):
        d["ResourceStatusReason"] = e["ResourceStatusReason"]
    return d


def _resource_drift_info(st: Any, logical: str) -> dict[str, Any]:
    r = getattr(st, "res_drift", {}).get(logical)
    if not r:
        return {"StackResourceDriftStatus": "NOT_CHECKED"}
    return {"StackResourceDriftStatus": r["status"], "LastCheckTimestamp": ts(r["time"])}


def describe_stack_resources(self: CloudFormationResponse) -> ActionResult:
    state.advance()
    name = self._get_param("StackName") or ""
    logical = self._get_param("LogicalResourceId")
    st = find_any(self, name)
    if st is None:
        raise ValidationError(message=f"Stack with id {name} does not exist")
    out = []
    for l, e in _resource_rows(st):
        if logical and l != logical:
            continue
        out.append(_resource_row(st, l, e, "Timestamp", with_stack=True))
    return ActionResult({"StackResources": out})


def describe_stack_resource(self: CloudFormationResponse) -> ActionResult:
    state.advance()
    name = self._get_param("StackName") or ""
    logical = self._get_param("LogicalResourceId")
    st = find_any(self, name)
    if st is None:
        raise ValidationError(message=f"Stack with id {name} does not exist")
    for l, e in _resource_rows(st):
        if l == logical:
            return ActionResult({"StackResourceDetail": _resource_row(st, l, e, "LastUpdatedTimestamp", with_stack=True)})
    raise ValidationError(message=f"Resource {logical} does not exist for stack {name}")


def list_stack_resources(self: CloudFormationResponse) -> ActionResult:
    state.advance()
    name = self._get_param("StackName") or ""
    st = find_any(self, name)
    if st is None:
        raise ValidationError(message=f"Stack with id {name} does not exist")
    out = []
    for l, e in _resource_rows(st):
        out.append(_resource_row(st, l, e, "LastUpdatedTimestamp", with_stack=False))
    return ActionResult({"StackResourceSummaries": out})


LIST_STACKS_PAGE = 100  # AWS documents no page size for ListStacks; see the README


def list_stacks(self: CloudFormationResponse) -> ActionResult:
    state.advance()
    filt = self._get_param("StackStatusFilter", []) or []
    out = [s.summary() for s in sorted(_states_for(self), key=lambda s: -s.creation_time) if not filt or s.status in filt]
    token = self._get_param("NextToken")
    start = 0
    if token:
        try:
            start = int(token.removeprefix("page-"))
        except ValueError:
            raise ValidationError(message="Invalid NextToken") from None
    page = out[start : start + LIST_STACKS_PAGE]
    result: dict[str, Any] = {"StackSummaries": page}
    if start + LIST_STACKS_PAGE < len(out):
        result["NextToken"] = f"page-{start + LIST_STACKS_PAGE}"
    return ActionResult(result)


def list_exports(self: CloudFormationResponse) -> ActionResult:
    state.advance()
    out = []
    for s in sorted(_states_for(self), key=lambda s: s.creation_time):
        if s.deleted:
            continue
        for o in s.outputs or []:
            if o.get("ExportName"):
                out.append({"ExportingStackId": s.stack_id, "Name": o["ExportName"], "Value": o["OutputValue"]})
    return ActionResult({"Exports": out})


def get_template(self: CloudFormationResponse) -> ActionResult:
    state.advance()
    name = self._get_param("StackName") or ""
    st = find_any(self, name)
    if st is None:
        raise ValidationError(message=f"Stack with id {name} does not exist")
    return ActionResult({"TemplateBody": st.body, "StagesAvailable": ["Original", "Processed"]})


def _in_callers_account(fn: Any) -> Any:
    """Runs a handler with the pseudo parameters of the caller's account and region."""

    @functools.wraps(fn)
    def handler(self: CloudFormationResponse) -> Any:
        PSEUDO.update({"AWS::AccountId": self.current_account, "AWS::Region": self.region})
        return fn(self)

    return handler


def install() -> None:
    for fn in (
        create_stack,
        update_stack,
        delete_stack,
        describe_stacks,
        describe_stack_events,
        describe_stack_resources,
        describe_stack_resource,
        list_stack_resources,
        list_stacks,
        list_exports,
        get_template,
    ):
        setattr(CloudFormationResponse, fn.__name__, _in_callers_account(fn))
