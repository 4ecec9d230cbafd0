//! Bad OmsRedis manifests are refused by the real apiserver at apply time, each with a message that
//! says what to change: the generated schema and CEL rules at work, with no operator running.

mod support;

use kube::api::{Api, Patch, PatchParams, PostParams};
use oms_data_operator::redis::{OmsRedis, windows};
use serde_json::{Value, json};
use support::controlplane;
use support::operator::install_crds;

fn manifest(name: &str, spec: Value) -> Value {
    json!({
        "apiVersion": "data.oms-spider.io/v1alpha1",
        "kind": "OmsRedis",
        "metadata": { "name": name },
        "spec": spec,
    })
}

fn with(mut base: Value, extra: Value) -> Value {
    if let (Some(b), Some(e)) = (base.as_object_mut(), extra.as_object()) {
        for (k, v) in e {
            if v.is_null() {
                b.remove(k);
            } else {
                b.insert(k.clone(), v.clone());
            }
        }
    }
    base
}

fn dev() -> Value {
    json!({ "environment": "dev", "vpcStackName": "oms-vpc-dev" })
}

async fn api() -> Api<OmsRedis> {
    let client = controlplane::shared().client().await;
    install_crds(&client).await;
    let ns = controlplane::test_namespace(&client, "crd").await;
    Api::namespaced(client, &ns)
}

async fn refused(api: &Api<OmsRedis>, body: Value) -> String {
    let obj: OmsRedis = match serde_json::from_value(body.clone()) {
        Ok(o) => o,
        // Bodies the Rust type cannot even hold go in as raw JSON.
        Err(_) => return refused_raw(api, body).await,
    };
    match api.create(&PostParams::default(), &obj).await {
        Ok(_) => panic!("accepted, but should be refused: {body}"),
        Err(kube::Error::Api(s)) => {
            assert_eq!(s.code, 422, "{s:?}");
            s.message
        }
        Err(e) => panic!("unexpected error {e}"),
    }
}

async fn refused_raw(api: &Api<OmsRedis>, body: Value) -> String {
    let ar = kube::core::ApiResource::erase::<OmsRedis>(&());
    let raw: Api<kube::core::DynamicObject> =
        Api::namespaced_with(api.clone().into_client(), api.namespace().unwrap_or("default"), &ar);
    let obj: kube::core::DynamicObject = serde_json::from_value(body.clone()).expect("a raw object");
    match raw.create(&PostParams::default(), &obj).await {
        Ok(_) => panic!("accepted, but should be refused: {body}"),
        Err(kube::Error::Api(s)) => {
            assert_eq!(s.code, 422, "{s:?}");
            s.message
        }
        Err(e) => panic!("unexpected error {e}"),
    }
}

#[tokio::test]
async fn bad_manifests_are_refused_with_messages_that_say_what_to_change() {
    let api = api().await;
    let long_name = format!("a{}", "b".repeat(40));
    let cases: Vec<(&str, Value, Vec<&str>)> = vec![
        (
            "env-enum",
            manifest("a1", with(dev(), json!({ "environment": "qa" }))),
            vec!["spec.environment", "Unsupported value", "\"prod\""],
        ),
        (
            "engine-enum",
            manifest("a2", with(dev(), json!({ "engineVersion": "5.0" }))),
            vec!["spec.engineVersion", "Unsupported value", "\"7.1\""],
        ),
        (
            "valkey-with-a-redis-version",
            manifest("a29", with(dev(), json!({ "engine": "valkey", "engineVersion": "7.1" }))),
            vec!["engineVersion must be one of the engine's versions", "Valkey (engine valkey) 7.2, 8.0, 8.1 or 8.2"],
        ),
        (
            "redis-with-a-valkey-version",
            manifest("a30", with(dev(), json!({ "engineVersion": "8.0" }))),
            vec!["engineVersion must be one of the engine's versions"],
        ),
        (
            "engine-enum",
            manifest("a31", with(dev(), json!({ "engine": "memcached" }))),
            vec!["spec.engine", "Unsupported value", "\"valkey\""],
        ),
        (
            "valkey-only-node-type-on-redis",
            manifest("a32", with(dev(), json!({ "nodeType": "cache.m8g.large" }))),
            vec!["offers only for Valkey", "set engine: valkey"],
        ),
        (
            "node-type-previous-generation",
            manifest("a27", with(dev(), json!({ "nodeType": "cache.t2.micro" }))),
            vec!["cache.t2.micro is not a node type ElastiCache offers", "t4g: micro, small, medium"],
        ),
        (
            "node-type-size-that-does-not-exist",
            manifest("a28", with(dev(), json!({ "nodeType": "cache.r7g.24xlarge" }))),
            vec![
                "cache.r7g.24xlarge is not a node type ElastiCache offers",
                "r7g: large, xlarge, 2xlarge, 4xlarge, 8xlarge, 12xlarge, 16xlarge",
            ],
        ),
        (
            "node-type-shape",
            manifest("a3", with(dev(), json!({ "nodeType": "t4g.micro" }))),
            vec!["nodeType must look like cache.<family>.<size>"],
        ),
        (
            "node-type-short",
            manifest("a4", with(dev(), json!({ "nodeType": "cache.t4g" }))),
            vec!["nodeType must look like cache.<family>.<size>"],
        ),
        (
            "nodes-zero",
            manifest("a5", with(dev(), json!({ "numCacheNodes": 0 }))),
            vec!["spec.numCacheNodes", "greater than or equal to 1"],
        ),
        (
            "nodes-seven",
            manifest("a6", with(dev(), json!({ "numCacheNodes": 7 }))),
            vec!["spec.numCacheNodes", "less than or equal to 6"],
        ),
        (
            "retention-high",
            manifest("a7", with(dev(), json!({ "snapshotRetentionLimit": 36 }))),
            vec!["spec.snapshotRetentionLimit", "less than or equal to 35"],
        ),
        (
            "retention-negative",
            manifest("a8", with(dev(), json!({ "snapshotRetentionLimit": -1 }))),
            vec!["spec.snapshotRetentionLimit", "greater than or equal to 0"],
        ),
        (
            "failover-one-node",
            manifest("a9", with(dev(), json!({ "automaticFailoverEnabled": true, "numCacheNodes": 1 }))),
            vec!["automaticFailoverEnabled needs at least 2 cache nodes"],
        ),
        (
            "failover-dev-preset",
            manifest("a10", with(dev(), json!({ "automaticFailoverEnabled": true }))),
            vec!["automaticFailoverEnabled needs at least 2 cache nodes", "is 1 in dev"],
        ),
        (
            "staging-one-node",
            manifest("a11", json!({ "environment": "staging", "vpcStackName": "v", "numCacheNodes": 1 })),
            vec![
                "automaticFailoverEnabled needs at least 2 cache nodes",
                "omitted in staging and prod (their presets turn it on)",
            ],
        ),
        (
            "prod-without-failover",
            manifest("a12", json!({ "environment": "prod", "vpcStackName": "v", "automaticFailoverEnabled": false })),
            vec!["environment prod needs automaticFailoverEnabled: true"],
        ),
        (
            "name-too-long",
            manifest(&long_name, dev()),
            vec!["metadata.name becomes the CloudFormation stack", "set spec.stackName"],
        ),
        ("name-with-dot", manifest("oms.redis", dev()), vec!["metadata.name becomes the CloudFormation stack"]),
        (
            "stack-name-pattern",
            manifest("a15", with(dev(), json!({ "stackName": "Bad_Name" }))),
            vec!["spec.stackName", "should match"],
        ),
        (
            "stack-name-length",
            manifest("a16", with(dev(), json!({ "stackName": long_name }))),
            vec!["spec.stackName", "40"],
        ),
        (
            "stack-name-double-hyphen",
            manifest("a17", with(dev(), json!({ "stackName": "oms--redis" }))),
            vec!["spec.stackName", "should match"],
        ),
        (
            "secret-name",
            manifest("a18", with(dev(), json!({ "secretName": "Bad Secret" }))),
            vec!["spec.secretName", "should match"],
        ),
        ("region", manifest("a19", with(dev(), json!({ "region": "mars-1" }))), vec!["spec.region", "should match"]),
        (
            "vpc-pattern",
            manifest("a20", with(dev(), json!({ "vpcStackName": "1vpc" }))),
            vec!["spec.vpcStackName", "should match"],
        ),
        ("vpc-missing", manifest("a21", json!({ "environment": "dev" })), vec!["spec.vpcStackName", "Required value"]),
        ("env-missing", manifest("a22", json!({ "vpcStackName": "v" })), vec!["spec.environment", "Required value"]),
        (
            "reserved-tag",
            manifest("a23", with(dev(), json!({ "tags": { "oms-data-operator/uid": "forged" } }))),
            vec!["tags: keys at most 128 characters and not starting with aws: or oms-data-operator/ (reserved)"],
        ),
        (
            "aws-tag",
            manifest("a24", with(dev(), json!({ "tags": { "aws:cloudformation:x": "y" } }))),
            vec!["not starting with aws:"],
        ),
        (
            "deletion-policy",
            manifest("a25", with(dev(), json!({ "deletionPolicy": "Destroy" }))),
            vec!["spec.deletionPolicy", "Unsupported value", "\"Retain\""],
        ),
        (
            "nodes-not-a-number",
            manifest("a26", with(dev(), json!({ "numCacheNodes": "two" }))),
            vec!["spec.numCacheNodes", "integer"],
        ),
    ];
    assert!(cases.len() >= 20);
    let mut failures = Vec::new();
    for (label, body, wants) in cases {
        let message = refused(&api, body).await;
        // A message never offers a value the user cannot write, nor another environment's preset.
        if message.contains("\"null\"") || (label.starts_with("staging") && message.contains("dev's")) {
            failures.push(format!("{label}: misleading {message:?}"));
        }
        for want in wants {
            if !message.contains(want) {
                failures.push(format!("{label}: {want:?} not in {message:?}"));
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    // The positive controls: a good manifest passes the same checks, and so does a Valkey-only type on Valkey.
    let good: OmsRedis = serde_json::from_value(manifest("good", dev())).expect("good");
    api.create(&PostParams::default(), &good).await.expect("a valid manifest is accepted");
    let valkey: OmsRedis = serde_json::from_value(manifest(
        "good-valkey",
        with(dev(), json!({ "engine": "valkey", "engineVersion": null, "nodeType": "cache.m8g.large" })),
    ))
    .expect("good");
    api.create(&PostParams::default(), &valkey).await.expect("m8g on valkey is accepted");
}

async fn update_refused(api: &Api<OmsRedis>, name: &str, patch: Value) -> String {
    match api.patch(name, &PatchParams::default(), &Patch::Merge(json!({ "spec": patch }))).await {
        Ok(_) => panic!("update accepted, but should be refused: {patch}"),
        Err(kube::Error::Api(s)) => {
            assert_eq!(s.code, 422, "{s:?}");
            s.message
        }
        Err(e) => panic!("unexpected error {e}"),
    }
}

/// The window rules' worked examples, through the apiserver's CEL: the same cases the Rust rules
/// are unit-tested with.
#[tokio::test]
async fn windows_follow_awss_rules_at_apply_time() {
    let api = api().await;
    for (i, (maintenance, snapshot, snapshots_on, refusal)) in windows::EXAMPLES.into_iter().enumerate() {
        // staging keeps 3 days of snapshots; dev keeps none.
        let mut spec = json!({ "environment": if snapshots_on { "staging" } else { "dev" }, "vpcStackName": "v" });
        if let Some(m) = maintenance {
            spec["maintenanceWindow"] = json!(m);
        }
        if let Some(s) = snapshot {
            spec["snapshotWindow"] = json!(s);
        }
        let body = manifest(&format!("w{i}"), spec.clone());
        match refusal {
            Some(words) => {
                let message = refused(&api, body).await;
                assert!(message.contains(words), "{spec}: {words:?} not in {message}");
            }
            None => {
                let obj: OmsRedis = serde_json::from_value(body).expect("a manifest");
                api.create(&PostParams::default(), &obj).await.unwrap_or_else(|e| panic!("{spec} refused: {e}"));
            }
        }
    }
    let message = refused(
        &api,
        manifest("w-shape", json!({ "environment": "dev", "vpcStackName": "v", "maintenanceWindow": "sunday 5am" })),
    )
    .await;
    assert!(message.contains("spec.maintenanceWindow") && message.contains("should match"), "{message}");
}

#[tokio::test]
async fn immutable_fields_and_engine_downgrades_are_refused_on_update() {
    let api = api().await;
    let start: OmsRedis =
        serde_json::from_value(manifest("moving", with(dev(), json!({ "engineVersion": "7.0" })))).expect("m");
    api.create(&PostParams::default(), &start).await.expect("create");
    let cases = [
        (json!({ "environment": "staging", "numCacheNodes": 2 }), "environment is immutable"),
        (json!({ "vpcStackName": "oms-vpc-other" }), "vpcStackName is immutable"),
        (json!({ "stackName": "oms-redis-other" }), "stackName is immutable"),
        (json!({ "engineVersion": "6.2" }), "engineVersion can only go up"),
        (json!({ "region": "us-west-2" }), "region is immutable"),
    ];
    for (patch, want) in cases {
        let message = update_refused(&api, "moving", patch.clone()).await;
        assert!(message.contains(want), "{patch}: {want:?} not in {message:?}");
    }
    // Going up is fine, and an omitted version means 7.1, so 7.0 is a downgrade from it.
    api.patch("moving", &PatchParams::default(), &Patch::Merge(json!({ "spec": { "engineVersion": null } })))
        .await
        .expect("omitting the version (7.1) is an upgrade from 7.0");
    let message = update_refused(&api, "moving", json!({ "engineVersion": "7.0" })).await;
    assert!(message.contains("engineVersion can only go up"), "{message}");
    api.patch("moving", &PatchParams::default(), &Patch::Merge(json!({ "spec": { "nodeType": "cache.t4g.small" } })))
        .await
        .expect("sizing changes are allowed");

    let named: OmsRedis =
        serde_json::from_value(manifest("named", with(dev(), json!({ "stackName": "oms-redis-named" })))).expect("m");
    api.create(&PostParams::default(), &named).await.expect("create");
    let message = update_refused(&api, "named", json!({ "stackName": null })).await;
    assert!(message.contains("stackName is immutable"), "{message}");

    // Redis OSS goes to Valkey in place; Valkey never back, and never to an older version.
    let upgraded: OmsRedis = serde_json::from_value(manifest("upgraded", dev())).expect("m");
    api.create(&PostParams::default(), &upgraded).await.expect("create");
    api.patch("upgraded", &PatchParams::default(), &Patch::Merge(json!({ "spec": { "engine": "valkey" } })))
        .await
        .expect("redis 7.1 → valkey (8.2) is allowed");
    let message = update_refused(&api, "upgraded", json!({ "engine": "redis" })).await;
    assert!(message.contains("engine cannot go from valkey back to redis"), "{message}");
    let message = update_refused(&api, "upgraded", json!({ "engineVersion": "7.2" })).await;
    assert!(message.contains("engineVersion can only go up"), "8.2 → 7.2: {message}");

    // The region names where the stack lives: it can be neither changed nor removed once set.
    let placed: OmsRedis =
        serde_json::from_value(manifest("placed", with(dev(), json!({ "region": "us-east-1" })))).expect("m");
    api.create(&PostParams::default(), &placed).await.expect("create");
    for patch in [json!({ "region": "eu-west-1" }), json!({ "region": null })] {
        let message = update_refused(&api, "placed", patch.clone()).await;
        assert!(message.contains("region is immutable"), "{patch}: {message}");
    }
}
