"""CloudFormation resource models moto lacks (ElastiCache ReplicationGroup,
SubnetGroup, ParameterGroup; CloudWatch Alarm), intrinsic-function fixes
(Fn::Cidr, Fn::Equals on numbers), and ElastiCache API additions
(TestFailover, DescribeCacheParameterGroups, DescribeCacheParameters, delayed
snapshots, DescribeSnapshots for deleted groups, AUTH tokens with
ModifyReplicationGroup's ROTATE / SET, kept in step on a bound redis-server;
DescribeEvents; restores from snapshots, whose keys a bound redis-server
gives and takes).

Import this module before the server handles its first request: moto caches
CloudFormationModel.__subclasses__() on first use.
"""
from __future__ import annotations

import ipaddress
import itertools
import logging
import math
import random
import re
import string
import uuid
from datetime import datetime, timedelta, timezone
from typing import Any

from moto.cloudformation import parsing
from moto.cloudwatch.models import cloudwatch_backends
from moto.core.common_models import BaseModel, CloudFormationModel
from moto.core.exceptions import ServiceException
from moto.core.responses import ActionResult
from moto.core.utils import utcnow
from moto.elasticache import models as ec_models
from moto.elasticache.exceptions import (
    ReplicationGroupNotFound,
    SnapshotAlreadyExists,
    SnapshotNotFound,
)
from moto.elasticache.models import CacheSubnetGroup, elasticache_backends
from moto.elasticache.responses import ElastiCacheResponse

from . import redis_acl, state

log = logging.getLogger("oms_emulator")


def _bool(v: Any) -> bool:
    if isinstance(v, bool):
        return v
    return str(v).strip().lower() == "true"


def _lower_name(stack_name: str, logical_id: str) -> str:
    suffix = "".join(random.choices(string.ascii_lowercase + string.digits, k=12))
    return f"{stack_name}-{logical_id}-{suffix}".lower()[:255]


class ElastiCacheFault(ServiceException):
    def __init__(self, code: str, message: str, status: int = 400):
        self.code = code
        self.code_status = status
        super().__init__(message)


def handler_message(e: ElastiCacheFault) -> str:
    """How CloudFormation reports a resource handler's ElastiCache error."""
    status = getattr(e, "code_status", 400)
    return (
        f'Resource handler returned message: "{e.message} (Service: ElastiCache, Status Code: {status}, '
        f'Request ID: {uuid.uuid4()})" (RequestToken: {uuid.uuid4()}, HandlerErrorCode: InvalidRequest)'
    )


# ---------------------------------------------------------------- events (DescribeEvents)
_event_seq = itertools.count()


def emit_event(account_id: str, region: str, source_id: str, source_type: str, message: str, t: float | None = None) -> None:
    """Records an ElastiCache event of an account and region for DescribeEvents."""
    state.EVENTS.append(
        {
            "account": account_id,
            "region": region,
            "SourceIdentifier": source_id,
            "SourceType": source_type,
            "Message": message,
            "Date": state.now() if t is None else t,
            "seq": next(_event_seq),
        }
    )


# ---------------------------------------------------------------- AUTH tokens
# CreateReplicationGroup: 16-128 printable characters; "The only permitted printable
# special characters are !, &, #, $, ^, <, >, and -" (the stricter of the create and
# modify rules, used for both).
_AUTH_TOKEN = re.compile(r"[A-Za-z0-9!&#$^<>-]{16,128}")
# ElastiCache's own wording, as users quote it (no AWS page gives the messages).
NO_TLS_FOR_TOKEN = "The AUTH token is only supported when encryption-in-transit is enabled"
BAD_TOKEN = "Invalid AuthToken provided."


def check_auth_token(token: str, tls: bool) -> None:
    if not tls:
        raise ElastiCacheFault("InvalidParameterCombination", NO_TLS_FOR_TOKEN)
    if not _AUTH_TOKEN.fullmatch(token):
        raise ElastiCacheFault("InvalidParameterValue", BAD_TOKEN)


# ---------------------------------------------------------------- restore rules
def _version(v: str) -> tuple[int, ...]:
    return tuple(int(x) for x in re.findall(r"\d+", v)[:3])


def check_restorable(snap_engine: str, snap_version: str, engine: str, version: str) -> None:
    """Whether a snapshot of snap_engine/snap_version can seed a group of engine/version.
    Redis OSS into Valkey is the documented cross-engine direction (Valkey is a drop-in
    replacement for Redis OSS 7); Valkey into Redis OSS and a lower engine version would be
    downgrades, which ElastiCache does not allow."""
    snap_engine, engine = snap_engine.lower(), engine.lower()
    if snap_engine == engine:
        if snap_version and version and _version(version) < _version(snap_version):
            raise ElastiCacheFault(
                "InvalidParameterCombination",
                f"Cannot restore a snapshot of {snap_engine} {snap_version} into a replication group of "
                f"{engine} {version}: the engine version cannot be lower than the snapshot's.",
            )
        return
    if snap_engine == "redis" and engine == "valkey":
        return
    raise ElastiCacheFault(
        "InvalidParameterCombination",
        f"Cannot restore a snapshot of engine {snap_engine} into a replication group of engine {engine}.",
    )


# ---------------------------------------------------------------- replication group
class OmsReplicationGroup(CloudFormationModel):
    """A cluster-mode-disabled Redis replication group made by CloudFormation.

    Stored in moto's elasticache backend `replication_groups`, so moto's own
    DescribeReplicationGroups / CreateSnapshot / ModifyReplicationGroup see it.
    Attribute names follow the botocore shape (moto serialises by attribute).
    """

    def __init__(self, account_id: str, region_name: str, rg_id: str, props: dict[str, Any]):
        self.account_id = account_id
        self.region_name = region_name
        self.replication_group_id = rg_id
        self.arn = f"arn:aws:elasticache:{region_name}:{account_id}:replicationgroup:{rg_id}"
        self.status = "creating"
        self.cluster_mode = "disabled"
        self.cluster_enabled = False
        self.global_replication_group_id = ""
        self.replication_group_create_time = utcnow()
        self.member_clusters_outpost_arns: list[str] = []
        self.log_delivery_configurations: list[dict[str, Any]] = []
        self.user_group_ids: list[str] = []
        # AUTH: the valid tokens (empty: no AUTH); auth_open while unauthenticated clients
        # still get in after a ROTATE on a group without a token, until a SET.
        self.auth_tokens: list[str] = []
        self.auth_open = False
        self.auth_last_rotated: str | None = None  # what a SET must repeat
        self.auth_token_last_modified_date = None
        self.auth_token_prop: str | None = None  # the CloudFormation AuthToken property last applied
        self.pending_auth: tuple[str, str] | None = None  # (strategy, token) being applied
        self.modify_gen = 0
        self.oms_create_error: str | None = None
        self.data_tiering = "disabled"
        self.network_type = "ipv4"
        self.ip_discovery = "ipv4"
        self.primary_index = 0
        self.failover_until = 0.0
        self.oms_stack_id = None
        # The snapshot this group is being restored from (status `restoring` until the create ends).
        self.restore_snapshot: Any = None
        self.apply_props(props, creating=True)

    # ------------------------------------------------------------ properties
    def apply_props(self, props: dict[str, Any], creating: bool = False) -> None:
        token = props.get("AuthToken") or None
        if token != self.auth_token_prop:
            # Checked before anything changes, so a refused update leaves the group as it was.
            self._cfn_auth_token(token, _bool(props.get("TransitEncryptionEnabled", False)), creating)
        self.description = props.get("ReplicationGroupDescription", "")
        self.engine = props.get("Engine", "redis")
        self.engine_version = str(props.get("EngineVersion", "7.1"))
        self.cache_node_type = props.get("CacheNodeType", "cache.t4g.micro")
        n = props.get("NumCacheClusters")
        if n is None:
            n = int(props.get("ReplicasPerNodeGroup", 0) or 0) + 1
        self.num_cache_clusters = max(1, int(n))
        if self.primary_index >= self.num_cache_clusters:
            self.primary_index = 0
        self.port = int(props.get("Port", 6379) or 6379)
        self.automatic_failover = "enabled" if _bool(props.get("AutomaticFailoverEnabled", False)) else "disabled"
        self.multi_az = "enabled" if _bool(props.get("MultiAZEnabled", False)) else "disabled"
        self.at_rest_encryption_enabled = _bool(props.get("AtRestEncryptionEnabled", False))
        self.transit_encryption_enabled = _bool(props.get("TransitEncryptionEnabled", False))
        if self.transit_encryption_enabled:
            self.transit_encryption_mode = "required"
        else:
            self.transit_encryption_mode = None
        self.snapshot_retention_limit = int(props.get("SnapshotRetentionLimit", 0) or 0)
        self.snapshot_window = props.get("SnapshotWindow") or "06:30-07:30"
        self.snapshotting_cluster_id = None
        self.preferred_maintenance_window = props.get("PreferredMaintenanceWindow")
        self.cache_parameter_group_name = props.get("CacheParameterGroupName")
        self.cache_subnet_group_name = props.get("CacheSubnetGroupName")
        self.security_group_ids = list(props.get("SecurityGroupIds", []) or [])
        self.tags = list(props.get("Tags", []) or [])
        self.auto_minor_version_upgrade = _bool(props.get("AutoMinorVersionUpgrade", True))
        self.kms_key_id = props.get("KmsKeyId")

    # ------------------------------------------------------------ AUTH
    @property
    def auth_token_enabled(self) -> bool:
        return bool(self.auth_tokens)

    def _cfn_auth_token(self, token: str | None, tls: bool, creating: bool) -> None:
        """A create or update through CloudFormation that sets the AuthToken property."""
        if token is None:
            # Removing the token is ModifyReplicationGroup's DELETE, allowed only when moving to RBAC.
            raise ElastiCacheFault(
                "InvalidParameterCombination",
                "AuthTokenUpdateStrategy DELETE is allowed only when transitioning to RBAC (UserGroupIds).",
            )
        check_auth_token(token, tls)
        if creating:
            self.auth_tokens = [token]
        else:
            # CloudFormation does not say which strategy it uses; ROTATE is ElastiCache's default.
            self._apply_auth("ROTATE", token)
        self.auth_token_prop = token
        self.auth_token_last_modified_date = utcnow()

    def check_auth_change(self, strategy: str, token: str | None) -> None:
        """ModifyReplicationGroup's checks of AuthToken and AuthTokenUpdateStrategy."""
        if strategy not in ("ROTATE", "SET", "DELETE"):
            raise ElastiCacheFault("InvalidParameterValue", f"Invalid AuthTokenUpdateStrategy: {strategy}")
        if strategy == "DELETE":
            raise ElastiCacheFault(
                "InvalidParameterCombination",
                "AuthTokenUpdateStrategy DELETE is allowed only when transitioning to RBAC (UserGroupIds).",
            )
        if not token:
            raise ElastiCacheFault("InvalidParameterValue", f"AuthToken is required with AuthTokenUpdateStrategy {strategy}.")
        check_auth_token(token, self.transit_encryption_enabled)
        if self.status != "available" or self.pending_auth:
            raise ElastiCacheFault(
                "InvalidReplicationGroupState",
                f"Replication group {self.replication_group_id} is not in available state. Current state: {self.status}",
            )
        if strategy == "SET":
            if self.auth_last_rotated is None:
                raise ElastiCacheFault("InvalidParameterCombination", "AuthTokenUpdateStrategy SET is allowed only after ROTATE.")
            if token != self.auth_last_rotated:
                raise ElastiCacheFault("InvalidParameterValue", "The AUTH token for SET must be the same as the last AUTH token rotated.")

    def _apply_auth(self, strategy: str, token: str) -> None:
        if strategy == "SET":
            self.auth_tokens, self.auth_open, self.auth_last_rotated = [token], False, None
            return
        # ROTATE keeps the previous token (two at most); on a group without one,
        # unauthenticated clients keep getting in until a SET.
        if not self.auth_tokens:
            self.auth_open = True
        self.auth_tokens = list(dict.fromkeys(self.auth_tokens[-1:] + [token]))
        self.auth_last_rotated = token

    def begin_auth_change(self, strategy: str, token: str) -> None:
        """The group is `modifying` for modify_delay_seconds; the tokens change at the end."""
        self.status = "modifying"
        self.pending_auth = (strategy, token)
        self.modify_gen += 1

        def done(_due: float, gen: int = self.modify_gen) -> None:
            if self.modify_gen != gen or self.pending_auth is None:
                return
            self._apply_auth(*self.pending_auth)
            self.pending_auth = None
            self.auth_token_last_modified_date = utcnow()
            if self.status == "modifying":
                self.status = "available"
            self.sync_redis()

        state.schedule(state.now() + float(state.CONFIG.get("modify_delay_seconds", 1.0)), done)

    def sync_redis(self) -> None:
        """Puts the tokens on the bound redis-server, if any; a failure is logged, not raised."""
        try:
            redis_acl.apply(self)
        except redis_acl.RedisError as e:
            log.warning("%s", e)

    # ------------------------------------------------------------ restore from a snapshot
    def check_restore(self, backend: Any, name: str | None) -> None:
        """CreateReplicationGroup's SnapshotName: the snapshot must exist in this account and
        region, be `available`, and be of an engine and version this group can take. Marks it
        `restoring` while the group is created."""
        if not name:
            return
        snap = backend.snapshots.get(name)
        if snap is None:
            raise ElastiCacheFault("SnapshotNotFoundFault", f"Snapshot {name} not found.", 404)
        if snap.snapshot_status != "available":
            raise ElastiCacheFault(
                "InvalidSnapshotState",
                f"Snapshot {name} is not in available state. Current state: {snap.snapshot_status}",
            )
        check_restorable(snap.engine or "redis", str(snap.engine_version or ""), self.engine, self.engine_version)
        self.restore_snapshot = snap
        snap.snapshot_status = "restoring"

    def on_stack_status(self, status: str) -> None:
        """The group's resource reached `status` in its stack: a restore ends with the create (its
        snapshot is `available` again), and a complete one loads the snapshot's keys into the
        bound redis-server."""
        snap = self.restore_snapshot
        if snap is None or status not in ("CREATE_COMPLETE", "CREATE_FAILED", "DELETE_IN_PROGRESS", "DELETE_COMPLETE"):
            return
        self.restore_snapshot = None
        if snap.snapshot_status == "restoring":
            snap.snapshot_status = "available"
        data = getattr(snap, "oms_data", None)
        if status != "CREATE_COMPLETE" or not data:
            return
        try:
            n = redis_acl.restore_all(self.replication_group_id, data)
            log.info("restored %d keys of snapshot %s into %s", n, snap.snapshot_name, self.replication_group_id)
        except redis_acl.RedisError as e:
            log.warning("%s", e)

    # ------------------------------------------------------------ endpoints
    def _default_domain(self) -> str:
        return "abc123.ng.0001.use1.cache.amazonaws.com"

    def _bound(self, key: str) -> Any:
        """host/port of the redis-server bound to this group, if any."""
        b = redis_acl.binding(self.replication_group_id)
        return b[key] if b else None

    @property
    def primary_address(self) -> str:
        return self._bound("host") or state.CONFIG.get("endpoint_address") or f"{self.replication_group_id}.{self._default_domain()}"

    @property
    def reader_address(self) -> str:
        return self._bound("host") or state.CONFIG.get("endpoint_address") or f"{self.replication_group_id}-ro.{self._default_domain()}"

    @property
    def endpoint_port(self) -> int:
        p = self._bound("port") or state.CONFIG.get("endpoint_port")
        return int(p) if p else self.port

    def member_ids(self) -> list[str]:
        return [f"{self.replication_group_id}-{i + 1:03d}" for i in range(self.num_cache_clusters)]

    @property
    def member_clusters(self) -> list[str]:
        return self.member_ids()

    @property
    def primary_cluster_id(self) -> str:
        return self.member_ids()[self.primary_index]

    @property
    def node_groups(self) -> list[dict[str, Any]]:
        ids = self.member_ids()
        order = [self.primary_index] + [i for i in range(len(ids)) if i != self.primary_index]
        azs = ["us-east-1a", "us-east-1b", "us-east-1c", "us-east-1d"]
        members = []
        for i in order:
            cid = ids[i]
            addr = self._bound("host") or state.CONFIG.get("endpoint_address") or (
                f"{cid}.{self.replication_group_id}.abc123.use1.cache.amazonaws.com"
            )
            members.append(
                {
                    "CacheClusterId": cid,
                    "CacheNodeId": "0001",
                    "ReadEndpoint": {"Address": addr, "Port": self.endpoint_port},
                    "PreferredAvailabilityZone": azs[i % len(azs)],
                    "CurrentRole": "primary" if i == self.primary_index else "replica",
                }
            )
        ng_status = "modifying" if self.status == "modifying" else ("available" if self.status == "available" else self.status)
        return [
            {
                "NodeGroupId": "0001",
                "Status": ng_status,
                "PrimaryEndpoint": {"Address": self.primary_address, "Port": self.endpoint_port},
                "ReaderEndpoint": {"Address": self.reader_address, "Port": self.endpoint_port},
                "NodeGroupMembers": members,
            }
        ]

    @property
    def pending_modified_values(self) -> dict[str, Any]:
        if self.pending_auth:
            return {"AuthTokenStatus": "SETTING" if self.pending_auth[0] == "SET" else "ROTATING"}
        return {}

    # ------------------------------------------------------------ CFN model
    @staticmethod
    def cloudformation_name_type() -> str:
        return "ReplicationGroupId"

    @staticmethod
    def cloudformation_type() -> str:
        return "AWS::ElastiCache::ReplicationGroup"

    @classmethod
    def has_cfn_attr(cls, attr: str) -> bool:
        return attr in {
            "PrimaryEndPoint.Address",
            "PrimaryEndPoint.Port",
            "ReaderEndPoint.Address",
            "ReaderEndPoint.Port",
            "ReadEndPoint.Addresses",
            "ReadEndPoint.Ports",
            "ReadEndPoint.Addresses.List",
            "ReadEndPoint.Ports.List",
            "ConfigurationEndPoint.Address",
            "ConfigurationEndPoint.Port",
        }

    def get_cfn_attribute(self, attr: str) -> Any:
        from moto.cloudformation.exceptions import UnformattedGetAttTemplateException

        ports = [str(self.endpoint_port)] * self.num_cache_clusters
        addrs = [m["ReadEndpoint"]["Address"] for m in self.node_groups[0]["NodeGroupMembers"]]
        table = {
            "PrimaryEndPoint.Address": self.primary_address,
            "PrimaryEndPoint.Port": str(self.endpoint_port),
            "ReaderEndPoint.Address": self.reader_address,
            "ReaderEndPoint.Port": str(self.endpoint_port),
            "ReadEndPoint.Addresses": ",".join(addrs),
            "ReadEndPoint.Ports": ",".join(ports),
            "ReadEndPoint.Addresses.List": addrs,
            "ReadEndPoint.Ports.List": ports,
        }
        if attr in table:
            return table[attr]
        raise UnformattedGetAttTemplateException()

    @property
    def physical_resource_id(self) -> str:
        return self.replication_group_id

    @classmethod
    def create_from_cloudformation_json(cls, resource_name, cloudformation_json, account_id, region_name, **kwargs):  # type: ignore[no-untyped-def,override]
        props = cloudformation_json.get("Properties", {})
        backend = elasticache_backends[account_id][region_name]
        rg_id = str(props.get("ReplicationGroupId") or resource_name).lower()
        if rg_id in backend.replication_groups:
            raise ElastiCacheFault("ReplicationGroupAlreadyExists", f"Replication group {rg_id} already exists.")
        try:
            rg = cls(account_id, region_name, rg_id, props)
            rg.check_restore(backend, props.get("SnapshotName"))
        except ElastiCacheFault as e:
            # ElastiCache refuses the group: CloudFormation fails the resource (cfn.create_stack
            # turns oms_create_error into CREATE_FAILED and a rollback).
            rg = cls(account_id, region_name, rg_id, {k: v for k, v in props.items() if k != "AuthToken"})
            rg.oms_create_error = handler_message(e)
        rg.oms_stack_id = kwargs.get("StackId")
        backend.replication_groups[rg_id] = rg
        if rg.tags:
            backend.tagging_service.tag_resource(rg.arn, rg.tags)
        if rg.oms_create_error is None:
            rg.sync_redis()
        return rg

    @classmethod
    def update_from_cloudformation_json(cls, original_resource, new_resource_name, cloudformation_json, account_id, region_name):  # type: ignore[no-untyped-def,override]
        props = cloudformation_json.get("Properties", {})
        token_before = (list(original_resource.auth_tokens), original_resource.auth_open)
        try:
            original_resource.apply_props(props)
        except ElastiCacheFault as e:
            raise ElastiCacheFault(e.code, handler_message(e)) from None
        if (original_resource.auth_tokens, original_resource.auth_open) != token_before:
            original_resource.sync_redis()
        return original_resource

    @classmethod
    def delete_from_cloudformation_json(cls, resource_name, cloudformation_json, account_id, region_name):  # type: ignore[no-untyped-def,override]
        backend = elasticache_backends[account_id][region_name]
        backend.replication_groups.pop(resource_name, None)

    def delete(self, account_id: str, region_name: str) -> None:
        backend = elasticache_backends[account_id][region_name]
        if backend.replication_groups.get(self.replication_group_id) is self:
            backend.replication_groups.pop(self.replication_group_id, None)

    def is_created(self) -> bool:
        return True


# ---------------------------------------------------------------- subnet group
class OmsCacheSubnetGroup(CacheSubnetGroup, CloudFormationModel):
    @staticmethod
    def cloudformation_name_type() -> str:
        return "CacheSubnetGroupName"

    @staticmethod
    def cloudformation_type() -> str:
        return "AWS::ElastiCache::SubnetGroup"

    @classmethod
    def has_cfn_attr(cls, attr: str) -> bool:
        return False

    @property
    def physical_resource_id(self) -> str:
        return self.cache_subnet_group_name

    @classmethod
    def create_from_cloudformation_json(cls, resource_name, cloudformation_json, account_id, region_name, **kwargs):  # type: ignore[no-untyped-def,override]
        props = cloudformation_json.get("Properties", {})
        name = props.get("CacheSubnetGroupName") or resource_name
        name = name.lower()
        backend = elasticache_backends[account_id][region_name]
        sg = cls(
            account_id=account_id,
            region_name=region_name,
            cache_subnet_group_name=name,
            cache_subnet_group_description=props.get("Description", ""),
            subnet_ids=list(props.get("SubnetIds", [])),
            tags=props.get("Tags"),
        )
        backend.cache_subnet_groups[name] = sg
        return sg

    @classmethod
    def update_from_cloudformation_json(cls, original_resource, new_resource_name, cloudformation_json, account_id, region_name):  # type: ignore[no-untyped-def,override]
        props = cloudformation_json.get("Properties", {})
        original_resource.cache_subnet_group_description = props.get("Description", "")
        return original_resource

    @classmethod
    def delete_from_cloudformation_json(cls, resource_name, cloudformation_json, account_id, region_name):  # type: ignore[no-untyped-def,override]
        elasticache_backends[account_id][region_name].cache_subnet_groups.pop(resource_name, None)

    def delete(self, account_id: str, region_name: str) -> None:
        elasticache_backends[account_id][region_name].cache_subnet_groups.pop(self.cache_subnet_group_name, None)

    def is_created(self) -> bool:
        return True


# ---------------------------------------------------------------- parameter group
def _param_groups(backend: Any) -> dict[str, Any]:
    groups = getattr(backend, "oms_parameter_groups", None)
    if groups is None:
        groups = {}
        backend.oms_parameter_groups = groups
    return groups


class OmsCacheParameterGroup(CloudFormationModel):
    def __init__(self, account_id: str, region_name: str, name: str, family: str, description: str, params: dict[str, str]):
        self.cache_parameter_group_name = name
        self.cache_parameter_group_family = family
        self.description = description
        self.is_global = False
        self.parameters = {k: str(v) for k, v in (params or {}).items()}
        self.arn = f"arn:aws:elasticache:{region_name}:{account_id}:parametergroup:{name}"

    def to_dict(self) -> dict[str, Any]:
        return {
            "CacheParameterGroupName": self.cache_parameter_group_name,
            "CacheParameterGroupFamily": self.cache_parameter_group_family,
            "Description": self.description,
            "IsGlobal": False,
            "ARN": self.arn,
        }

    @staticmethod
    def cloudformation_name_type() -> str:
        return "CacheParameterGroupName"

    @staticmethod
    def cloudformation_type() -> str:
        return "AWS::ElastiCache::ParameterGroup"

    @classmethod
    def has_cfn_attr(cls, attr: str) -> bool:
        return False

    @property
    def physical_resource_id(self) -> str:
        return self.cache_parameter_group_name

    @classmethod
    def create_from_cloudformation_json(cls, resource_name, cloudformation_json, account_id, region_name, **kwargs):  # type: ignore[no-untyped-def,override]
        props = cloudformation_json.get("Properties", {})
        name = (props.get("CacheParameterGroupName") or resource_name).lower()
        pg = cls(
            account_id,
            region_name,
            name,
            props.get("CacheParameterGroupFamily", ""),
            props.get("Description", ""),
            props.get("Properties", {}),
        )
        _param_groups(elasticache_backends[account_id][region_name])[name] = pg
        return pg

    @classmethod
    def update_from_cloudformation_json(cls, original_resource, new_resource_name, cloudformation_json, account_id, region_name):  # type: ignore[no-untyped-def,override]
        props = cloudformation_json.get("Properties", {})
        family = props.get("CacheParameterGroupFamily", "")
        if family != original_resource.cache_parameter_group_family:
            # "Update requires: Replacement": a new group with a new generated name; cfn.py deletes
            # the old one in the cleanup phase.
            return cls.create_from_cloudformation_json(new_resource_name, cloudformation_json, account_id, region_name)
        original_resource.cache_parameter_group_family = family
        original_resource.description = props.get("Description", "")
        original_resource.parameters = {k: str(v) for k, v in (props.get("Properties") or {}).items()}
        return original_resource

    @classmethod
    def delete_from_cloudformation_json(cls, resource_name, cloudformation_json, account_id, region_name):  # type: ignore[no-untyped-def,override]
        _param_groups(elasticache_backends[account_id][region_name]).pop(resource_name, None)

    def delete(self, account_id: str, region_name: str) -> None:
        _param_groups(elasticache_backends[account_id][region_name]).pop(self.cache_parameter_group_name, None)

    def is_created(self) -> bool:
        return True


# ---------------------------------------------------------------- CloudWatch alarm
class OmsCloudWatchAlarm(CloudFormationModel):
    def __init__(self, account_id: str, region_name: str, alarm: Any):
        self.alarm = alarm
        self.name = alarm.name
        self.arn = alarm.alarm_arn

    @staticmethod
    def cloudformation_name_type() -> str:
        return "AlarmName"

    @staticmethod
    def cloudformation_type() -> str:
        return "AWS::CloudWatch::Alarm"

    @classmethod
    def has_cfn_attr(cls, attr: str) -> bool:
        return attr == "Arn"

    def get_cfn_attribute(self, attr: str) -> Any:
        from moto.cloudformation.exceptions import UnformattedGetAttTemplateException

        if attr == "Arn":
            return self.arn
        raise UnformattedGetAttTemplateException()

    @property
    def physical_resource_id(self) -> str:
        return self.name

    @staticmethod
    def _put(name: str, props: dict[str, Any], account_id: str, region_name: str) -> Any:
        backend = cloudwatch_backends[account_id][region_name]
        return backend.put_metric_alarm(
            name=name,
            namespace=props.get("Namespace"),
            metric_name=props.get("MetricName"),
            comparison_operator=props.get("ComparisonOperator"),
            evaluation_periods=int(props.get("EvaluationPeriods", 1)),
            period=int(props.get("Period", 60)),
            threshold=float(props.get("Threshold", 0)),
            statistic=props.get("Statistic"),
            description=props.get("AlarmDescription"),
            dimensions=[{"Name": d["Name"], "Value": d["Value"]} for d in props.get("Dimensions", [])],
            alarm_actions=list(props.get("AlarmActions", [])),
            ok_actions=list(props.get("OKActions", [])),
            insufficient_data_actions=list(props.get("InsufficientDataActions", [])),
            unit=props.get("Unit"),
            actions_enabled=_bool(props.get("ActionsEnabled", True)),
            treat_missing_data=props.get("TreatMissingData"),
            datapoints_to_alarm=props.get("DatapointsToAlarm"),
        )

    @classmethod
    def create_from_cloudformation_json(cls, resource_name, cloudformation_json, account_id, region_name, **kwargs):  # type: ignore[no-untyped-def,override]
        props = cloudformation_json.get("Properties", {})
        name = props.get("AlarmName") or resource_name
        return cls(account_id, region_name, cls._put(name, props, account_id, region_name))

    @classmethod
    def update_from_cloudformation_json(cls, original_resource, new_resource_name, cloudformation_json, account_id, region_name):  # type: ignore[no-untyped-def,override]
        props = cloudformation_json.get("Properties", {})
        name = props.get("AlarmName") or original_resource.name
        if name != original_resource.name:
            cloudwatch_backends[account_id][region_name].delete_alarms([original_resource.name])
        return cls(account_id, region_name, cls._put(name, props, account_id, region_name))

    @classmethod
    def delete_from_cloudformation_json(cls, resource_name, cloudformation_json, account_id, region_name):  # type: ignore[no-untyped-def,override]
        cloudwatch_backends[account_id][region_name].delete_alarms([resource_name])

    def delete(self, account_id: str, region_name: str) -> None:
        cloudwatch_backends[account_id][region_name].delete_alarms([self.name])

    def is_created(self) -> bool:
        return True


# ---------------------------------------------------------------- intrinsics
_orig_clean_json = parsing.clean_json
_orig_generate_resource_name = parsing.generate_resource_name


def _fn_cidr(args: list[Any]) -> list[str]:
    block, count, bits = args
    net = ipaddress.ip_network(str(block), strict=False)
    prefix = net.max_prefixlen - int(bits)
    subnets = net.subnets(new_prefix=prefix)
    out = []
    for _ in range(int(count)):
        out.append(str(next(subnets)))
    return out


def clean_json(resource_json: Any, resources_map: Any) -> Any:
    if isinstance(resource_json, dict) and "Fn::Cidr" in resource_json:
        args = _orig_clean_json(resource_json["Fn::Cidr"], resources_map)
        return _fn_cidr(args)
    return _orig_clean_json(resource_json, resources_map)


def generate_resource_name(resource_type: str, stack_name: str, logical_id: str) -> str:
    if resource_type in ("AWS::ElastiCache::SubnetGroup", "AWS::ElastiCache::ParameterGroup"):
        return _lower_name(stack_name, logical_id)
    return _orig_generate_resource_name(resource_type, stack_name, logical_id)


def _eq(a: Any, b: Any) -> bool:
    def norm(x: Any) -> Any:
        if isinstance(x, bool):
            return str(x).lower()
        if isinstance(x, (int, float)):
            return str(int(x)) if float(x).is_integer() else str(x)
        if isinstance(x, list):
            return [norm(i) for i in x]
        return x

    return norm(a) == norm(b)


def parse_condition(condition: Any, resources_map: Any, condition_map: dict[str, Any]) -> bool:
    """moto's parse_condition compares a Number parameter (parsed to int) with a
    string literal and gets False for Fn::Equals [Ref N, "0"]; compare as AWS
    does, on the string forms."""
    if isinstance(condition, bool):
        return condition
    op = list(condition.keys())[0]
    values = []
    for value in list(condition.values())[0]:
        if isinstance(value, dict) and "Condition" in value:
            values.append(condition_map[value["Condition"]])
        else:
            values.append(parsing.clean_json(value, resources_map))
    if op == "Fn::Equals":
        return _eq(values[0], values[1])
    if op == "Fn::Not":
        return not parse_condition(values[0], resources_map, condition_map)
    if op == "Fn::And":
        return all(parse_condition(v, resources_map, condition_map) for v in values)
    if op == "Fn::Or":
        return any(parse_condition(v, resources_map, condition_map) for v in values)
    return False


_orig_getitem = parsing.ResourceMap.__getitem__


def _resource_map_getitem(self: Any, key: str) -> Any:
    # Once a stack's resources are being deleted, never re-create one lazily.
    if getattr(self, "_oms_no_create", False) and key not in self._parsed_resources and key in self._resource_json_map:
        return None
    return _orig_getitem(self, key)


_orig_parse_and_update = parsing.parse_and_update_resource


def parse_and_update_resource(logical_id: str, resource_json: Any, resources_map: Any, account_id: str, region_name: str) -> Any:
    # A resource its Condition keeps out has nothing to update (moto would update None, and fail
    # the stack's update); the None moto then stores for it is removed in cfn.py.
    cond = resource_json.get("Condition") if isinstance(resource_json, dict) else None
    if cond and not resources_map.lazy_condition_map.get(cond) and logical_id not in resources_map._parsed_resources:
        resources_map.__dict__.setdefault("_oms_skipped", set()).add(logical_id)
        return None
    return _orig_parse_and_update(logical_id, resource_json, resources_map, account_id, region_name)


def _output_exports(self: Any) -> list[Any]:
    """moto's OutputMap.exports, without the outputs whose Condition is false (moto evaluated them,
    and a Fn::GetAtt of an attribute the resource does not have then failed the stack: the
    DynamoDB template's StreamArn without a stream)."""
    exports = []
    conds = self._resource_map.lazy_condition_map
    for value in (self._output_json_map or {}).values():
        if value.get("Condition") and not conds.get(value["Condition"]):
            continue
        if value.get("Export"):
            name = parsing.clean_json(value["Export"].get("Name"), self._resource_map)
            exports.append(parsing.Export(self._stack_id, name, parsing.clean_json(value.get("Value"), self._resource_map)))
    return exports


def install_parsing_patches() -> None:
    parsing.OutputMap.exports = property(_output_exports)
    parsing.parse_and_update_resource = parse_and_update_resource
    parsing.clean_json = clean_json
    parsing.generate_resource_name = generate_resource_name
    parsing.parse_condition = parse_condition
    parsing.ResourceMap.__getitem__ = _resource_map_getitem


# ---------------------------------------------------------------- ElastiCache API
def _ec_backend(resp: ElastiCacheResponse) -> Any:
    return elasticache_backends[resp.current_account][resp.region]


def _test_failover(self: ElastiCacheResponse) -> ActionResult:
    rg_id = self._get_param("ReplicationGroupId")
    ng_id = self._get_param("NodeGroupId")
    backend = _ec_backend(self)
    rg = backend.replication_groups.get(rg_id)
    if rg is None:
        raise ReplicationGroupNotFound(rg_id)
    if not isinstance(rg, OmsReplicationGroup):
        raise ElastiCacheFault("InvalidParameterValue", "TestFailover is only emulated for groups made by CloudFormation.")
    if ng_id != "0001":
        raise ElastiCacheFault("NodeGroupNotFoundFault", f"The node group {ng_id} was not found for replication group {rg_id}.")
    if rg.status != "available":
        raise ElastiCacheFault(
            "InvalidReplicationGroupState",
            f"Replication group {rg_id} is not in available state. Current state: {rg.status}",
        )
    if rg.automatic_failover != "enabled" or rg.num_cache_clusters < 2:
        raise ElastiCacheFault(
            "InvalidReplicationGroupState",
            f"Replication group {rg_id} must have automatic failover enabled and at least one replica to test failover.",
        )
    old_primary = rg.primary_cluster_id
    rg.primary_index = (rg.primary_index + 1) % rg.num_cache_clusters
    new_primary = rg.primary_cluster_id
    rg.status = "modifying"
    delay = float(state.CONFIG.get("failover_delay_seconds", 1.0))
    # The events API_TestFailover lists, in their order.
    emit_event(rg.account_id, rg.region_name, rg_id, "replication-group", f"Test Failover API called for node group {ng_id}")

    def done(due: float, rg: Any = rg) -> None:
        if not rg.failover_until:
            return
        completed = f"Failover from primary node {old_primary} to replica node {new_primary} completed"
        for source, kind, message in (
            (new_primary, "cache-cluster", completed),
            (rg.replication_group_id, "replication-group", completed),
            (old_primary, "cache-cluster", "Recovering cache nodes 0001"),
            (old_primary, "cache-cluster", "Finished recovery for cache nodes 0001"),
        ):
            emit_event(rg.account_id, rg.region_name, source, kind, message, due)
        rg.failover_until = 0.0
        if rg.status == "modifying":
            rg.status = "available"

    rg.failover_until = state.now() + delay
    state.schedule(rg.failover_until, done)
    state.advance()
    return ActionResult({"ReplicationGroup": rg})


_orig_modify_rg = ElastiCacheResponse.modify_replication_group


def _modify_replication_group(self: ElastiCacheResponse) -> ActionResult:
    """AuthToken changes (ROTATE / SET) on groups made by stacks; anything else is moto's."""
    token = self._get_param("AuthToken")
    strategy = self._get_param("AuthTokenUpdateStrategy")
    if token is None and strategy is None:
        return _orig_modify_rg(self)
    rg_id = self._get_param("ReplicationGroupId")
    rg = _ec_backend(self).replication_groups.get(rg_id)
    if rg is None:
        raise ReplicationGroupNotFound(rg_id)
    if not isinstance(rg, OmsReplicationGroup):
        raise ElastiCacheFault("InvalidParameterValue", "AUTH token changes are only emulated for groups made by CloudFormation.")
    strategy = strategy or "ROTATE"  # ElastiCache's default
    rg.check_auth_change(strategy, token)
    _orig_modify_rg(self)  # the other parameters, applied at once as before
    rg.begin_auth_change(strategy, token)
    return ActionResult({"ReplicationGroup": rg})


def _describe_cache_parameter_groups(self: ElastiCacheResponse) -> ActionResult:
    name = self._get_param("CacheParameterGroupName")
    groups = _param_groups(_ec_backend(self))
    if name:
        if name not in groups:
            raise ElastiCacheFault("CacheParameterGroupNotFound", f"CacheParameterGroup {name} not found.")
        found = [groups[name]]
    else:
        found = list(groups.values())
    return ActionResult({"CacheParameterGroups": [g.to_dict() for g in found]})


def _describe_cache_parameters(self: ElastiCacheResponse) -> ActionResult:
    name = self._get_param("CacheParameterGroupName")
    groups = _param_groups(_ec_backend(self))
    if name not in groups:
        raise ElastiCacheFault("CacheParameterGroupNotFound", f"CacheParameterGroup {name} not found.")
    params = [
        {
            "ParameterName": k,
            "ParameterValue": v,
            "Source": "user",
            "DataType": "string",
            "IsModifiable": True,
            "ChangeType": "immediate",
        }
        for k, v in sorted(groups[name].parameters.items())
    ]
    return ActionResult({"Parameters": params})


_orig_create_snapshot = ec_models.ElastiCacheBackend.create_snapshot


def _create_snapshot(self: Any, snapshot_name: str, replication_group_id: str | None, cache_cluster_id: str | None, kms_key_id: str | None, tags: Any) -> Any:
    if snapshot_name in self.snapshots:
        raise SnapshotAlreadyExists(snapshot_name)
    if replication_group_id:
        rg = self.replication_groups.get(replication_group_id)
        if rg is None:
            raise ReplicationGroupNotFound(replication_group_id)
        if getattr(rg, "status", "available") != "available":
            raise ElastiCacheFault(
                "InvalidReplicationGroupState",
                f"Replication group {replication_group_id} is not in available state.",
            )
    data = None
    if replication_group_id:
        # The data as of now, from the redis-server bound to the group (if any).
        try:
            data = redis_acl.dump_all(replication_group_id)
        except redis_acl.RedisError as e:
            log.warning("snapshot %s is taken without data: %s", snapshot_name, e)
    snap = _orig_create_snapshot(self, snapshot_name, replication_group_id, cache_cluster_id, kms_key_id, tags)
    snap.oms_data = data
    if replication_group_id and isinstance(self.replication_groups.get(replication_group_id), OmsReplicationGroup):
        rg = self.replication_groups[replication_group_id]
        snap.num_node_groups = 1
        snap.num_cache_nodes = None
        snap.automatic_failover = rg.automatic_failover
        snap.node_snapshots = [
            {
                "CacheClusterId": rg.primary_cluster_id if rg.num_cache_clusters == 1 else rg.member_ids()[(rg.primary_index + 1) % rg.num_cache_clusters],
                "NodeGroupId": "0001",
                "CacheNodeId": "0001",
                "CacheSize": _cache_size(data),
                "CacheNodeCreateTime": rg.replication_group_create_time,
                "SnapshotCreateTime": utcnow(),
            }
        ]
    snap.snapshot_status = "creating"
    rg = self.replication_groups.get(replication_group_id) if replication_group_id else None
    if isinstance(rg, OmsReplicationGroup):
        rg.status = "snapshotting"
    delay = float(state.CONFIG.get("snapshot_delay_seconds", 1.0))

    def done(due: float, snap: Any = snap, rg: Any = rg, backend: Any = self) -> None:
        if snap.snapshot_status == "creating":
            snap.snapshot_status = "available"
            nodes = getattr(snap, "node_snapshots", None) or []
            cluster = (nodes[0]["CacheClusterId"] if nodes else None) or snap.cache_cluster_id or snap.replication_group_id
            emit_event(
                backend.account_id,
                backend.region_name,
                cluster,
                "cache-cluster",
                f"Snapshot succeeded for snapshot with ID '{snap.snapshot_name}' of cache cluster with ID '{cluster}'",
                due,
            )
        if isinstance(rg, OmsReplicationGroup) and rg.status == "snapshotting":
            rg.status = "available"

    state.schedule(state.now() + delay, done)
    state.advance()
    return snap


def _delete_snapshot(self: Any, snapshot_name: str) -> Any:
    snap = self.snapshots.get(snapshot_name)
    if snap is None:
        raise SnapshotNotFound(snapshot_name)
    if snap.snapshot_status != "available":
        raise ElastiCacheFault(
            "InvalidSnapshotState",
            f"Snapshot {snapshot_name} is not in available state. Current state: {snap.snapshot_status}",
        )
    self.snapshots.pop(snapshot_name)
    self.tagging_service.delete_all_tags_for_resource(snap.arn)
    snap.snapshot_status = "deleting"
    return snap


def _cache_size(data: list[tuple[bytes, int | None, bytes]] | None) -> str:
    """NodeSnapshots[].CacheSize: the captured keys and DUMP payloads in whole megabytes
    (rounded up); "6 MB" when no redis-server gave data."""
    if data is None:
        return "6 MB"
    total = sum(len(k) + len(v) for k, _, v in data)
    return f"{math.ceil(total / 2**20)} MB"


_SNAPSHOT_ARN = re.compile(r"^arn:[^:]+:elasticache:[^:]*:[^:]*:snapshot:(.+)$")
_orig_list_tags = ec_models.ElastiCacheBackend.list_tags_for_resource


def _list_tags_for_resource(self: Any, arn: str) -> Any:
    """A snapshot's tags; SnapshotNotFoundFault once it is gone (moto would list stale tags)."""
    m = _SNAPSHOT_ARN.match(arn or "")
    if m and m.group(1) not in self.snapshots:
        raise SnapshotNotFound(m.group(1))
    return _orig_list_tags(self, arn)


# ---------------------------------------------------------------- DescribeEvents
SOURCE_TYPES = {
    "cache-cluster",
    "cache-parameter-group",
    "cache-security-group",
    "cache-subnet-group",
    "replication-group",
    "serverless-cache",
    "serverless-cache-snapshot",
    "user",
    "user-group",
}


def _epoch(v: Any, name: str) -> float:
    if isinstance(v, datetime):
        d = v
    else:
        try:
            d = datetime.fromisoformat(str(v).strip())
        except ValueError:
            try:
                return float(v)
            except ValueError:
                raise ElastiCacheFault("InvalidParameterValue", f"Invalid value for {name}: {v}") from None
    if d.tzinfo is None:
        d = d.replace(tzinfo=timezone.utc)
    return d.timestamp()


def _event_date(t: float) -> datetime:
    d = datetime.fromtimestamp(t, timezone.utc).replace(tzinfo=None)
    return d.replace(microsecond=(d.microsecond // 1000) * 1000)  # AWS reports milliseconds


def _describe_events(self: ElastiCacheResponse) -> ActionResult:
    """Events of the caller's account and region, newest first, in [start, end]: StartTime
    (default: end minus Duration minutes, default 60) to EndTime (default: now), never older
    than 14 days; MaxRecords 20-100 (default 100) a page, Marker for the next one."""
    state.advance()
    source_id = self._get_param("SourceIdentifier")
    source_type = self._get_param("SourceType")
    if source_type is not None and source_type not in SOURCE_TYPES:
        raise ElastiCacheFault("InvalidParameterValue", f"Invalid SourceType: {source_type}")
    duration = self._get_param("Duration")
    max_records = self._get_param("MaxRecords")
    try:
        duration = None if duration in (None, "") else int(duration)
        max_records = 100 if max_records in (None, "") else int(max_records)
    except ValueError:
        raise ElastiCacheFault("InvalidParameterValue", "Duration and MaxRecords must be integers.") from None
    if not 20 <= max_records <= 100:
        raise ElastiCacheFault("InvalidParameterValue", "MaxRecords must be between 20 and 100.")
    now = state.now()
    start_p, end_p = self._get_param("StartTime"), self._get_param("EndTime")
    end = _epoch(end_p, "EndTime") if end_p not in (None, "") else None
    if start_p not in (None, ""):
        start = _epoch(start_p, "StartTime")
        if end is None:
            end = start + duration * 60 if duration is not None else now
    else:
        if end is None:
            end = now
        start = end - (duration if duration is not None else 60) * 60
    start = max(start, now - timedelta(days=14).total_seconds())
    found = [
        e
        for e in state.EVENTS
        if e["account"] == self.current_account
        and e["region"] == self.region
        and (source_id is None or e["SourceIdentifier"] == source_id)
        and (source_type is None or e["SourceType"] == source_type)
        and start <= e["Date"] <= end
    ]
    found.sort(key=lambda e: (e["Date"], e["seq"]), reverse=True)
    marker = self._get_param("Marker")
    try:
        offset = int(marker) if marker else 0
    except ValueError:
        raise ElastiCacheFault("InvalidParameterValue", f"Invalid Marker: {marker}") from None
    page = found[offset : offset + max_records]
    out: dict[str, Any] = {
        "Events": [
            {"SourceIdentifier": e["SourceIdentifier"], "SourceType": e["SourceType"], "Message": e["Message"], "Date": _event_date(e["Date"])}
            for e in page
        ]
    }
    if offset + max_records < len(found):
        out["Marker"] = str(offset + max_records)
    return ActionResult(out)


def _describe_snapshots(self: Any, replication_group_id: str | None = None, cache_cluster_id: str | None = None, snapshot_name: str | None = None, snapshot_source: str | None = None, marker: str | None = None, max_records: int | None = None, show_node_group_config: bool | None = None) -> list[Any]:
    snaps = list(self.snapshots.values())
    if snapshot_name:
        snaps = [s for s in snaps if s.snapshot_name == snapshot_name]
        if not snaps:
            raise SnapshotNotFound(snapshot_name)
        return snaps
    if replication_group_id:
        snaps = [s for s in snaps if s.replication_group_id == replication_group_id]
    if cache_cluster_id:
        snaps = [s for s in snaps if s.cache_cluster_id == cache_cluster_id]
    if snapshot_source:
        src = {"system": "automated", "user": "manual"}.get(snapshot_source.lower(), snapshot_source.lower())
        snaps = [s for s in snaps if s.snapshot_source == src]
    return snaps


_orig_delete_rg = ec_models.ElastiCacheBackend.delete_replication_group


def _delete_replication_group(self: Any, replication_group_id: str, retain_primary_cluster: bool | None) -> Any:
    rg = self.replication_groups.get(replication_group_id)
    if rg is None:
        raise ReplicationGroupNotFound(replication_group_id)
    if not isinstance(rg, OmsReplicationGroup):
        return _orig_delete_rg(self, replication_group_id, retain_primary_cluster)
    if rg.status != "available":
        raise ElastiCacheFault(
            "InvalidReplicationGroupState",
            f"Replication group {replication_group_id} is not in available state.",
        )
    rg.status = "deleting"

    def done(_due: float, backend: Any = self, rg: Any = rg) -> None:
        if backend.replication_groups.get(rg.replication_group_id) is rg:
            backend.replication_groups.pop(rg.replication_group_id, None)

    state.schedule(state.now() + float(state.CONFIG["stack_delay_seconds"]), done)
    return rg


def install_elasticache_patches() -> None:
    ElastiCacheResponse.test_failover = _test_failover
    ElastiCacheResponse.modify_replication_group = _modify_replication_group
    ElastiCacheResponse.describe_cache_parameter_groups = _describe_cache_parameter_groups
    ElastiCacheResponse.describe_cache_parameters = _describe_cache_parameters
    ec_models.ElastiCacheBackend.create_snapshot = _create_snapshot
    ec_models.ElastiCacheBackend.delete_snapshot = _delete_snapshot
    ec_models.ElastiCacheBackend.describe_snapshots = _describe_snapshots
    ec_models.ElastiCacheBackend.delete_replication_group = _delete_replication_group
    ec_models.ElastiCacheBackend.list_tags_for_resource = _list_tags_for_resource
    ElastiCacheResponse.describe_events = _describe_events


def install() -> None:
    install_parsing_patches()
    install_elasticache_patches()
    # Cache the model list now that our subclasses exist.
    parsing.get_model_list.cache_clear()
    parsing.get_model_map.cache_clear()
    parsing.get_name_type_map.cache_clear()
    types = parsing.get_model_map()
    for t in (
        "AWS::ElastiCache::ReplicationGroup",
        "AWS::ElastiCache::SubnetGroup",
        "AWS::ElastiCache::ParameterGroup",
        "AWS::CloudWatch::Alarm",
        "AWS::DynamoDB::Table",
    ):
        assert t in types, t
    from .dynamodb import OmsTable

    assert types["AWS::DynamoDB::Table"] is OmsTable
