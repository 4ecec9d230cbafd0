//! OmsDynamoTable end to end on the bed: DynamoDB tables as a second kind on the same lifecycle, on a
//! real kube-apiserver and the AWS emulator (moto's DynamoDB behind AWS::DynamoDB::Table).

mod support;

use aws_sdk_dynamodb::types::AttributeValue;
use k8s_openapi::api::core::v1::Secret;
use kube::api::{Api, DeleteParams, Patch, PatchParams, PostParams};
use oms_data_operator::dynamo::template::param;
use oms_data_operator::dynamo::{OmsDynamoTable, secret_key};
use oms_data_operator::stack::ownership;
use serde_json::{Value, json};
use std::collections::BTreeMap;
use support::controlplane;
use support::operator::Operator;
use support::world::{
    WAIT, World, condition, delete_killing_at_each_call, ready_in, reason_in, secret_data, stack, stack_params,
    stack_tags,
};
use support::{eventually, unique_name};

fn tables(w: &World) -> Api<OmsDynamoTable> {
    Api::namespaced(w.client.clone(), &w.ns)
}

fn dynamodb(w: &World) -> aws_sdk_dynamodb::Client {
    aws_sdk_dynamodb::Client::new(&w.emu.sdk_config())
}

/// An example manifest from examples/dynamodb, under a name of this test's own.
fn example(env: &str, name: &str) -> OmsDynamoTable {
    let path = format!("{}/examples/dynamodb/{env}.yaml", env!("CARGO_MANIFEST_DIR"));
    let mut t: OmsDynamoTable =
        serde_saphyr::from_str(&std::fs::read_to_string(path).expect("example")).expect("parses");
    t.metadata.name = Some(name.to_string());
    t
}

fn manifest(name: &str, spec: Value) -> OmsDynamoTable {
    serde_json::from_value(json!({
        "apiVersion": "data.oms-spider.io/v1alpha1", "kind": "OmsDynamoTable",
        "metadata": { "name": name }, "spec": spec,
    }))
    .expect("a valid OmsDynamoTable")
}

fn dev(extra: Value) -> Value {
    let mut spec = json!({ "environment": "dev", "partitionKey": { "name": "orderId", "type": "String" } });
    if let (Some(s), Some(e)) = (spec.as_object_mut(), extra.as_object()) {
        s.extend(e.clone());
    }
    spec
}

async fn create(w: &World, t: &OmsDynamoTable) {
    tables(w).create(&PostParams::default(), t).await.expect("create the OmsDynamoTable");
}

async fn patch_spec(w: &World, name: &str, spec: Value) -> Result<OmsDynamoTable, kube::Error> {
    tables(w).patch(name, &PatchParams::default(), &Patch::Merge(json!({ "spec": spec }))).await
}

async fn secret(w: &World, name: &str) -> BTreeMap<String, String> {
    let secrets: Api<Secret> = Api::namespaced(w.client.clone(), &w.ns);
    secret_data(&secrets.get(name).await.expect("the connection Secret"))
}

async fn table_gone(w: &World, name: &str) {
    let dynamo = dynamodb(w);
    eventually(&format!("table {name} to be deleted"), WAIT, || async {
        dynamo.describe_table().table_name(name).send().await.is_err().then_some(())
    })
    .await;
}

async fn gone(w: &World, name: &str) {
    let api = tables(w);
    eventually(&format!("{name} to be deleted"), WAIT, || async {
        matches!(api.get_opt(name).await, Ok(None)).then_some(())
    })
    .await;
}

#[tokio::test]
async fn dev_staging_and_prod_reach_ready_and_each_deletion_policy_does_what_it_says() {
    let w = World::new("dyn-life").await;
    let api = tables(&w);
    let dynamo = dynamodb(&w);
    let names: Vec<(String, &str)> =
        ["dev", "staging", "prod"].iter().map(|env| (unique_name(&format!("oms-dynamodb-{env}")), *env)).collect();
    for (name, env) in &names {
        create(&w, &example(env, name)).await;
    }
    for (name, env) in &names {
        let o = ready_in(&api, name).await;
        let status = o.status.clone().expect("status");
        assert_eq!(status.table_name.as_deref(), Some(name.as_str()), "the table is named after the stack");
        let arn = status.table_arn.clone().expect("an ARN");
        let s = secret(&w, &format!("{name}-dynamodb")).await;
        assert_eq!(s[secret_key::TABLE_NAME], *name);
        assert_eq!(s[secret_key::TABLE_ARN], arn);
        assert_eq!(s[secret_key::REGION], "us-east-1");
        assert_eq!(s.contains_key(secret_key::STREAM_ARN), *env != "dev", "{env}: a stream in staging and prod");
        assert_eq!(status.stream_arn.is_some(), *env != "dev");
        assert_eq!(status.table_status.as_deref(), Some("ACTIVE"));
        assert_eq!(status.item_count, Some(0));
        assert!(!status.indexes.is_empty(), "{env}: the example's index");
        let policy: Value = serde_json::from_str(status.workload_policy.as_deref().expect("a policy")).expect("JSON");
        assert_eq!(policy["Statement"][0]["Resource"], json!(arn));
        // The presets reached the table itself.
        let table = dynamo.describe_table().table_name(name).send().await.expect("describe").table.expect("table");
        assert_eq!(table.deletion_protection_enabled(), Some(*env == "prod"), "{env}: protection");
        assert_eq!(table.global_secondary_indexes().len(), 1, "{env}");
        let pitr = dynamo.describe_continuous_backups().table_name(name).send().await.expect("pitr");
        let on = pitr
            .continuous_backups_description()
            .and_then(|d| d.point_in_time_recovery_description())
            .and_then(|p| p.point_in_time_recovery_status())
            .map(|s| s.as_str() == "ENABLED");
        assert_eq!(on, Some(*env != "dev"), "{env}: point-in-time recovery");
        let params = stack_params(&stack(w.emu, name).await.expect("the stack"));
        assert_eq!(params[param::ENVIRONMENT], *env);
    }

    // Each environment's preset deletion policy: dev Delete, staging Snapshot, prod Retain.
    let (dev_name, staging_name, prod_name) = (&names[0].0, &names[1].0, &names[2].0);
    for (name, _) in &names {
        api.delete(name, &DeleteParams::default()).await.expect("delete");
    }
    for (name, _) in &names {
        gone(&w, name).await;
    }
    table_gone(&w, dev_name).await;
    assert!(stack(w.emu, dev_name).await.is_none(), "Delete: the stack is gone");

    table_gone(&w, staging_name).await;
    let backups = dynamo.list_backups().table_name(staging_name).send().await.expect("list backups");
    let backup = backups.backup_summaries().first().expect("Snapshot: a backup outlives the table");
    assert!(backup.backup_name().is_some_and(|n| n.starts_with("oms-dynamodb-backup-")), "{backup:?}");
    assert_eq!(backup.backup_status().map(|s| s.as_str()), Some("AVAILABLE"));
    assert_eq!(backups.backup_summaries().len(), 1, "exactly one backup");

    let kept = stack(w.emu, prod_name).await.expect("Retain: the stack stays");
    assert_eq!(stack_tags(&kept).get(ownership::ORPHANED).map(String::as_str), Some("true"));
    let table = dynamo.describe_table().table_name(prod_name).send().await.expect("Retain: the table stays");
    assert_eq!(table.table.and_then(|t| t.deletion_protection_enabled()), Some(true));
    let s = secret(&w, &format!("{prod_name}-dynamodb")).await;
    assert_eq!(s[secret_key::TABLE_NAME], *prod_name, "Retain: the Secret stays");
}

#[tokio::test]
async fn a_workload_reads_the_connection_secret_and_writes_reads_and_queries_an_index() {
    let w = World::new("dyn-client").await;
    let name = unique_name("oms-dynamodb-orders");
    create(&w, &example("dev", &name)).await;
    ready_in(&tables(&w), &name).await;

    // The workload's side: everything it knows comes from the Secret, as environment variables would.
    let env = secret(&w, &format!("{name}-dynamodb")).await;
    let config = aws_config::SdkConfig::builder()
        .behavior_version(aws_config::BehaviorVersion::latest())
        .region(aws_config::Region::new(env[secret_key::REGION].clone()))
        .endpoint_url(w.emu.sdk_config().endpoint_url().expect("the emulator"))
        .credentials_provider(w.emu.sdk_config().credentials_provider().expect("credentials"))
        .build();
    let client = aws_sdk_dynamodb::Client::new(&config);
    let table = &env[secret_key::TABLE_NAME];
    let s = |v: &str| AttributeValue::S(v.to_string());
    for (order, client_id, at) in [("o-1", "c-7", "100"), ("o-2", "c-7", "200"), ("o-3", "c-9", "150")] {
        client
            .put_item()
            .table_name(table)
            .item("orderId", s(order))
            .item("clientId", s(client_id))
            .item("createdAt", AttributeValue::N(at.to_string()))
            .item("status", s("NEW"))
            .send()
            .await
            .expect("PutItem");
    }
    let got = client.get_item().table_name(table).key("orderId", s("o-2")).send().await.expect("GetItem");
    assert_eq!(got.item().and_then(|i| i.get("clientId")), Some(&s("c-7")));
    let by_client = client
        .query()
        .table_name(table)
        .index_name("by-client")
        .key_condition_expression("clientId = :c")
        .expression_attribute_values(":c", s("c-7"))
        .send()
        .await
        .expect("Query on the index");
    let orders: Vec<&AttributeValue> = by_client.items().iter().filter_map(|i| i.get("orderId")).collect();
    assert_eq!(orders, [&s("o-1"), &s("o-2")], "the index's sort key orders them");
}

#[tokio::test]
async fn an_edit_updates_the_table_in_place_and_changes_dynamodb_cannot_make_are_refused_at_apply() {
    let w = World::new("dyn-edit").await;
    let api = tables(&w);
    let name = unique_name("oms-dynamodb-edit");
    create(&w, &manifest(&name, dev(json!({})))).await;
    let before = ready_in(&api, &name).await;
    let stack_id = before.status.as_ref().and_then(|s| s.stack.stack_id.clone()).expect("a stack");
    let client = dynamodb(&w);
    client
        .put_item()
        .table_name(&name)
        .item("orderId", AttributeValue::S("kept".into()))
        .send()
        .await
        .expect("an item to keep");

    let index = json!({ "indexName": "by-client", "partitionKey": { "name": "clientId", "type": "String" } });
    patch_spec(&w, &name, json!({ "globalSecondaryIndexes": [index], "timeToLiveAttribute": "expiresAt" }))
        .await
        .expect("one index added");
    let after = ready_in(&api, &name).await;
    let status = after.status.clone().expect("status");
    assert_eq!(status.indexes, ["by-client"]);
    assert_eq!(status.stack.stack_id.as_deref(), Some(stack_id.as_str()), "the same stack");
    let table = client.describe_table().table_name(&name).send().await.expect("describe").table.expect("table");
    assert_eq!(table.global_secondary_indexes().first().and_then(|i| i.index_name()), Some("by-client"));
    let item = client.get_item().table_name(&name).key("orderId", AttributeValue::S("kept".into())).send().await;
    assert!(item.expect("GetItem").item().is_some(), "updated in place: the item is still there");
    let ttl = client.describe_time_to_live().table_name(&name).send().await.expect("ttl");
    assert_eq!(ttl.time_to_live_description().and_then(|d| d.attribute_name()), Some("expiresAt"));

    // What DynamoDB cannot change in place is refused by the apiserver, with what to do instead.
    let refusals = [
        (json!({ "partitionKey": { "name": "id", "type": "String" } }), "partitionKey is immutable"),
        (json!({ "sortKey": { "name": "at", "type": "Number" } }), "sortKey is immutable"),
        (
            json!({ "globalSecondaryIndexes": [index, { "indexName": "by-a", "partitionKey": { "name": "a", "type": "String" } },
                { "indexName": "by-b", "partitionKey": { "name": "b", "type": "String" } }] }),
            "one global secondary index per update",
        ),
        (
            json!({ "globalSecondaryIndexes": [{ "indexName": "by-client", "partitionKey": { "name": "clientId", "type": "Number" } }] }),
            "never changes an index's keys",
        ),
        (
            json!({ "globalSecondaryIndexes": [index, { "indexName": "by-order", "partitionKey": { "name": "orderId", "type": "Number" } }] }),
            "same type",
        ),
        (json!({ "timeToLiveAttribute": "expiry" }), "cannot be renamed in one edit"),
        (json!({ "deletionProtection": true }), "deletionPolicy must be Retain"),
        (json!({ "billingMode": "PROVISIONED" }), "needs provisionedThroughput"),
    ];
    for (spec, want) in refusals {
        let e = patch_spec(&w, &name, spec.clone()).await.expect_err("refused at apply");
        assert!(e.to_string().contains(want), "{spec}: {e}");
    }
    assert_eq!(
        api.get(&name).await.expect("get").metadata.generation,
        after.metadata.generation,
        "nothing was applied"
    );
}

#[tokio::test]
async fn injected_failures_end_in_their_states() {
    let w = World::new("dyn-fail").await;
    let api = tables(&w);
    // A create that fails is rolled back and made again.
    let name = unique_name("oms-dynamodb-fail");
    w.emu.fail_next(&name, "create", "Table", "Table limit exceeded");
    create(&w, &manifest(&name, dev(json!({})))).await;
    let note = w.event_note("StackRecreating").await;
    assert!(note.contains("Table limit exceeded") && note.contains("Table"), "{note}");
    ready_in(&api, &name).await;
    assert_eq!(w.count(&name, "cloudformation:CreateStack"), 2);

    // An update that fails rolls back, leaves the table serving, and is not sent again.
    w.emu.fail_next(&name, "update", "Table", "Subscriber limit exceeded");
    patch_spec(&w, &name, json!({ "tableClass": "STANDARD_INFREQUENT_ACCESS" })).await.expect("patch");
    let o = reason_in(&api, &name, "Stalled", "True", "StackUpdateRolledBack").await;
    let ready = condition(&o, "Ready").expect("Ready");
    assert!(ready.message.contains("Subscriber limit exceeded"), "{}", ready.message);
    assert_eq!(o.status.as_ref().and_then(|s| s.stack.stack_status.as_deref()), Some("UPDATE_ROLLBACK_COMPLETE"));
    assert!(o.status.as_ref().and_then(|s| s.table_name.clone()).is_some(), "the table stays published");
    let status = o.status.clone().expect("status");
    assert_eq!(status.table_status.as_deref(), Some("ACTIVE"), "and what DynamoDB says of it: {status:?}");
    assert!(status.item_count.is_some(), "{status:?}");
    let secrets: Api<Secret> = Api::namespaced(w.client.clone(), &w.ns);
    assert!(secrets.get_opt(&format!("{name}-dynamodb")).await.expect("get").is_some());

    // A delete that fails is tried again.
    w.emu.fail_next(&name, "delete", "Table", "Internal failure");
    api.delete(&name, &DeleteParams::default()).await.expect("delete");
    let note = w.event_note("StackDeleteFailed").await;
    assert!(note.contains("Internal failure"), "{note}");
    gone(&w, &name).await;
    assert!(stack(w.emu, &name).await.is_none(), "the stack is gone");
}

#[tokio::test]
async fn a_stack_owned_in_another_namespace_is_refused_and_the_secret_heals() {
    let w = World::new("dyn-own-a").await;
    let api = tables(&w);
    let name = unique_name("oms-dynamodb-shared");
    create(&w, &manifest(&name, dev(json!({})))).await;
    ready_in(&api, &name).await;
    let writes = w.writes(&name);

    let other_ns = controlplane::test_namespace(&w.client, "dyn-own-b").await;
    let _other_operator = Operator::start(w.cp, w.emu, &other_ns).await;
    let other: Api<OmsDynamoTable> = Api::namespaced(w.client.clone(), &other_ns);
    let intruder = manifest("intruder", dev(json!({ "stackName": name, "timeToLiveAttribute": "x" })));
    other.create(&PostParams::default(), &intruder).await.expect("create the intruder");
    let o = reason_in(&other, "intruder", "Stalled", "True", "StackOwnedElsewhere").await;
    let msg = condition(&o, "Ready").map(|c| c.message.clone()).unwrap_or_default();
    assert!(msg.contains(&format!("{}/{name}", w.ns)), "names the owner: {msg}");
    assert_eq!(w.writes(&name), writes, "nothing was touched");

    // The connection Secret comes back when deleted, and its values when edited.
    let secrets: Api<Secret> = Api::namespaced(w.client.clone(), &w.ns);
    let secret_name = format!("{name}-dynamodb");
    let good = secret(&w, &secret_name).await;
    secrets
        .patch(
            &secret_name,
            &PatchParams::default(),
            &Patch::Merge(json!({ "stringData": { secret_key::TABLE_NAME: "wrong" } })),
        )
        .await
        .expect("edit the Secret");
    eventually("the edited Secret to be repaired", WAIT, || async {
        (secret(&w, &secret_name).await == good).then_some(())
    })
    .await;
    secrets.delete(&secret_name, &DeleteParams::default()).await.expect("delete the Secret");
    eventually("the deleted Secret to come back", WAIT, || async {
        let s = secrets.get_opt(&secret_name).await.ok()??;
        (secret_data(&s) == good).then_some(())
    })
    .await;
    assert_eq!(w.writes(&name), writes, "repairing the Secret needs no AWS write");
}

#[tokio::test]
async fn adopting_a_table_of_other_keys_is_previewed_as_a_replacement_and_refused() {
    let w = World::new("dyn-adopt").await;
    let api = tables(&w);
    let name = unique_name("oms-dynamodb-adopt");
    // A table made by hand from the shipped template, keyed by `id`.
    let param = |k: &str, v: &str| {
        aws_sdk_cloudformation::types::Parameter::builder().parameter_key(k).parameter_value(v).build()
    };
    w.emu
        .cloudformation()
        .create_stack()
        .stack_name(&name)
        .template_body(oms_data_operator::dynamo::template::TEMPLATE_BODY)
        .set_parameters(Some(vec![param(param::PARTITION_KEY_NAME, "id")]))
        .send()
        .await
        .expect("a stack made by hand");
    eventually("the hand-made stack", WAIT, || async {
        let s = stack(w.emu, &name).await?;
        (s.stack_status().map(|s| s.as_str()) == Some("CREATE_COMPLETE")).then_some(())
    })
    .await;
    // Adopting it with another partition key would replace the table: previewed, and refused.
    create(&w, &manifest(&name, dev(json!({ "adoptExistingStack": true })))).await;
    let o = reason_in(&api, &name, "Stalled", "True", "StackChangeReplacesData").await;
    let message = condition(&o, "Ready").map(|c| c.message.clone()).unwrap_or_default();
    assert!(message.contains("Table") && message.contains("named after the stack"), "{message}");
    assert_eq!(w.count(&name, "cloudformation:ExecuteChangeSet"), 0, "nothing was changed");
    let table = dynamodb(&w).describe_table().table_name(&name).send().await.expect("the table stays");
    let keys: Vec<&str> =
        table.table().map(|t| t.key_schema().iter().map(|k| k.attribute_name()).collect()).unwrap_or_default();
    assert_eq!(keys, ["id"]);
    // Never taken over, so deleting the resource leaves the stack and its table alone.
    api.delete(&name, &DeleteParams::default()).await.expect("delete");
    gone(&w, &name).await;
    assert!(stack(w.emu, &name).await.is_some(), "the hand-made stack stays");
}

#[tokio::test]
async fn bad_manifests_are_refused_at_apply_with_what_to_change() {
    let w = World::new("dyn-bad").await;
    let api = tables(&w);
    let pk = json!({ "name": "id", "type": "String" });
    let index = |n: usize| json!({ "indexName": format!("by-{n:03}"), "partitionKey": { "name": format!("a{n}"), "type": "String" } });
    let cases = [
        ("oms.dynamodb.dots", json!({ "environment": "dev", "partitionKey": pk }), "no dots"),
        (
            "prod-unprotected",
            json!({ "environment": "prod", "partitionKey": pk, "deletionProtection": false }),
            "prod needs deletionProtection",
        ),
        (
            "prod-no-pitr",
            json!({ "environment": "prod", "partitionKey": pk, "pointInTimeRecovery": false }),
            "prod needs pointInTimeRecovery",
        ),
        (
            "prod-deleted",
            json!({ "environment": "prod", "partitionKey": pk, "deletionPolicy": "Delete" }),
            "deletionPolicy must be Retain",
        ),
        ("key-type", json!({ "environment": "dev", "partitionKey": { "name": "id", "type": "S" } }), "String"),
        (
            "capacity",
            json!({ "environment": "dev", "partitionKey": pk, "provisionedThroughput": { "readCapacityUnits": 1, "writeCapacityUnits": 1 } }),
            "only for billingMode: PROVISIONED",
        ),
        (
            "include",
            json!({ "environment": "dev", "partitionKey": pk, "globalSecondaryIndexes": [
                { "indexName": "by-x", "partitionKey": { "name": "x", "type": "String" }, "projection": { "type": "INCLUDE" } }] }),
            "INCLUDE needs at least one",
        ),
        (
            "twins",
            json!({ "environment": "dev", "partitionKey": pk, "globalSecondaryIndexes": [index(1), index(1)] }),
            "its own indexName",
        ),
        (
            "too-many",
            json!({ "environment": "dev", "partitionKey": pk, "globalSecondaryIndexes": (0..21).map(index).collect::<Vec<_>>() }),
            "must have at most 20 items",
        ),
    ];
    // Sent raw, as kubectl would: a wrong key type cannot even be held by the Rust type.
    let resource = kube::api::ApiResource::erase::<OmsDynamoTable>(&());
    let raw: Api<kube::api::DynamicObject> = Api::namespaced_with(w.client.clone(), &w.ns, &resource);
    for (name, spec, want) in cases {
        let body = json!({ "apiVersion": "data.oms-spider.io/v1alpha1", "kind": "OmsDynamoTable", "metadata": { "name": name }, "spec": spec });
        let obj: kube::api::DynamicObject = serde_json::from_value(body).expect("an object");
        match raw.create(&PostParams::default(), &obj).await {
            Err(e) => assert!(e.to_string().contains(want), "{name}: {e}"),
            Ok(_) => panic!("{name} was accepted"),
        }
    }
    assert!(api.list(&Default::default()).await.expect("list").items.is_empty(), "nothing was made");
}

#[tokio::test]
async fn an_operator_killed_at_each_step_of_a_table_backup_deletion_takes_one_backup_and_deletes_the_stack_once() {
    use support::operator::OperatorProcess;
    let w = World::new("dyn-kill").await;
    let ns = controlplane::test_namespace(&w.client, "dyn-kill-bin").await;
    let api: Api<OmsDynamoTable> = Api::namespaced(w.client.clone(), &ns);
    let name = unique_name("oms-dynamodb-kill");
    let spawn = |key: &str| OperatorProcess::watching(w.emu, &w.cp.kubeconfig, &ns, key, &[]);
    let operator = spawn("dynkill-0");
    // Staging: deletion policy Snapshot by its preset.
    let spec = json!({ "environment": "staging", "partitionKey": { "name": "orderId", "type": "String" } });
    let mut table = manifest(&name, spec);
    table.metadata.namespace = Some(ns.clone());
    api.create(&PostParams::default(), &table).await.expect("create");
    ready_in(&api, &name).await;
    dynamodb(&w)
        .put_item()
        .table_name(&name)
        .item("orderId", AttributeValue::S("o-1".into()))
        .send()
        .await
        .expect("an item worth a backup");
    // Each step: its reply is lost, the operator is SIGKILLed while it waits, a new one goes on.
    let calls = ["dynamodb:CreateBackup", "cloudformation:DeleteStack"];
    let operator =
        delete_killing_at_each_call(&w, &api, &name, &calls, operator, |i| spawn(&format!("dynkill-{i}"))).await;
    eventually(&format!("{name} to be deleted"), WAIT, || async {
        matches!(api.get_opt(&name).await, Ok(None)).then_some(())
    })
    .await;
    let backups = dynamodb(&w).list_backups().table_name(&name).send().await.expect("backups");
    assert_eq!(backups.backup_summaries().len(), 1, "one backup, however often the operator died: {backups:?}");
    assert!(stack(w.emu, &name).await.is_none(), "the stack is deleted");
    let calls = w.emu.calls(Some(&name));
    println!("dynamo: backup deletion killed at CreateBackup and DeleteStack: {calls:?}");
    assert_eq!(calls.get("dynamodb:CreateBackup"), Some(&1), "{calls:?}");
    drop(operator);
}
