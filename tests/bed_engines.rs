//! Engines on the bed: Valkey caches of each supported major version, and Redis OSS upgraded to
//! Valkey in place through the normal update path (the same stack, one ExecuteChangeSet).

mod support;

use oms_data_operator::redis::template::param;
use oms_data_operator::redis::{Engine, EngineVersion};
use serde_json::json;
use support::unique_name;
use support::world::{World, stack, stack_params};

/// The parameter-group family ElastiCache reports for the stack's parameter group.
async fn family_of(w: &World, stack_name: &str) -> String {
    let groups = w.emu.elasticache().describe_cache_parameter_groups().send().await.expect("parameter groups");
    let prefix = format!("{stack_name}-redisparametergroup");
    groups
        .cache_parameter_groups()
        .iter()
        .find(|g| g.cache_parameter_group_name().is_some_and(|n| n.starts_with(&prefix)))
        .and_then(|g| g.cache_parameter_group_family())
        .unwrap_or_else(|| panic!("no parameter group of {stack_name}"))
        .to_string()
}

#[tokio::test]
async fn valkey_caches_of_each_major_version_reach_ready() {
    let w = World::new("valkey").await;
    let majors = [EngineVersion::V7_2, EngineVersion::V8_2];
    let names: Vec<String> = majors.iter().map(|_| unique_name("oms-valkey")).collect();
    for (name, version) in names.iter().zip(majors) {
        // The newest also runs on a Valkey-only node type.
        let node = if version == EngineVersion::V8_2 { "cache.m8g.large" } else { "cache.t4g.micro" };
        w.create(name, "dev", json!({ "engine": "valkey", "engineVersion": version.as_str(), "nodeType": node })).await;
    }
    for (name, version) in names.iter().zip(majors) {
        let o = w.ready(name).await;
        let applied = o.status.and_then(|s| s.stack.applied_parameters).expect("applied");
        assert_eq!(applied[param::ENGINE], "valkey");
        assert_eq!(applied[param::ENGINE_VERSION], version.as_str());
        let live = stack_params(&stack(w.emu, name).await.expect("the stack"));
        assert_eq!(live[param::ENGINE], "valkey");
        assert_eq!(family_of(&w, name).await, version.family());
        assert!(w.secret(&format!("{name}-redis")).await.is_some(), "the Secret is published");
    }
}

#[tokio::test]
async fn redis_is_upgraded_to_valkey_in_place() {
    let w = World::new("upgrade").await;
    let name = unique_name("oms-redis-upg");
    w.create(&name, "staging", json!({})).await;
    let before = w.ready(&name).await;
    assert_eq!(family_of(&w, &name).await, "redis7");
    w.patch_spec(&name, json!({ "engine": "valkey" })).await;
    let after = w.ready(&name).await;
    let id = |o: &oms_data_operator::redis::OmsRedis| o.status.as_ref().and_then(|s| s.stack.stack_id.clone());
    assert_eq!(id(&after), id(&before), "the same stack");
    assert_eq!(w.count(&name, "cloudformation:CreateStack"), 1);
    assert_eq!(w.count(&name, "cloudformation:ExecuteChangeSet"), 1, "one update");
    let live = stack_params(&stack(w.emu, &name).await.expect("the stack"));
    assert_eq!(live[param::ENGINE], Engine::Valkey.as_str());
    assert_eq!(live[param::ENGINE_VERSION], "8.2");
    assert_eq!(family_of(&w, &name).await, "valkey8");
    assert_eq!(
        after.status.and_then(|s| s.endpoint),
        before.status.and_then(|s| s.endpoint),
        "the endpoint does not change"
    );
}

/// Redis OSS 6.2 leaves AWS standard support on 2027-01-31: within 90 days a condition and a
/// Warning say so and what to upgrade to, while the cache stays Ready. (The date comes from one
/// table; this test holds while today is within 90 days of it or past it.)
#[tokio::test]
async fn a_version_near_the_end_of_standard_support_is_warned_about_and_stays_ready() {
    let w = World::new("support").await;
    let old = unique_name("oms-redis-six");
    let new = unique_name("oms-redis-seven");
    w.create(&old, "dev", json!({ "engineVersion": "6.2" })).await;
    w.create(&new, "dev", json!({})).await;
    let o = w.ready(&old).await;
    let c = support::world::condition(&o, "EngineSupportEnding").expect("the support condition");
    assert_eq!(c.status, "True");
    assert!(c.message.contains("2027-01-31") && c.message.contains("engine: valkey"), "{}", c.message);
    let note = w.event_note("EngineSupportEnding").await;
    assert!(note.contains("2027-01-31"), "{note}");
    let n = w.ready(&new).await;
    assert!(support::world::condition(&n, "EngineSupportEnding").is_none(), "7.1 has no published end");
    // Upgrading clears it.
    w.patch_spec(&old, json!({ "engineVersion": "7.1" })).await;
    let o = w.ready(&old).await;
    assert!(support::world::condition(&o, "EngineSupportEnding").is_none());
}
