"""Assemble the app: import moto services, install the extension, wrap moto's
server app, and warm everything up before the port opens."""
from __future__ import annotations

import logging
import os
import time
from typing import Any

log = logging.getLogger("oms_emulator")

SERVICES = ("cloudformation", "elasticache", "ec2", "cloudwatch", "sts", "dynamodb")


def _reset_moto() -> None:
    from moto.moto_api._internal.models import moto_api_backend

    moto_api_backend.reset()


def build_app() -> Any:
    # Importing the response modules pulls in every model moto's CloudFormation
    # engine knows (parsing.py imports ~30 services); do it before the first request.
    import moto.cloudformation.responses  # noqa: F401
    import moto.cloudwatch.responses  # noqa: F401
    import moto.dynamodb.responses  # noqa: F401
    import moto.ec2.responses  # noqa: F401
    import moto.elasticache.responses  # noqa: F401
    import moto.sts.responses  # noqa: F401
    from moto.moto_server.werkzeug_app import DomainDispatcherApplication, create_backend_app

    from . import cfn, cfn_more, dynamodb, models
    from .app import OmsApp

    dynamodb.install()
    models.install()
    cfn.install()
    cfn_more.install()
    moto_app = DomainDispatcherApplication(create_backend_app)
    return OmsApp(moto_app, _reset_moto)


def _templates_dir() -> str | None:
    here = os.path.dirname(os.path.abspath(__file__))
    d = os.path.normpath(os.path.join(here, "..", "..", "..", "templates", "data"))
    return d if os.path.isdir(d) else None


def _call(client: Any, service: str, params: dict[str, str]) -> Any:
    from urllib.parse import urlencode

    auth = (
        "AWS4-HMAC-SHA256 Credential=AKIAIOSFODNN7EXAMPLE/20260101/us-east-1/"
        f"{service}/aws4_request, SignedHeaders=host;x-amz-date, Signature=0"
    )
    return client.post(
        "/",
        data=urlencode(params),
        headers={
            "Authorization": auth,
            "Content-Type": "application/x-www-form-urlencoded; charset=utf-8",
            "X-Amz-Date": "20260101T000000Z",
        },
    )


def _call_json(client: Any, target: str, body: dict[str, Any]) -> Any:
    """A DynamoDB (JSON protocol) call."""
    import json

    auth = (
        "AWS4-HMAC-SHA256 Credential=AKIAIOSFODNN7EXAMPLE/20260101/us-east-1/"
        "dynamodb/aws4_request, SignedHeaders=host;x-amz-date, Signature=0"
    )
    return client.post(
        "/",
        data=json.dumps(body),
        headers={
            "Authorization": auth,
            "Content-Type": "application/x-amz-json-1.0",
            "X-Amz-Date": "20260101T000000Z",
            "X-Amz-Target": f"DynamoDB_20120810.{target}",
        },
    )


def _warm_dynamodb(client: Any, tdir: str) -> None:
    """One DynamoDB table stack life cycle: create (sort key, stream, TTL, PITR), items, a backup,
    an update that adds an index, delete."""
    import json

    body = open(os.path.join(tdir, "dynamodb-table.json")).read()
    name = "warmup-table"
    params = [("SortKeyName", "sk"), ("StreamViewType", "NEW_AND_OLD_IMAGES"), ("TimeToLiveAttribute", "expires"), ("PointInTimeRecovery", "true")]

    def stack_call(action: str, template: str) -> Any:
        p = {"Action": action, "Version": "2010-05-15", "StackName": name, "TemplateBody": template}
        for i, (k, v) in enumerate(params, start=1):
            p[f"Parameters.member.{i}.ParameterKey"] = k
            p[f"Parameters.member.{i}.ParameterValue"] = v
        return _call(client, "cloudformation", p)

    r = stack_call("CreateStack", body)
    if r.status_code != 200:
        log.warning("warm-up DynamoDB CreateStack failed: %s", r.get_data(as_text=True)[:500])
    _call(client, "cloudformation", {"Action": "DescribeStacks", "Version": "2010-05-15", "StackName": name})
    _call_json(client, "DescribeTable", {"TableName": name})
    _call_json(client, "PutItem", {"TableName": name, "Item": {"pk": {"S": "a"}, "sk": {"S": "b"}, "g": {"S": "c"}}})
    _call_json(client, "GetItem", {"TableName": name, "Key": {"pk": {"S": "a"}, "sk": {"S": "b"}}})
    _call_json(client, "DescribeContinuousBackups", {"TableName": name})
    _call_json(client, "DescribeTimeToLive", {"TableName": name})
    r = _call_json(client, "CreateBackup", {"TableName": name, "BackupName": "warmup"})
    arn = (json.loads(r.get_data(as_text=True) or "{}").get("BackupDetails") or {}).get("BackupArn")
    _call_json(client, "ListBackups", {"TableName": name})
    if arn:
        _call_json(client, "DescribeBackup", {"BackupArn": arn})
    tpl = json.loads(body)
    props = tpl["Resources"]["Table"]["Properties"]
    props["AttributeDefinitions"] = {"Fn::If": ["HasSortKey", props["AttributeDefinitions"]["Fn::If"][1] + [{"AttributeName": "g", "AttributeType": "S"}], props["AttributeDefinitions"]["Fn::If"][2]]}
    props["GlobalSecondaryIndexes"] = [{"IndexName": "by-g", "KeySchema": [{"AttributeName": "g", "KeyType": "HASH"}], "Projection": {"ProjectionType": "ALL"}}]
    stack_call("UpdateStack", json.dumps(tpl))
    _call_json(client, "Query", {"TableName": name, "IndexName": "by-g", "KeyConditionExpression": "g = :g", "ExpressionAttributeValues": {":g": {"S": "c"}}})
    _call(client, "cloudformation", {"Action": "DeleteStack", "Version": "2010-05-15", "StackName": name})
    _call(client, "cloudformation", {"Action": "DescribeStacks", "Version": "2010-05-15"})


def warm_up(app: Any) -> None:
    """Drive one full VPC + Redis stack life cycle and one DynamoDB table stack life cycle
    in-process (delay 0), so the
    first real request does not pay for lazy imports, Flask app creation and
    botocore model loading; then reset everything."""
    from werkzeug.test import Client

    from . import state

    t = time.time()
    client = Client(app)
    saved = dict(state.CONFIG)
    state.CONFIG["stack_delay_seconds"] = 0.0
    state.CONFIG["snapshot_delay_seconds"] = 0.0
    try:
        _call(client, "cloudformation", {"Action": "DescribeStacks", "Version": "2010-05-15"})
        _call(client, "elasticache", {"Action": "DescribeReplicationGroups", "Version": "2015-02-02"})
        _call(client, "ec2", {"Action": "DescribeVpcs", "Version": "2016-11-15"})
        _call(client, "monitoring", {"Action": "DescribeAlarms", "Version": "2010-08-01"})
        _call(client, "sts", {"Action": "GetCallerIdentity", "Version": "2011-06-15"})
        _call(client, "sts", {"Action": "AssumeRole", "Version": "2011-06-15", "RoleArn": "arn:aws:iam::111111111111:role/warmup", "RoleSessionName": "warmup"})
        tdir = _templates_dir()
        if tdir:
            vpc = open(os.path.join(tdir, "vpc.json")).read()
            redis = open(os.path.join(tdir, "elasticache-redis.json")).read()
            _call(client, "cloudformation", {"Action": "CreateStack", "Version": "2010-05-15", "StackName": "warmup-vpc", "TemplateBody": vpc})
            params = {
                "Action": "CreateStack",
                "Version": "2010-05-15",
                "StackName": "warmup-redis",
                "TemplateBody": redis,
            }
            for i, (k, v) in enumerate(
                [("Environment", "prod"), ("VPCStackName", "warmup-vpc"), ("NodeType", "cache.m7g.large"), ("NumCacheNodes", "3"), ("AutomaticFailoverEnabled", "true")],
                start=1,
            ):
                params[f"Parameters.member.{i}.ParameterKey"] = k
                params[f"Parameters.member.{i}.ParameterValue"] = v
            r = _call(client, "cloudformation", params)
            if r.status_code != 200:
                log.warning("warm-up CreateStack failed: %s", r.get_data(as_text=True)[:500])
            _call(client, "cloudformation", {"Action": "DescribeStacks", "Version": "2010-05-15", "StackName": "warmup-redis"})
            _call(client, "cloudformation", {"Action": "DescribeStackEvents", "Version": "2010-05-15", "StackName": "warmup-redis"})
            _call(client, "elasticache", {"Action": "DescribeReplicationGroups", "Version": "2015-02-02", "ReplicationGroupId": "warmup-redis"})
            _call(client, "cloudformation", {"Action": "DeleteStack", "Version": "2010-05-15", "StackName": "warmup-redis"})
            _call(client, "cloudformation", {"Action": "DescribeStacks", "Version": "2010-05-15"})
            if os.path.exists(os.path.join(tdir, "dynamodb-table.json")):
                _warm_dynamodb(client, tdir)
    except Exception as e:  # noqa: BLE001
        log.warning("warm-up failed: %s", e)
    finally:
        _reset_moto()
        state.reset_all()
        state.CONFIG.update({k: v for k, v in saved.items()})
    log.info("warm-up took %.2fs", time.time() - t)
