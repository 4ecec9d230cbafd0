"""DynamoDB for the test bed: `AWS::DynamoDB::Table` made by the stack engine (cfn.py), and the
parts of the DynamoDB API moto 5.2.5 lacks or gets wrong for it (table status on the stack's
timeline, item counts and sizes, on-demand backups on the timeline with ListBackups paging,
deletion protection and TableInUse/BackupInUse refusals).

moto's own CloudFormation model of the table ignores PointInTimeRecoverySpecification,
TableClass, TimeToLiveSpecification and SSESpecification's CloudFormation spelling (`SSEEnabled`),
reads `DeletionProtectionEnabled: "false"` as true, and cannot be updated in place. OmsTable
replaces it (it is registered after moto's model, so the model map picks it).

Every behaviour and its AWS source is listed in tests/emulator/README.md, section "DynamoDB".
"""
from __future__ import annotations

import copy
import re
import uuid
from datetime import datetime, timezone
from typing import Any, Callable

from moto.core.common_models import CloudFormationModel
from moto.core.exceptions import JsonRESTError
from moto.core.responses import ActionResult
from moto.core.utils import unix_time, utcnow
from moto.dynamodb import models as ddb_models
from moto.dynamodb.exceptions import (
    BackupNotFoundException,
    MockValidationException,
    ResourceNotFoundException,
    TableNotFoundException,
)
from moto.dynamodb.models import dynamodb_backends
from moto.dynamodb.models.table import Backup, GlobalSecondaryIndex, Table
from moto.dynamodb.responses import DynamoHandler, DynamoResult

from . import state

ERROR_PREFIX = "com.amazonaws.dynamodb.v20120810#"

# DeleteTable of a table with DeletionProtectionEnabled, as DynamoDB words it (users' reports; the
# developer guide's "Using deletion protection" does not print the message).
PROTECTED = "Resource cannot be deleted as it is currently protected against deletion. Disable deletion protection first."
# The error descriptions of the DynamoDB API reference (CreateBackup, DeleteBackup).
TABLE_IN_USE = "A target table with the specified name is either being created or deleted."
BACKUP_IN_USE = (
    "There is another ongoing conflicting backup control plane operation on the table. "
    "The backup is either being created, deleted or restored to a table."
)
# CloudFormation's handler messages for index changes it refuses (users' reports).
GSI_ONE_AT_A_TIME = "Cannot perform more than one GSI creation or deletion in a single update"
GSI_NOT_UPDATABLE = (
    "Cannot update GSI's properties other than Provisioned Throughput and Contributor Insights "
    "Specification. You can create a new GSI with a different name."
)

# Injected failures without a reason (POST /_oms/fail) on a table: imitations of handler messages.
DEFAULT_REASONS = {
    "create": 'Resource handler returned message: "Too many tables are being created, updated or deleted at once (Service: DynamoDb, Status Code: 400, Request ID: 00000000-0000-0000-0000-000000000000)" (RequestToken: 00000000-0000-0000-0000-000000000000, HandlerErrorCode: ServiceLimitExceeded)',
    "update": 'Resource handler returned message: "Attempt to change a resource which is still in use (Service: DynamoDb, Status Code: 400, Request ID: 00000000-0000-0000-0000-000000000000)" (RequestToken: 00000000-0000-0000-0000-000000000000, HandlerErrorCode: ResourceConflict)',
    "update_rollback": 'Resource handler returned message: "Attempt to change a resource which is still in use (Service: DynamoDb, Status Code: 400, Request ID: 00000000-0000-0000-0000-000000000000)" (RequestToken: 00000000-0000-0000-0000-000000000000, HandlerErrorCode: ResourceConflict)',
    "delete": 'Resource handler returned message: "Attempt to change a resource which is still in use (Service: DynamoDb, Status Code: 400, Request ID: 00000000-0000-0000-0000-000000000000)" (RequestToken: 00000000-0000-0000-0000-000000000000, HandlerErrorCode: ResourceConflict)',
}

_BACKUP_NAME = re.compile(r"[a-zA-Z0-9_.-]+")


class DynamoFault(JsonRESTError):
    """A DynamoDB error in its JSON form: {"__type": "com.amazonaws.dynamodb.v20120810#Code", ...}."""

    def __init__(self, code: str, message: str):
        super().__init__(ERROR_PREFIX + code, message)
        self.oms_code = code


class HandlerFailure(Exception):
    """A CloudFormation resource handler's failure: `message` is the event's reason."""

    def __init__(self, message: str):
        super().__init__(message)
        self.message = message


def service_message(message: str, code: str = "InvalidRequest") -> str:
    """How CloudFormation reports a DynamoDB error met by the table's resource handler."""
    return (
        f'Resource handler returned message: "{message} (Service: DynamoDb, Status Code: 400, '
        f'Request ID: {uuid.uuid4()})" (RequestToken: {uuid.uuid4()}, HandlerErrorCode: {code})'
    )


def handler_message(message: str, code: str = "InvalidRequest") -> str:
    """A refusal of the table's resource handler itself (no service call behind it)."""
    return f'Resource handler returned message: "{message}" (RequestToken: {uuid.uuid4()}, HandlerErrorCode: {code})'


def _bool(v: Any) -> bool:
    if isinstance(v, bool):
        return v
    return str(v).strip().lower() == "true"


def _int(v: Any) -> int:
    return int(float(str(v)))


def _throughput(pt: Any) -> dict[str, int] | None:
    if not pt:
        return None
    return {"ReadCapacityUnits": _int(pt.get("ReadCapacityUnits", 0)), "WriteCapacityUnits": _int(pt.get("WriteCapacityUnits", 0))}


def _key_schema(ks: Any) -> list[dict[str, str]]:
    return [{"AttributeName": str(k["AttributeName"]), "KeyType": str(k["KeyType"])} for k in (ks or [])]


def _projection(p: Any) -> dict[str, Any]:
    p = p or {}
    out: dict[str, Any] = {"ProjectionType": str(p.get("ProjectionType") or "ALL")}
    if p.get("NonKeyAttributes"):
        out["NonKeyAttributes"] = [str(a) for a in p["NonKeyAttributes"]]
    return out


def _gsis(props: dict[str, Any]) -> list[dict[str, Any]]:
    out = []
    for g in props.get("GlobalSecondaryIndexes") or []:
        d: dict[str, Any] = {"IndexName": str(g["IndexName"]), "KeySchema": _key_schema(g.get("KeySchema")), "Projection": _projection(g.get("Projection"))}
        if g.get("ProvisionedThroughput"):
            d["ProvisionedThroughput"] = _throughput(g["ProvisionedThroughput"])
        out.append(d)
    return out


def _lsis(props: dict[str, Any]) -> list[dict[str, Any]]:
    return [
        {"IndexName": str(i["IndexName"]), "KeySchema": _key_schema(i.get("KeySchema")), "Projection": _projection(i.get("Projection"))}
        for i in props.get("LocalSecondaryIndexes") or []
    ]


def _attrs(props: dict[str, Any]) -> list[dict[str, str]]:
    return [{"AttributeName": str(a["AttributeName"]), "AttributeType": str(a["AttributeType"])} for a in props.get("AttributeDefinitions") or []]


def _billing(props: dict[str, Any]) -> str:
    # "If not specified, the default is PROVISIONED."
    return "PAY_PER_REQUEST" if props.get("BillingMode") == "PAY_PER_REQUEST" else "PROVISIONED"


def _sse(props: dict[str, Any]) -> dict[str, Any] | None:
    """CloudFormation's SSESpecification (SSEEnabled, SSEType, KMSMasterKeyId) as DynamoDB's."""
    s = props.get("SSESpecification") or {}
    if not _bool(s.get("SSEEnabled", False)):
        return None  # the AWS owned key: DescribeTable shows no SSEDescription
    out: dict[str, Any] = {"Enabled": True, "SSEType": s.get("SSEType") or "KMS"}
    if s.get("KMSMasterKeyId"):
        out["KMSMasterKeyId"] = s["KMSMasterKeyId"]
    return out


def _stream_view(props: dict[str, Any]) -> str | None:
    s = props.get("StreamSpecification") or {}
    return s.get("StreamViewType") or None


def _label(t: datetime) -> str:
    """A stream label, as in the AWS examples: 2015-11-30T20:10:00.000."""
    return t.strftime("%Y-%m-%dT%H:%M:%S.") + f"{t.microsecond // 1000:03d}"


def _validate(props: dict[str, Any]) -> None:
    """CreateTable's checks of keys, attribute definitions and throughput (moto's, which its
    CloudFormation path skips), plus the PAY_PER_REQUEST rule for index throughput."""
    billing = _billing(props)
    gsis = _gsis(props)
    if billing == "PAY_PER_REQUEST" and any("ProvisionedThroughput" in g for g in gsis):
        raise MockValidationException(
            "One or more parameter values were invalid: Neither ReadCapacityUnits nor WriteCapacityUnits can be specified when BillingMode is PAY_PER_REQUEST"
        )
    if billing == "PROVISIONED" and any("ProvisionedThroughput" not in g for g in gsis):
        raise MockValidationException(
            "One or more parameter values were invalid: ProvisionedThroughput must be specified for index: "
            + next(g["IndexName"] for g in gsis if "ProvisionedThroughput" not in g)
        )
    validator = DynamoHandler.__new__(DynamoHandler)
    validator._validate_table_creation(
        billing_mode=billing,
        throughput=_throughput(props.get("ProvisionedThroughput")),
        key_schema=_key_schema(props.get("KeySchema")),
        global_indexes=gsis or None,
        local_secondary_indexes=_lsis(props) or None,
        attr=_attrs(props),
        warm_throughput=None,
    )


# ---------------------------------------------------------------- the table
class OmsTable(Table, CloudFormationModel):
    """A table made by CloudFormation, stored in moto's DynamoDB backend `tables`, so moto's data
    plane (PutItem, Query, …) and DescribeTable see it. Its status follows the stack's events."""

    def __init__(self, name: str, account_id: str, region: str, props: dict[str, Any], stack_id: str | None = None, logical_id: str | None = None):
        gsis = _gsis(props)
        super().__init__(
            name,
            account_id=account_id,
            region=region,
            schema=_key_schema(props.get("KeySchema")),
            attr=_attrs(props),
            throughput=_throughput(props.get("ProvisionedThroughput")) if _billing(props) == "PROVISIONED" else None,
            billing_mode=_billing(props),
            indexes=_lsis(props),
            global_indexes=gsis,
            streams=None,
            sse_specification=_sse(props),
            tags=[],
            deletion_protection_enabled=_bool(props.get("DeletionProtectionEnabled", False)),
        )
        self.table_id = str(uuid.uuid4())
        self.oms_status = "CREATING"
        self.oms_stack_id = stack_id
        self.oms_logical_id = logical_id
        self.oms_create_error: str | None = None
        self.oms_props: dict[str, Any] = copy.deepcopy(props)
        self.table_class = props.get("TableClass") or "STANDARD"
        self._set_stream(_stream_view(props))
        self._set_pitr(props.get("PointInTimeRecoverySpecification") or {})
        self._set_ttl(props.get("TimeToLiveSpecification"), creating=True)
        self.refresh_tags()

    # ------------------------------------------------------------ settings
    def set_stream_specification(self, streams: dict[str, Any] | None) -> None:
        super().set_stream_specification(copy.deepcopy(streams) if streams else None)
        if self.latest_stream_label and self.stream_specification.get("StreamEnabled"):
            self.latest_stream_label = _label(utcnow())

    def _set_stream(self, view: str | None) -> None:
        current = self.stream_specification.get("StreamViewType") if self.stream_specification.get("StreamEnabled") else None
        if view == current:
            return
        if view is None:
            # The stream is switched off; LatestStreamArn keeps naming the old (disabled) stream.
            self.stream_specification = {"StreamEnabled": False}
            return
        # A new view type is a new stream ("the stream is replaced").
        self.set_stream_specification({"StreamEnabled": True, "StreamViewType": view})

    def _set_pitr(self, spec: dict[str, Any]) -> None:
        enabled = _bool(spec.get("PointInTimeRecoveryEnabled", False))
        cur = self.continuous_backups["PointInTimeRecoveryDescription"]
        if not enabled:
            self.continuous_backups["PointInTimeRecoveryDescription"] = {"PointInTimeRecoveryStatus": "DISABLED"}
            return
        days = _int(spec.get("RecoveryPeriodInDays", 35))
        if cur.get("PointInTimeRecoveryStatus") != "ENABLED":
            now = unix_time()
            self.continuous_backups["PointInTimeRecoveryDescription"] = {
                "PointInTimeRecoveryStatus": "ENABLED",
                "EarliestRestorableDateTime": now,
                "LatestRestorableDateTime": now,
                "RecoveryPeriodInDays": days,
            }
        else:
            cur["RecoveryPeriodInDays"] = days

    def _check_ttl(self, spec: Any) -> None:
        if spec and _bool(spec.get("Enabled", False)) and self.ttl.get("TimeToLiveStatus") == "ENABLED":
            if spec.get("AttributeName") != self.ttl.get("AttributeName"):
                # "To update this property, you must first disable TTL and then enable TTL with the
                # new attribute name." (the property's reference page)
                raise HandlerFailure(
                    service_message(f"TimeToLive is active on a different AttributeName: current AttributeName is {self.ttl.get('AttributeName')}")
                )

    def _set_ttl(self, spec: Any, creating: bool = False) -> None:
        if spec and _bool(spec.get("Enabled", False)):
            self.ttl = {"TimeToLiveStatus": "ENABLED", "AttributeName": spec.get("AttributeName")}
        elif not creating and self.ttl.get("TimeToLiveStatus") == "ENABLED":
            self.ttl = {"TimeToLiveStatus": "DISABLED"}

    def _set_sse(self, props: dict[str, Any]) -> None:
        sse = _sse(props)
        if sse and "KMSMasterKeyId" not in sse:
            sse["KMSMasterKeyId"] = self._get_default_encryption_key(self.account_id, self.region_name)
        self.sse_specification = sse

    def refresh_tags(self, stack_tags: dict[str, str] | None = None) -> None:
        """The table's tags: CloudFormation's aws:cloudformation:* tags, the stack's tags (which
        CloudFormation propagates) and the resource's own Tags."""
        tags: dict[str, str] = {}
        if self.oms_stack_id:
            m = re.match(r"^arn:[^:]+:cloudformation:[^:]*:[^:]*:stack/([^/]+)/", self.oms_stack_id)
            tags["aws:cloudformation:stack-name"] = m.group(1) if m else ""
            tags["aws:cloudformation:stack-id"] = self.oms_stack_id
            tags["aws:cloudformation:logical-id"] = self.oms_logical_id or ""
            if stack_tags is None:
                stack_tags = _stack_tags(self.account_id, self.region_name, self.oms_stack_id)
            tags.update(stack_tags or {})
        for t in self.oms_props.get("Tags") or []:
            if isinstance(t, dict) and "Key" in t:
                tags[str(t["Key"])] = str(t.get("Value", ""))
        self.tags = [{"Key": k, "Value": v} for k, v in tags.items()]

    # ------------------------------------------------------------ update
    def plan_update(self, props: dict[str, Any]) -> Callable[[], None]:
        """Checks an in-place update to `props` as the resource handler would, before anything
        changes; returns the function that applies it. Raises HandlerFailure."""
        old = self.oms_props
        if _lsis(old) != _lsis(props):
            # Local secondary indexes exist only from CreateTable on.
            raise HandlerFailure(handler_message("Local secondary indexes cannot be added, changed or removed on an existing table"))
        if _key_schema(old.get("KeySchema")) != _key_schema(props.get("KeySchema")):
            raise HandlerFailure(handler_message("The key schema of an existing table cannot be changed"))
        old_gsis = {g["IndexName"]: g for g in _gsis(old)}
        new_gsis = {g["IndexName"]: g for g in _gsis(props)}
        added = [n for n in new_gsis if n not in old_gsis]
        removed = [n for n in old_gsis if n not in new_gsis]
        for n in new_gsis:
            if n in old_gsis and (new_gsis[n]["KeySchema"] != old_gsis[n]["KeySchema"] or new_gsis[n]["Projection"] != old_gsis[n]["Projection"]):
                raise HandlerFailure(handler_message(GSI_NOT_UPDATABLE))
        if len(added) + len(removed) > 1:
            raise HandlerFailure(handler_message(GSI_ONE_AT_A_TIME))
        self._check_ttl(props.get("TimeToLiveSpecification"))
        try:
            _validate(props)
        except MockValidationException as e:
            raise HandlerFailure(service_message(e.message)) from None
        old_types = {a["AttributeName"]: a["AttributeType"] for a in _attrs(old)}
        for a in _attrs(props):
            if a["AttributeName"] in old_types and old_types[a["AttributeName"]] != a["AttributeType"]:
                raise HandlerFailure(handler_message(f"The type of the existing attribute {a['AttributeName']} cannot be changed"))

        def apply() -> None:
            self.attr = _attrs(props)
            billing = _billing(props)
            self.billing_mode = billing
            decreases = self.throughput.get("NumberOfDecreasesToday", 0)
            if billing == "PROVISIONED":
                self.throughput = {**(_throughput(props.get("ProvisionedThroughput")) or {}), "NumberOfDecreasesToday": decreases}
            else:
                self.throughput = {"ReadCapacityUnits": 0, "WriteCapacityUnits": 0, "NumberOfDecreasesToday": decreases}
            kept = [g for g in self.global_indexes if g.name in new_gsis]
            for g in kept:
                spec = new_gsis[g.name]
                g.throughput = spec.get("ProvisionedThroughput") or {"ReadCapacityUnits": 0, "WriteCapacityUnits": 0}
            for n in added:
                kept.append(GlobalSecondaryIndex.create(new_gsis[n], self.table_key_attrs))
            order = list(new_gsis)
            self.global_indexes = sorted(kept, key=lambda g: order.index(g.name))
            self._set_stream(_stream_view(props))
            self._set_pitr(props.get("PointInTimeRecoverySpecification") or {})
            self.deletion_protection_enabled = _bool(props.get("DeletionProtectionEnabled", False))
            self._set_sse(props)
            self.table_class = props.get("TableClass") or "STANDARD"
            self._set_ttl(props.get("TimeToLiveSpecification"))
            self.oms_props = copy.deepcopy(props)
            self.refresh_tags()

        return apply

    # ------------------------------------------------------------ describe
    def _index_items(self, idx: Any) -> list[Any]:
        keys = idx.schema_key_attrs
        return [i for i in self.all_items() if all(k in i.attrs for k in keys)]

    def describe(self, base_key: str = "TableDescription") -> dict[str, Any]:
        d = super().describe(base_key)
        t = d[base_key]
        t["TableStatus"] = self.oms_status
        t["TableId"] = self.table_id
        t["TableClassSummary"] = {"TableClass": self.table_class}
        gsis = []
        for g in self.global_indexes:
            gd = g.describe()
            items = self._index_items(g)
            gd["IndexArn"] = f"{self.table_arn}/index/{g.name}"
            gd["ItemCount"] = len(items)
            gd["IndexSizeBytes"] = sum(g.project(i).size() for i in items)
            gsis.append(gd)
        if gsis:
            t["GlobalSecondaryIndexes"] = gsis
        else:
            t.pop("GlobalSecondaryIndexes", None)
        if not t.get("LocalSecondaryIndexes"):
            t.pop("LocalSecondaryIndexes", None)
        return d

    def get_cfn_attribute(self, attribute_name: str) -> Any:
        from moto.cloudformation.exceptions import UnformattedGetAttTemplateException

        if attribute_name == "Arn":
            return self.table_arn
        if attribute_name == "StreamArn" and self.latest_stream_label:
            return f"{self.table_arn}/stream/{self.latest_stream_label}"
        raise UnformattedGetAttTemplateException()

    # ------------------------------------------------------------ stack timeline
    def oms_resource_status(self, status: str) -> None:
        """The table's resource reached `status` in its stack (cfn.py): the table's status."""
        if status == "CREATE_IN_PROGRESS":
            self.oms_status = "CREATING"
        elif status == "UPDATE_IN_PROGRESS":
            self.oms_status = "UPDATING"
        elif status == "DELETE_IN_PROGRESS":
            self.oms_status = "DELETING"
        elif status in ("CREATE_COMPLETE", "UPDATE_COMPLETE", "UPDATE_FAILED", "DELETE_FAILED"):
            self.oms_status = "ACTIVE"

    def oms_delete_refusal(self) -> str | None:
        """Why DynamoDB refuses to delete this table now (as a CloudFormation reason), or None."""
        backend = dynamodb_backends[self.account_id][self.region_name]
        if self.oms_create_error or backend.tables.get(self.name) is not self:
            return None
        why = delete_refusal(backend, self)
        if not why:
            return None
        return service_message(why[1], "ResourceConflict" if why[0] == "ResourceInUseException" else "InvalidRequest")

    # ------------------------------------------------------------ CFN model
    @staticmethod
    def cloudformation_name_type() -> str:
        return "TableName"

    @staticmethod
    def cloudformation_type() -> str:
        return "AWS::DynamoDB::Table"

    @classmethod
    def has_cfn_attr(cls, attr: str) -> bool:
        return attr in ("Arn", "StreamArn")

    @classmethod
    def create_from_cloudformation_json(cls, resource_name, cloudformation_json, account_id, region_name, **kwargs):  # type: ignore[no-untyped-def,override]
        props = cloudformation_json.get("Properties", {})
        backend = dynamodb_backends[account_id][region_name]
        name = str(props.get("TableName") or resource_name)
        stack_id, logical_id = kwargs.get("StackId"), kwargs.get("LogicalId")
        error = None
        if name in backend.tables:
            # CloudFormation's create handler finds the name taken.
            error = handler_message(f"Resource of type 'AWS::DynamoDB::Table' with identifier '{name}' already exists.", "AlreadyExists")
        else:
            try:
                _validate(props)
            except MockValidationException as e:
                error = service_message(e.message)
        if error is not None:
            # Refused: a table that was never made (not in the backend); cfn.create_stack turns
            # oms_create_error into CREATE_FAILED and a rollback.
            table = cls.__new__(cls)
            table.name, table.account_id, table.region_name = name, account_id, region_name
            table.oms_create_error, table.oms_status = error, "CREATING"
            table.table_arn = f"arn:aws:dynamodb:{region_name}:{account_id}:table/{name}"
            table.latest_stream_label = None
            return table
        table = cls(name, account_id, region_name, props, stack_id, logical_id)
        backend.tables[name] = table
        return table

    @classmethod
    def update_from_cloudformation_json(cls, original_resource, new_resource_name, cloudformation_json, account_id, region_name):  # type: ignore[no-untyped-def,override]
        props = cloudformation_json.get("Properties", {})
        name = str(props.get("TableName") or new_resource_name)
        if name != original_resource.name:
            # A new name: a new table (replacement); cfn.py deletes the old one in the cleanup phase.
            return cls.create_from_cloudformation_json(
                name, cloudformation_json, account_id, region_name, StackId=original_resource.oms_stack_id, LogicalId=original_resource.oms_logical_id
            )
        try:
            original_resource.plan_update(props)()
        except HandlerFailure as e:
            raise HandlerFailure(e.message) from None
        return original_resource

    @classmethod
    def delete_from_cloudformation_json(cls, resource_name, cloudformation_json, account_id, region_name):  # type: ignore[no-untyped-def,override]
        backend = dynamodb_backends[account_id][region_name]
        t = backend.tables.get(resource_name)
        if isinstance(t, OmsTable):
            backend.tables.pop(resource_name, None)

    def delete(self, account_id: str, region_name: str) -> None:
        backend = dynamodb_backends[account_id][region_name]
        if backend.tables.get(self.name) is self:
            backend.tables.pop(self.name, None)

    def is_created(self) -> bool:
        return True


def _stack_tags(account_id: str, region: str, stack_id: str) -> dict[str, str]:
    from moto.cloudformation.models import cloudformation_backends

    stack = cloudformation_backends[account_id][region].stacks.get(stack_id)
    return dict(getattr(stack, "tags", None) or {})


def refresh_stack_tags(resource_map: Any, tags: dict[str, str]) -> None:
    """After a stack update: the stack's (possibly new) tags on its tables."""
    for r in list(resource_map._parsed_resources.values()):
        if isinstance(r, OmsTable) and not r.oms_create_error:
            r.refresh_tags(tags)


# ---------------------------------------------------------------- DynamoDB API
def _backend(resp: DynamoHandler) -> Any:
    return dynamodb_backends[resp.current_account][resp.region]


def _backups_in_progress(backend: Any, table: Any) -> bool:
    return any(b.status == "CREATING" and b.table.table_arn == table.table_arn for b in backend.backups.values())


def delete_refusal(backend: Any, table: Any) -> tuple[str, str] | None:
    """(code, message) of DynamoDB's refusal to delete `table` now, or None."""
    if table.deletion_protection_enabled:
        return "ValidationException", PROTECTED
    if _backups_in_progress(backend, table):
        # "While a backup is in progress, you can't ... Delete the source table of the backup."
        return "ResourceInUseException", f"Table {table.name} cannot be deleted while a backup of it is being created."
    return None


def _delete_table(self: Any, name: str) -> Any:
    table = self.get_table(name)
    why = delete_refusal(self, table)
    if why:
        raise DynamoFault(*why)
    if getattr(table, "oms_status", "ACTIVE") in ("CREATING", "UPDATING"):
        # DeleteTable: "If a table is in CREATING or UPDATING states, then DynamoDB returns a
        # ResourceInUseException."
        raise DynamoFault("ResourceInUseException", f"Attempt to change a resource which is still in use: Table {table.name} is {table.oms_status}")
    return self.tables.pop(table.name)


def _table_size(table: Any) -> int:
    try:
        return sum(i.size() for i in table.all_items())
    except Exception:  # noqa: BLE001
        return 0


def _create_backup(self: Any, table_name: str, backup_name: str) -> Any:
    if not isinstance(backup_name, str) or not 3 <= len(backup_name) <= 255 or not _BACKUP_NAME.fullmatch(backup_name):
        raise MockValidationException(
            f"1 validation error detected: Value '{backup_name}' at 'backupName' failed to satisfy constraint: "
            "Member must satisfy regular expression pattern: [a-zA-Z0-9_.-]+"
        )
    try:
        table = self.get_table(table_name)
    except ResourceNotFoundException:
        raise TableNotFoundException(table_name) from None
    if getattr(table, "oms_status", "ACTIVE") in ("CREATING", "DELETING"):
        raise DynamoFault("TableInUseException", TABLE_IN_USE)
    size = _table_size(table)
    backup = Backup(self.account_id, self.region_name, backup_name, table, status="CREATING")
    backup.oms_size = size
    # SourceTableDetails.TableId is required; tables made by moto's CreateTable have none.
    backup.oms_table_id = getattr(table, "table_id", None) or str(uuid.uuid5(uuid.NAMESPACE_URL, table.table_arn))
    self.backups[backup.arn] = backup
    delay = max(0.0, float(state.CONFIG.get("snapshot_delay_seconds", 1.0)))

    def done(_due: float, backup: Any = backup) -> None:
        if backup.status == "CREATING":
            backup.status = "AVAILABLE"

    state.schedule(state.now() + delay, done)
    return backup


def _details(b: Any) -> dict[str, Any]:
    return {
        "BackupArn": b.arn,
        "BackupName": b.name,
        "BackupSizeBytes": getattr(b, "oms_size", 0),
        "BackupStatus": b.status,
        "BackupType": b.type,
        "BackupCreationDateTime": b.creation_date_time,
    }


def _summary(b: Any) -> dict[str, Any]:
    d = {
        "TableName": b.table.name,
        "TableArn": b.table.table_arn,
        "BackupArn": b.arn,
        "BackupName": b.name,
        "BackupCreationDateTime": b.creation_date_time,
        "BackupStatus": b.status,
        "BackupType": b.type,
        "BackupSizeBytes": getattr(b, "oms_size", 0),
    }
    if getattr(b, "oms_table_id", None):
        d["TableId"] = b.oms_table_id
    return d


def _description(b: Any) -> dict[str, Any]:
    t = b.table
    desc = t.describe()["TableDescription"]
    source: dict[str, Any] = {
        "TableName": t.name,
        "TableArn": t.table_arn,
        "TableSizeBytes": getattr(b, "oms_size", 0),
        "KeySchema": t.schema,
        "TableCreationDateTime": t.created_at,
        "ProvisionedThroughput": {k: v for k, v in t.throughput.items() if k in ("ReadCapacityUnits", "WriteCapacityUnits")},
        "ItemCount": len(t),
        "BillingMode": t.billing_mode,
    }
    if getattr(b, "oms_table_id", None):
        source["TableId"] = b.oms_table_id
    features: dict[str, Any] = {}
    if desc.get("GlobalSecondaryIndexes"):
        features["GlobalSecondaryIndexes"] = [
            {k: g[k] for k in ("IndexName", "KeySchema", "Projection", "ProvisionedThroughput") if k in g} for g in desc["GlobalSecondaryIndexes"]
        ]
    if desc.get("LocalSecondaryIndexes"):
        features["LocalSecondaryIndexes"] = desc["LocalSecondaryIndexes"]
    if desc.get("StreamSpecification"):
        features["StreamDescription"] = desc["StreamSpecification"]
    features["TimeToLiveDescription"] = dict(t.ttl)
    if desc.get("SSEDescription"):
        features["SSEDescription"] = desc["SSEDescription"]
    return {"BackupDetails": _details(b), "SourceTableDetails": source, "SourceTableFeatureDetails": features}


def _epoch(v: Any) -> float | None:
    if v in (None, ""):
        return None
    if isinstance(v, datetime):
        return (v if v.tzinfo else v.replace(tzinfo=timezone.utc)).timestamp()
    return float(v)


def _list_backups(self: DynamoHandler) -> ActionResult:
    """ListBackups: TableName (name or ARN), BackupType (default USER), TimeRangeLowerBound
    (inclusive) and TimeRangeUpperBound (exclusive), Limit 1-100, ExclusiveStartBackupArn;
    LastEvaluatedBackupArn while more remain. Oldest first."""
    state.advance()
    body = self.body
    backend = _backend(self)
    table_name = body.get("TableName")
    backup_type = body.get("BackupType") or "USER"
    limit = body.get("Limit")
    if limit is not None and not 1 <= int(limit) <= 100:
        raise MockValidationException(
            f"1 validation error detected: Value '{limit}' at 'limit' failed to satisfy constraint: Member must have value between 1 and 100"
        )
    lower, upper = _epoch(body.get("TimeRangeLowerBound")), _epoch(body.get("TimeRangeUpperBound"))
    found = []
    for b in backend.backups.values():
        if table_name and table_name not in (b.table.name, b.table.table_arn):
            continue
        if backup_type not in ("ALL", b.type):
            continue
        made = b.creation_date_time.replace(tzinfo=timezone.utc).timestamp()
        if lower is not None and made < lower:
            continue
        if upper is not None and made >= upper:
            continue
        found.append(b)
    start = body.get("ExclusiveStartBackupArn")
    if start:
        arns = [b.arn for b in found]
        found = found[arns.index(start) + 1 :] if start in arns else []
    page = found[: int(limit)] if limit else found
    out: dict[str, Any] = {"BackupSummaries": [_summary(b) for b in page]}
    if limit and len(found) > len(page):
        out["LastEvaluatedBackupArn"] = page[-1].arn
    return DynamoResult(out)


def _create_backup_handler(self: DynamoHandler) -> ActionResult:
    state.advance()
    backup = _backend(self).create_backup(self.body.get("TableName"), self.body.get("BackupName"))
    return DynamoResult({"BackupDetails": _details(backup)})


def _describe_backup(self: DynamoHandler) -> ActionResult:
    state.advance()
    backup = _backend(self).get_backup(self.body.get("BackupArn"))
    return DynamoResult({"BackupDescription": _description(backup)})


def _delete_backup(self: DynamoHandler) -> ActionResult:
    state.advance()
    backend = _backend(self)
    arn = self.body.get("BackupArn")
    backup = backend.get_backup(arn)
    if backup.status == "CREATING":
        raise DynamoFault("BackupInUseException", BACKUP_IN_USE)
    desc = _description(backup)
    backend.backups.pop(arn)
    backup.status = "DELETED"
    desc["BackupDetails"]["BackupStatus"] = "DELETED"
    return DynamoResult({"BackupDescription": desc})


_orig_restore = DynamoHandler.restore_table_from_backup


def _restore_table_from_backup(self: DynamoHandler) -> ActionResult:
    backup = _backend(self).backups.get(self.body.get("BackupArn"))
    if backup is None:
        raise BackupNotFoundException(self.body.get("BackupArn"))
    if backup.status == "CREATING":
        raise DynamoFault("BackupInUseException", BACKUP_IN_USE)
    return _orig_restore(self)


_orig_describe_cb = ddb_models.DynamoDBBackend.describe_continuous_backups


def _describe_continuous_backups(self: Any, table_name: str) -> dict[str, Any]:
    out = _orig_describe_cb(self, table_name)
    pitr = out.get("PointInTimeRecoveryDescription") or {}
    if pitr.get("PointInTimeRecoveryStatus") == "ENABLED":
        pitr["LatestRestorableDateTime"] = unix_time()
    return out


# Data-plane actions and where their table names are.
def _tables_of(body: dict[str, Any]) -> list[str]:
    names = []
    if isinstance(body.get("TableName"), str):
        names.append(body["TableName"])
    for k in (body.get("RequestItems") or {}):
        names.append(k)
    for item in body.get("TransactItems") or []:
        for op in (item or {}).values():
            if isinstance(op, dict) and isinstance(op.get("TableName"), str):
                names.append(op["TableName"])
    return names


def _not_while_creating(fn: Callable) -> Callable:
    """A table "too early in the CREATING state" answers ResourceNotFoundException (the
    developer guide's error table)."""

    def handler(self: DynamoHandler) -> Any:
        state.advance()
        backend = _backend(self)
        for name in _tables_of(self.body or {}):
            t = backend.tables.get(name)
            if isinstance(t, OmsTable) and t.oms_status == "CREATING":
                raise ResourceNotFoundException()
        return fn(self)

    handler.__name__ = fn.__name__
    return handler


DATA_PLANE = (
    "put_item",
    "get_item",
    "delete_item",
    "update_item",
    "query",
    "scan",
    "batch_write_item",
    "batch_get_item",
    "transact_write_items",
    "transact_get_items",
)


_orig_table_describe = Table.describe


def _table_describe(self: Any, base_key: str = "TableDescription") -> dict[str, Any]:
    """Every table's DescribeTable with TableSizeBytes computed from its items (moto says 0)."""
    d = _orig_table_describe(self, base_key)
    d[base_key]["TableSizeBytes"] = _table_size(self)
    return d


def install() -> None:
    Table.describe = _table_describe
    ddb_models.DynamoDBBackend.delete_table = _delete_table
    ddb_models.DynamoDBBackend.create_backup = _create_backup
    ddb_models.DynamoDBBackend.describe_continuous_backups = _describe_continuous_backups
    DynamoHandler.list_backups = _list_backups
    DynamoHandler.create_backup = _create_backup_handler
    DynamoHandler.describe_backup = _describe_backup
    DynamoHandler.delete_backup = _delete_backup
    DynamoHandler.restore_table_from_backup = _restore_table_from_backup
    for name in DATA_PLANE:
        setattr(DynamoHandler, name, _not_while_creating(getattr(DynamoHandler, name)))
