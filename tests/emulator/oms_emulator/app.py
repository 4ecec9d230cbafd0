"""WSGI wrapper around moto's server app: the /_oms/ control API, call counters,
throttling, one global lock around every request, and XML errors instead of
HTML 500 pages."""
from __future__ import annotations

import io
import json
import logging
import re
import time
import traceback
import uuid
from typing import Any, Callable
from urllib.parse import parse_qs
from xml.sax.saxutils import escape

from . import redis_acl, state, sts

log = logging.getLogger("oms_emulator")

CONFIG_TYPES: dict[str, tuple[type, ...]] = {
    "stack_delay_seconds": (int, float),
    "stack_delays": (dict,),
    "endpoint_address": (str, type(None)),
    "endpoint_port": (int, type(None)),
    "snapshot_delay_seconds": (int, float),
    "failover_delay_seconds": (int, float),
    "modify_delay_seconds": (int, float),
    "change_set_delay_seconds": (int, float),
    "drift_delay_seconds": (int, float),
    "constraint_descriptions": (bool,),
    "redis_bindings": (dict,),
    "assumable_roles": (dict,),
}

_ARN_NAME = re.compile(r"^arn:[^:]+:cloudformation:[^:]*:[^:]*:stack/([^/]+)/")
# A DynamoDB table ARN, or an ARN under it (backup, index, stream): the table name.
_TABLE_ARN = re.compile(r"^arn:[^:]+:dynamodb:[^:]*:[^:]*:table/([^/]+)")
# Request parameters that name the stack (or the group, table) a call is about: call counters,
# scoped throttles and holds match on them.
NAME_PARAMS = ("StackName", "ReplicationGroupId", "SourceIdentifier", "TableName", "BackupArn", "ResourceArn")


def _name_of(value: str) -> str | None:
    m = _ARN_NAME.match(value)
    if m:
        return m.group(1)
    m = _TABLE_ARN.match(value)
    if m:
        return m.group(1)
    return None if value.startswith("arn:") else value


def _json_protocol(environ: dict[str, Any]) -> bool:
    """A DynamoDB request (JSON protocol: X-Amz-Target DynamoDB_20120810.*), whose errors must be
    JSON for the SDKs to read them. Other services keep the XML ErrorResponse."""
    return environ.get("HTTP_X_AMZ_TARGET", "").startswith("DynamoDB")


# Error codes of the Query protocol and their JSON-protocol (DynamoDB) counterparts, per the
# DynamoDB developer guide's error table (Programming.Errors).
_JSON_ERRORS = {
    "Throttling": ("com.amazon.coral.availability#ThrottlingException", "Rate of requests exceeds the allowed throughput.", 400),
    "InvalidClientTokenId": ("com.amazon.coral.service#UnrecognizedClientException", "The Access Key ID or security token is invalid.", 400),
    "InvalidAction": ("com.amazon.coral.service#UnknownOperationException", None, 400),
    "InternalFailure": ("com.amazonaws.dynamodb.v20120810#InternalServerError", None, 500),
}


def error_xml(code: str, message: str, sender: bool = True) -> bytes:
    return (
        "<ErrorResponse><Error><Type>{}</Type><Code>{}</Code><Message>{}</Message></Error>"
        "<RequestId>{}</RequestId></ErrorResponse>".format(
            "Sender" if sender else "Receiver", escape(code), escape(message), uuid.uuid4()
        )
    ).encode()


def _json(start_response: Callable, status: int, obj: Any) -> list[bytes]:
    body = json.dumps(obj, default=str).encode()
    reason = {200: "OK", 400: "Bad Request", 404: "Not Found", 405: "Method Not Allowed", 502: "Bad Gateway"}.get(status, "OK")
    start_response(f"{status} {reason}", [("Content-Type", "application/json"), ("Content-Length", str(len(body)))])
    return [body]


def _xml(start_response: Callable, status: int, body: bytes) -> list[bytes]:
    reason = {400: "Bad Request", 403: "Forbidden", 500: "Internal Server Error"}.get(status, "OK")
    start_response(
        f"{status} {reason}",
        [("Content-Type", "text/xml"), ("Content-Length", str(len(body))), ("x-amzn-RequestId", str(uuid.uuid4()))],
    )
    return [body]


def _error(environ: dict[str, Any], start_response: Callable, status: int, code: str, message: str, sender: bool = True) -> list[bytes]:
    """An AWS error in the request's protocol: the XML ErrorResponse, or for JSON-protocol
    services {"__type": ..., "message": ...}."""
    if not _json_protocol(environ):
        return _xml(start_response, status, error_xml(code, message, sender))
    jtype, jmessage, jstatus = _JSON_ERRORS.get(code, (code, None, status))
    body = json.dumps({"__type": jtype, "message": jmessage or message}).encode()
    reason = {400: "Bad Request", 403: "Forbidden", 500: "Internal Server Error"}.get(jstatus, "OK")
    start_response(
        f"{jstatus} {reason}",
        [("Content-Type", "application/x-amz-json-1.0"), ("Content-Length", str(len(body))), ("x-amzn-RequestId", str(uuid.uuid4()))],
    )
    return [body]


def _public_config() -> dict[str, Any]:
    """The config as the control API shows it: redis admin passwords masked."""
    out = dict(state.CONFIG)
    out["redis_bindings"] = {k: {**b, "admin_password": "****"} for k, b in (state.CONFIG.get("redis_bindings") or {}).items()}
    return out


def _merged(current: dict[str, Any] | None, update: dict[str, Any], value: Callable[[Any], Any]) -> dict[str, Any]:
    """`current` with `update` merged in: null removes a key, anything else is set as value(v)."""
    out = dict(current or {})
    for k, v in update.items():
        if v is None:
            out.pop(k, None)
        else:
            out[k] = value(v)
    return out


def _bound_groups(ids: list[str]) -> list[Any]:
    """The stack-made replication groups with these ids, in every account and region in use."""
    from moto.elasticache.models import elasticache_backends

    from .models import OmsReplicationGroup

    found = []
    for _account, regions in elasticache_backends.items():
        for _region, backend in regions.items():
            found += [rg for i, rg in backend.replication_groups.items() if i in ids and isinstance(rg, OmsReplicationGroup)]
    return found


def _take_hold(action: str, names: list[str]) -> float:
    """Seconds to hold back the reply to this call (see POST /_oms/hold); 0 for none."""
    for key in [f"{action}@{n}" for n in names]:
        hold = state.HOLDS.get(key)
        if hold and hold["count"] > 0:
            hold["count"] -= 1
            return float(hold["seconds"])
    return 0.0


def _read_body(environ: dict[str, Any]) -> bytes:
    try:
        n = int(environ.get("CONTENT_LENGTH") or 0)
    except ValueError:
        n = 0
    body = environ["wsgi.input"].read(n) if n > 0 else b""
    environ["wsgi.input"] = io.BytesIO(body)
    environ["CONTENT_LENGTH"] = str(len(body))
    return body


def _access_key_of(environ: dict[str, Any]) -> str:
    m = re.search(r"Credential=([^/]+)/", environ.get("HTTP_AUTHORIZATION", ""))
    return m.group(1) if m else ""


def _service_of(environ: dict[str, Any]) -> str:
    auth = environ.get("HTTP_AUTHORIZATION", "")
    m = re.search(r"Credential=[^/]+/[^/]+/[^/]+/([^/]+)/", auth)
    if m:
        return m.group(1).lower()
    return "unknown"


def _sts_unsigned(action: str) -> bool:
    """AssumeRoleWithWebIdentity and AssumeRoleWithSAML are called without credentials."""
    return action in ("AssumeRoleWithWebIdentity", "AssumeRoleWithSAML")


def _action_and_params(environ: dict[str, Any], body: bytes) -> tuple[str, dict[str, str]]:
    params: dict[str, str] = {}
    qs = environ.get("QUERY_STRING", "")
    for k, v in parse_qs(qs).items():
        params[k] = v[0]
    ctype = environ.get("CONTENT_TYPE", "")
    if body and "x-www-form-urlencoded" in ctype:
        try:
            for k, v in parse_qs(body.decode("utf-8"), keep_blank_values=True).items():
                params[k] = v[0]
        except UnicodeDecodeError:
            pass
    action = params.get("Action", "")
    if not action:
        target = environ.get("HTTP_X_AMZ_TARGET", "")
        if target:
            action = target.split(".")[-1]
    if not action:
        m = re.search(r"/operation/([A-Za-z0-9]+)$", environ.get("PATH_INFO", ""))
        if m:
            action = m.group(1)
    if body and "json" in ctype and not params.get("StackName"):
        try:
            j = json.loads(body)
            if isinstance(j, dict):
                for k in NAME_PARAMS:
                    if isinstance(j.get(k), str) and k not in params:
                        params[k] = j[k]
        except ValueError:
            pass
    return action, params


class OmsApp:
    def __init__(self, moto_app: Any, reset_moto: Callable[[], None]):
        self.moto_app = moto_app
        self.reset_moto = reset_moto

    # ------------------------------------------------------------ AWS requests
    def __call__(self, environ: dict[str, Any], start_response: Callable) -> Any:
        path = environ.get("PATH_INFO", "")
        if path.startswith("/_oms/") or path == "/_oms":
            return self.control(environ, start_response)
        body = _read_body(environ)
        service = _service_of(environ)
        action, params = _action_and_params(environ, body)
        if service == "unknown" and _sts_unsigned(action):
            service = "sts"
        access_key = _access_key_of(environ)
        with state.LOCK:
            key = f"{service}:{action or 'Unknown'}"
            state.CALLS[key] += 1
            # Per access key id: tells apart clients (e.g. two operator replicas) with their own keys.
            state.CALLS_BY_KEY.setdefault(access_key, state.Counter())[key] += 1
            # Per account the request acts in (an unsigned STS call acts in none).
            if access_key:
                state.CALLS_BY_ACCOUNT.setdefault(sts.account_of(access_key), state.Counter())[key] += 1
            names: list[str] = []
            for pname in NAME_PARAMS:
                v = params.get(pname)
                name = _name_of(v) if v else None
                if name and name not in names:
                    names.append(name)
                    state.CALLS_BY_NAME.setdefault(name, state.Counter())[key] += 1
            if access_key and state.STORMS.get(access_key, 0.0) > time.monotonic():
                return _error(environ, start_response, 400, "Throttling", "Rate exceeded")
            # A throttle scoped to one stack (or replication group, table) keeps concurrent tests apart.
            for tkey in [f"{action}@{n}" for n in names] + [action]:
                left = state.THROTTLES.get(tkey, 0)
                if left > 0:
                    state.THROTTLES[tkey] = left - 1
                    return _error(environ, start_response, 400, "Throttling", "Rate exceeded")
            refused = sts.refusal(action, params, access_key)
            if refused:
                status, code, message = refused
                return _error(environ, start_response, status, code, message)
            state.advance()
            held = _take_hold(action, names)
            result = self._call_moto(environ, start_response, action)
        # Outside the lock: everyone else goes on while this caller waits for its reply.
        if held:
            time.sleep(held)
        return result

    def _call_moto(self, environ: dict[str, Any], start_response: Callable, action: str) -> Any:
        captured: dict[str, Any] = {}

        def sr(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Callable:
            captured["status"] = status
            captured["headers"] = headers
            return lambda data: None

        try:
            it = self.moto_app(environ, sr)
            try:
                chunks = b"".join(it)
            finally:
                if hasattr(it, "close"):
                    it.close()
        except NotImplementedError:
            return _error(environ, start_response, 400, "InvalidAction", f"The action {action} is not valid for this web service.")
        except Exception as e:  # noqa: BLE001
            if type(e).__name__ == "OperationNotFoundError":
                return _error(environ, start_response, 400, "InvalidAction", f"The action {action} is not valid for this web service.")
            log.error("internal error in %s: %s\n%s", action, e, traceback.format_exc())
            return _error(environ, start_response, 500, "InternalFailure", f"{type(e).__name__}: {e}", sender=False)
        status = captured.get("status", "500 Internal Server Error")
        headers = captured.get("headers", [])
        ctype = next((v for k, v in headers if k.lower() == "content-type"), "")
        if status.startswith("5") and "html" in ctype:
            return _error(environ, start_response, 500, "InternalFailure", "internal error", sender=False)
        if status.startswith("404") and "html" in ctype:
            return _error(environ, start_response, 400, "InvalidAction", f"The action {action} is not valid for this web service.")
        headers = [(k, v) for k, v in headers if k.lower() != "content-length"]
        headers.append(("Content-Length", str(len(chunks))))
        start_response(status, headers)
        return [chunks]

    # ------------------------------------------------------------ control API
    def _drift(self, start_response: Callable, data: dict[str, Any]) -> Any:
        """POST /_oms/drift: a stack resource's property changes outside CloudFormation."""
        from . import cfn_more

        name, logical, prop = data.get("stack_name"), data.get("resource"), data.get("property")
        if not all(isinstance(x, str) and x for x in (name, logical, prop)) or "value" not in data:
            return _json(start_response, 400, {"error": "need stack_name, resource (logical id), property (path) and value (null: removed)"})
        st = next((s for s in state.STACKS.values() if s.name == name and not s.deleted), None)
        if st is None:
            return _json(start_response, 404, {"error": f"no live stack {name}"})
        if logical not in st.res or st.res[logical].get("ResourceStatus") == "DELETE_COMPLETE":
            return _json(start_response, 404, {"error": f"stack {name} has no resource {logical}"})
        try:
            drifted = cfn_more.make_drift(st, logical, prop, data["value"])
        except ValueError as e:
            return _json(start_response, 400, {"error": str(e)})
        return _json(start_response, 200, {"drifted": drifted})

    def control(self, environ: dict[str, Any], start_response: Callable) -> Any:
        path = environ.get("PATH_INFO", "").rstrip("/")
        method = environ.get("REQUEST_METHOD", "GET")
        body = _read_body(environ)
        try:
            data = json.loads(body) if body.strip() else {}
        except ValueError:
            return _json(start_response, 400, {"error": "body is not JSON"})
        if not isinstance(data, dict):
            return _json(start_response, 400, {"error": "body must be a JSON object"})
        qs = {k: v[0] for k, v in parse_qs(environ.get("QUERY_STRING", "")).items()}
        with state.LOCK:
            state.advance()
            if path == "/_oms/health" and method == "GET":
                return _json(start_response, 200, {"status": "ok"})
            if path == "/_oms/reset" and method == "POST":
                self.reset_moto()
                state.reset_all()
                return _json(start_response, 200, {"status": "ok"})
            if path == "/_oms/config":
                if method == "GET":
                    return _json(start_response, 200, _public_config())
                if method != "POST":
                    return _json(start_response, 405, {"error": "use GET or POST"})
                for k, v in data.items():
                    if k not in CONFIG_TYPES:
                        return _json(start_response, 400, {"error": f"unknown config key {k}"})
                    if not isinstance(v, CONFIG_TYPES[k]) or (isinstance(v, bool) and bool not in CONFIG_TYPES[k]):
                        return _json(start_response, 400, {"error": f"bad type for {k}"})
                    if k == "stack_delays" and not all(isinstance(x, (int, float, type(None))) for x in v.values()):
                        return _json(start_response, 400, {"error": "stack_delays values must be numbers (or null to remove)"})
                    if k == "redis_bindings":
                        for b in v.values():
                            why = None if b is None else redis_acl.validate_binding(b)
                            if why:
                                return _json(start_response, 400, {"error": why})
                    if k == "assumable_roles":
                        why = sts.validate_roles(v)
                        if why:
                            return _json(start_response, 400, {"error": why})
                for k, v in data.items():
                    if k == "stack_delays":
                        state.CONFIG[k] = _merged(state.CONFIG.get(k), v, float)
                    elif k == "redis_bindings":
                        state.CONFIG[k] = _merged(state.CONFIG.get(k), v, lambda b: {"tls": True, **b})
                    elif k == "assumable_roles":
                        state.CONFIG[k] = _merged(state.CONFIG.get(k), v, lambda t: {"external_id": t.get("external_id")})
                    elif k.endswith("_seconds"):
                        state.CONFIG[k] = float(v)
                    else:
                        state.CONFIG[k] = v
                # A group that exists already gets its tokens on the server now; one made
                # later gets them when it is created.
                bound = [n for n, b in (data.get("redis_bindings") or {}).items() if b is not None]
                for rg in _bound_groups(bound):
                    try:
                        redis_acl.apply(rg)
                    except redis_acl.RedisError as e:
                        return _json(start_response, 502, {"error": str(e)})
                return _json(start_response, 200, _public_config())
            if path == "/_oms/fail" and method == "POST":
                name = data.get("stack_name")
                op = data.get("operation")
                if not isinstance(name, str) or op not in ("create", "update", "delete", "update_rollback"):
                    return _json(start_response, 400, {"error": "need stack_name and operation create|update|delete|update_rollback"})
                times = data.get("times", 1)
                if isinstance(times, bool) or not isinstance(times, int) or times < 1:
                    return _json(start_response, 400, {"error": "times must be an integer >= 1"})
                spec = {"resource": data.get("resource") or "RedisReplicationGroup"}
                if data.get("reason"):
                    spec["reason"] = str(data["reason"])
                if times > 1:
                    spec["times"] = times
                state.FAILS[(name, op)] = spec
                return _json(start_response, 200, {"armed": {"stack_name": name, "operation": op, **spec}})
            if path == "/_oms/drift" and method == "POST":
                return self._drift(start_response, data)
            if path == "/_oms/throttle" and method == "POST":
                action = data.get("action")
                count = data.get("count", 1)
                if not isinstance(action, str) or not isinstance(count, int) or count < 0:
                    return _json(start_response, 400, {"error": "need action (str) and count (int >= 0)"})
                scope = data.get("stack_name")
                if scope is not None and not isinstance(scope, str):
                    return _json(start_response, 400, {"error": "stack_name must be a string"})
                state.THROTTLES[f"{action}@{scope}" if scope else action] = count
                return _json(start_response, 200, {"throttles": state.THROTTLES})
            if path == "/_oms/storm" and method == "POST":
                key, seconds = data.get("access_key"), data.get("seconds", 30)
                if not isinstance(key, str) or not key:
                    return _json(start_response, 400, {"error": "need access_key (str)"})
                if isinstance(seconds, bool) or not isinstance(seconds, (int, float)) or not 0 <= seconds <= 600:
                    return _json(start_response, 400, {"error": "seconds must be a number from 0 to 600"})
                state.STORMS[key] = time.monotonic() + float(seconds)
                return _json(start_response, 200, {"storm_seconds": seconds})
            if path == "/_oms/hold" and method == "POST":
                action, scope = data.get("action"), data.get("stack_name")
                count, seconds = data.get("count", 1), data.get("seconds", 30)
                if not isinstance(action, str) or not isinstance(scope, str) or not scope:
                    return _json(start_response, 400, {"error": "need action (str) and stack_name (str)"})
                if isinstance(count, bool) or not isinstance(count, int) or count < 0:
                    return _json(start_response, 400, {"error": "count must be an integer >= 0"})
                if isinstance(seconds, bool) or not isinstance(seconds, (int, float)) or not 0 <= seconds <= 600:
                    return _json(start_response, 400, {"error": "seconds must be a number from 0 to 600"})
                state.HOLDS[f"{action}@{scope}"] = {"count": count, "seconds": float(seconds)}
                return _json(start_response, 200, {"holds": state.HOLDS})
            if path == "/_oms/alarms" and method == "GET":
                # CloudWatch's Rust SDK speaks RPCv2 CBOR, which moto does not; this shows the
                # alarms in moto's CloudWatch backend to clients that cannot ask CloudWatch.
                # Every account's, unless `account` names one.
                from moto.cloudwatch.models import cloudwatch_backends

                prefix = qs.get("prefix", "")
                region = qs.get("region", "us-east-1")
                accounts = [qs["account"]] if qs.get("account") else list(cloudwatch_backends.keys())
                alarms = [
                    {
                        "account": account,
                        "name": a.name,
                        "metric_name": a.metric_name,
                        "namespace": a.namespace,
                        "comparison_operator": a.comparison_operator,
                        "threshold": a.threshold,
                        "period": a.period,
                        "statistic": a.statistic,
                        "dimensions": [{"name": d.name, "value": d.value} for d in (a.dimensions or [])],
                        "alarm_actions": list(a.alarm_actions or []),
                        "ok_actions": list(a.ok_actions or []),
                    }
                    for account in accounts
                    for a in cloudwatch_backends[account][region].alarms.values()
                    if a.name.startswith(prefix)
                ]
                return _json(start_response, 200, {"alarms": alarms})
            if path == "/_oms/calls" and method == "GET":
                name = qs.get("stack_name")
                access_key = qs.get("access_key")
                if access_key:
                    counts = state.CALLS_BY_KEY.get(access_key, {})
                elif qs.get("account"):
                    counts = state.CALLS_BY_ACCOUNT.get(qs["account"], {})
                else:
                    counts = state.CALLS_BY_NAME.get(name, {}) if name else state.CALLS
                return _json(start_response, 200, {"counts": dict(counts)})
            if path == "/_oms/calls/reset" and method == "POST":
                state.CALLS.clear()
                state.CALLS_BY_NAME.clear()
                state.CALLS_BY_KEY.clear()
                state.CALLS_BY_ACCOUNT.clear()
                return _json(start_response, 200, {"status": "ok"})
        return _json(start_response, 404, {"error": f"no control endpoint {method} {path}"})
