//! One bed test's world: a fresh namespace, a VPC stack, and the operator watching that namespace,
//! with the lookups the operator tests share (conditions, stacks, Secrets, Events, AWS call counts).

use super::controlplane::{self, ControlPlane};
use super::emulator::{self, Emulator};
use super::eventually;
use super::operator::{Operator, OperatorProcess};
use aws_sdk_cloudformation::error::ProvideErrorMetadata;
use k8s_openapi::api::core::v1::{Event as CoreEvent, Secret};
use kube::api::{Api, ListParams, Patch, PatchParams, PostParams};
use oms_data_operator::redis::OmsRedis;
use oms_data_operator::redis::template::param;
use oms_data_operator::stack::DataStack;
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::time::Duration;

pub const WAIT: Duration = Duration::from_secs(90);

/// One test's world: a namespace, a VPC stack, and the operator watching that namespace.
pub struct World {
    pub cp: &'static ControlPlane,
    pub emu: &'static Emulator,
    pub client: kube::Client,
    pub ns: String,
    pub vpc: String,
    pub api: Api<OmsRedis>,
    pub operator: Option<Operator>,
}

impl World {
    pub async fn new(prefix: &str) -> World {
        let cp = controlplane::shared();
        let emu = emulator::shared();
        let client = cp.client().await;
        let ns = controlplane::test_namespace(&client, prefix).await;
        let vpc = emu.deploy_vpc().await;
        let operator = Some(Operator::start(cp, emu, &ns).await);
        let api = Api::namespaced(client.clone(), &ns);
        World { cp, emu, client, ns, vpc, api, operator }
    }

    pub fn manifest(&self, name: &str, env: &str, extra: Value) -> OmsRedis {
        let mut spec = json!({ "environment": env, "vpcStackName": self.vpc });
        if let (Some(s), Some(e)) = (spec.as_object_mut(), extra.as_object()) {
            s.extend(e.clone());
        }
        serde_json::from_value(json!({
            "apiVersion": "data.oms-spider.io/v1alpha1",
            "kind": "OmsRedis",
            "metadata": { "name": name },
            "spec": spec,
        }))
        .expect("a valid OmsRedis")
    }

    pub async fn create(&self, name: &str, env: &str, extra: Value) -> OmsRedis {
        self.api.create(&PostParams::default(), &self.manifest(name, env, extra)).await.expect("create the OmsRedis")
    }

    pub async fn patch_spec(&self, name: &str, spec: Value) {
        self.api
            .patch(name, &PatchParams::default(), &Patch::Merge(json!({ "spec": spec })))
            .await
            .expect("patch the spec");
    }

    pub async fn get(&self, name: &str) -> OmsRedis {
        self.api.get(name).await.expect("get the OmsRedis")
    }

    /// Waits for Ready=True at the current generation.
    pub async fn ready(&self, name: &str) -> OmsRedis {
        ready_in(&self.api, name).await
    }

    pub async fn condition_reason(&self, name: &str, type_: &str, status: &str, reason: &str) -> OmsRedis {
        reason_in(&self.api, name, type_, status, reason).await
    }

    pub async fn secret(&self, name: &str) -> Option<Secret> {
        Api::<Secret>::namespaced(self.client.clone(), &self.ns).get_opt(name).await.expect("get the Secret")
    }

    pub async fn events(&self, reason: &str) -> Vec<CoreEvent> {
        Api::<CoreEvent>::namespaced(self.client.clone(), &self.ns)
            .list(&ListParams::default())
            .await
            .expect("list events")
            .items
            .into_iter()
            .filter(|e| e.reason.as_deref() == Some(reason))
            .collect()
    }

    pub async fn event_note(&self, reason: &str) -> String {
        eventually(&format!("an Event {reason}"), WAIT, || async {
            let evs = self.events(reason).await;
            evs.first().map(|e| e.message.clone().unwrap_or_default())
        })
        .await
    }

    pub async fn gone(&self, name: &str) {
        eventually(&format!("{name} to be deleted"), WAIT, || async {
            matches!(self.api.get_opt(name).await, Ok(None)).then_some(())
        })
        .await;
    }

    /// AWS write calls for a stack, counted on the emulator.
    pub fn writes(&self, stack: &str) -> u64 {
        self.emu
            .calls(Some(stack))
            .iter()
            .filter(|(k, _)| {
                [
                    "CreateStack",
                    "UpdateStack",
                    "CreateChangeSet",
                    "ExecuteChangeSet",
                    "DeleteChangeSet",
                    "DeleteStack",
                    "CreateSnapshot",
                ]
                .iter()
                .any(|a| k.ends_with(&format!(":{a}")))
            })
            .map(|(_, v)| *v)
            .sum()
    }

    pub fn count(&self, stack: &str, action: &str) -> u64 {
        self.emu.calls(Some(stack)).get(action).copied().unwrap_or(0)
    }
}

/// Applies a dev-style resource named each of `names` (with `env` and `extra` spec) in namespace
/// `ns` of `api`, for tests whose operator watches a namespace of its own.
pub async fn create_in(w: &World, api: &Api<OmsRedis>, ns: &str, names: &[String], env: &str, extra: Value) {
    for n in names {
        let mut m = w.manifest(n, env, extra.clone());
        m.metadata.namespace = Some(ns.to_string());
        api.create(&PostParams::default(), &m).await.expect("create");
    }
}

/// Waits until every one of `names` is Ready.
pub async fn all_ready(api: &Api<OmsRedis>, names: &[String]) {
    for n in names {
        eventually(&format!("{n} Ready"), WAIT, || async {
            let o = api.get(n).await.ok()?;
            (condition(&o, "Ready")?.status == "True").then_some(())
        })
        .await;
    }
}

/// Every stack CloudFormation ever had by each of `names` (deleted ones included): exactly one.
pub async fn assert_one_stack_each(emu: &Emulator, names: &[String]) {
    let cfn = emu.cloudformation();
    let mut ids: BTreeMap<String, Vec<String>> = Default::default();
    let mut token = None;
    loop {
        let out = cfn.list_stacks().set_next_token(token.take()).send().await.expect("list");
        for s in out.stack_summaries() {
            if let (Some(n), Some(id)) = (s.stack_name(), s.stack_id())
                && names.iter().any(|x| x == n)
            {
                ids.entry(n.to_string()).or_default().push(id.to_string());
            }
        }
        match out.next_token() {
            Some(t) => token = Some(t.to_string()),
            None => break,
        }
    }
    for n in names {
        assert_eq!(ids.get(n).map(Vec::len), Some(1), "{n}: one stack, however often it was asked for: {ids:?}");
    }
}

pub fn condition<'a, K: DataStack>(
    o: &'a K,
    type_: &str,
) -> Option<&'a k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition> {
    o.stack_status()?.conditions.iter().find(|c| c.type_ == type_)
}

/// Waits for a resource of any kind to be Ready=True at its current generation.
pub async fn ready_in<K: DataStack>(api: &Api<K>, name: &str) -> K {
    eventually(&format!("{name} to be Ready"), WAIT, || async {
        let o = api.get(name).await.ok()?;
        let generation = o.meta().generation;
        let status = o.stack_status()?;
        let ready = condition(&o, "Ready")?;
        (ready.status == "True" && status.observed_generation == generation && ready.observed_generation == generation)
            .then_some(o)
    })
    .await
}

/// Waits for a resource of any kind to show condition `type_` with this status and reason.
pub async fn reason_in<K: DataStack>(api: &Api<K>, name: &str, type_: &str, status: &str, reason: &str) -> K {
    eventually(&format!("{name} {type_}={status} ({reason})"), WAIT, || async {
        let o = api.get(name).await.ok()?;
        let c = condition(&o, type_)?;
        (c.status == status && c.reason == reason).then_some(o)
    })
    .await
}

pub async fn stack(emu: &Emulator, name: &str) -> Option<aws_sdk_cloudformation::types::Stack> {
    match emu.cloudformation().describe_stacks().stack_name(name).send().await {
        Ok(out) => out.stacks().first().cloned(),
        Err(e) if e.message().is_some_and(|m| m.contains("does not exist")) => None,
        Err(e) => panic!("describe {name}: {e:?}"),
    }
}

pub fn stack_params(s: &aws_sdk_cloudformation::types::Stack) -> BTreeMap<String, String> {
    s.parameters()
        .iter()
        .filter_map(|p| Some((p.parameter_key()?.to_string(), p.parameter_value()?.to_string())))
        .collect()
}

pub fn stack_tags(s: &aws_sdk_cloudformation::types::Stack) -> BTreeMap<String, String> {
    s.tags().iter().filter_map(|t| Some((t.key()?.to_string(), t.value()?.to_string()))).collect()
}

pub fn secret_data(s: &Secret) -> BTreeMap<String, String> {
    oms_data_operator::stack::publish::secret_text(s)
}

pub fn seed(env: &str, vpc: &str) -> BTreeMap<String, String> {
    let (node, nodes, retention, failover) = match env {
        "dev" => ("cache.t4g.micro", "1", "0", "false"),
        "staging" => ("cache.t4g.small", "2", "3", "true"),
        _ => ("cache.m7g.large", "3", "7", "true"),
    };
    BTreeMap::from([
        (param::ENVIRONMENT.to_string(), env.to_string()),
        (param::VPC_STACK_NAME.to_string(), vpc.to_string()),
        (param::NODE_TYPE.to_string(), node.to_string()),
        (param::NUM_CACHE_NODES.to_string(), nodes.to_string()),
        (param::ENGINE_VERSION.to_string(), "7.1".to_string()),
        (param::SNAPSHOT_RETENTION_LIMIT.to_string(), retention.to_string()),
        (param::AUTOMATIC_FAILOVER_ENABLED.to_string(), failover.to_string()),
    ])
}

/// Deletes `name` and SIGKILLs its operator at each of `calls` ("service:Action") in turn: each
/// call's reply is held (the call is carried out, its answer lost), the operator is killed while it
/// waits, and `spawn(step)` starts the next one. Returns the operator left running.
pub async fn delete_killing_at_each_call<K: DataStack>(
    w: &World,
    api: &Api<K>,
    name: &str,
    calls: &[&str],
    mut operator: OperatorProcess,
    spawn: impl Fn(usize) -> OperatorProcess,
) -> OperatorProcess {
    for (i, key) in calls.iter().enumerate() {
        let action = key.split(':').nth(1).expect("service:Action");
        let seen = w.count(name, key);
        w.emu.hold(action, name, 1, 60.0);
        if i == 0 {
            api.delete(name, &Default::default()).await.expect("delete");
        }
        eventually(&format!("the operator to call {action}"), WAIT, || async {
            (w.count(name, key) > seen).then_some(())
        })
        .await;
        operator.child.kill().expect("kill -9 the operator");
        let _ = operator.child.wait();
        w.emu.hold(action, name, 0, 0.0);
        operator = spawn(i + 1);
    }
    operator
}
