//! Several AWS accounts on the bed: a namespace names the role to assume, the operator reaches the
//! role's account through STS (the emulator keeps accounts apart as moto does), a role that cannot be
//! assumed stalls with STS's words, and a stack is never looked for or made again in another account.

mod support;

use k8s_openapi::api::core::v1::Namespace;
use kube::api::{Api, DeleteParams, Patch, PatchParams};
use serde_json::json;
use support::emulator::Emulator;
use support::world::{World, condition};
use support::{eventually, unique_name};

const ROLE_ARN: &str = "data.oms-spider.io/aws-role-arn";
const EXTERNAL_ID: &str = "data.oms-spider.io/aws-external-id";

async fn annotate_namespace(w: &World, role: Option<&str>, external_id: Option<&str>) {
    Api::<Namespace>::all(w.client.clone())
        .patch(
            &w.ns,
            &PatchParams::default(),
            &Patch::Merge(json!({ "metadata": { "annotations": { ROLE_ARN: role, EXTERNAL_ID: external_id } } })),
        )
        .await
        .expect("annotate the namespace");
}

/// A role in its own fresh account (12 digits, unique per test run), allowed to be assumed.
fn role_in_new_account(emu: &Emulator, external_id: Option<&str>) -> (String, String) {
    let n = unique_name("a").bytes().fold(0u64, |h, b| h.wrapping_mul(31).wrapping_add(u64::from(b)));
    let account = format!("{:012}", 100_000_000_000 + n % 800_000_000_000);
    let arn = format!("arn:aws:iam::{account}:role/oms-data-operator-bed");
    emu.allow_roles(json!({ arn.clone(): { "external_id": external_id } }));
    (account, arn)
}

async fn stack_names_in(conf: &aws_config::SdkConfig) -> Vec<String> {
    let cfn = aws_sdk_cloudformation::Client::new(conf);
    let out = cfn.describe_stacks().send().await.expect("describe stacks");
    out.stacks().iter().filter_map(|s| s.stack_name().map(str::to_string)).collect()
}

#[tokio::test]
async fn two_namespaces_land_in_two_accounts_and_neither_sees_the_others_stack() {
    let (a, b) = (World::new("acct-a").await, World::new("acct-b").await);
    let (account_a, role_a) = role_in_new_account(a.emu, Some("team-a"));
    let (account_b, role_b) = role_in_new_account(b.emu, None);
    assert_ne!(account_a, account_b);
    let conf_a = a.emu.sdk_config_for_role(&role_a, Some("team-a")).await;
    let conf_b = b.emu.sdk_config_for_role(&role_b, None).await;
    a.emu.deploy_vpc_in(&conf_a, &a.vpc).await;
    b.emu.deploy_vpc_in(&conf_b, &b.vpc).await;
    annotate_namespace(&a, Some(&role_a), Some("team-a")).await;
    annotate_namespace(&b, Some(&role_b), None).await;

    let (name_a, name_b) = (unique_name("oms-redis-acct-a"), unique_name("oms-redis-acct-b"));
    a.create(&name_a, "dev", json!({})).await;
    b.create(&name_b, "dev", json!({})).await;
    for (w, name, account, role) in [(&a, &name_a, &account_a, &role_a), (&b, &name_b, &account_b, &role_b)] {
        let o = w.ready(name).await;
        let s = &o.status.as_ref().expect("status").stack;
        assert_eq!(s.account.as_deref(), Some(account.as_str()));
        assert_eq!(s.role_arn.as_deref(), Some(role.as_str()));
        assert!(s.stack_id.as_deref().is_some_and(|id| id.contains(&format!(":{account}:stack/"))));
    }
    // Each stack is in its account only, tagged with it.
    let in_a = stack_names_in(&conf_a).await;
    let in_b = stack_names_in(&conf_b).await;
    assert!(in_a.contains(&name_a) && !in_a.contains(&name_b), "{in_a:?}");
    assert!(in_b.contains(&name_b) && !in_b.contains(&name_a), "{in_b:?}");
    let default = stack_names_in(&support::operator::emulator_sdk_config(a.emu)).await;
    assert!(!default.contains(&name_a) && !default.contains(&name_b));
    let cfn_a = aws_sdk_cloudformation::Client::new(&conf_a);
    let live = cfn_a.describe_stacks().stack_name(&name_a).send().await.expect("describe");
    let tags = live.stacks()[0].tags();
    assert!(tags.iter().any(|t| t.key() == Some("oms-data-operator/account") && t.value() == Some(account_a.as_str())));

    // Deletion reaches the stack in its account too.
    a.api.delete(&name_a, &DeleteParams::default()).await.expect("delete");
    a.gone(&name_a).await;
    assert!(!stack_names_in(&conf_a).await.contains(&name_a));
    assert!(stack_names_in(&conf_b).await.contains(&name_b));
}

#[tokio::test]
async fn a_role_that_cannot_be_assumed_stalls_with_stss_reason_until_it_can() {
    let w = World::new("acct-deny").await;
    let (_, role) = role_in_new_account(w.emu, Some("the-right-id"));
    let conf = w.emu.sdk_config_for_role(&role, Some("the-right-id")).await;
    w.emu.deploy_vpc_in(&conf, &w.vpc).await;
    // A role name that is no ARN: refused before any AWS call.
    annotate_namespace(&w, Some("oms-data-operator-bed"), None).await;
    let name = unique_name("oms-redis-acct-deny");
    w.create(&name, "dev", json!({})).await;
    let o = w.condition_reason(&name, "Stalled", "True", "InvalidNamespaceRole").await;
    let message = condition(&o, "Stalled").map(|c| c.message.clone()).unwrap_or_default();
    assert!(message.contains("not an IAM role ARN"), "{message}");
    assert_eq!(w.writes(&name), 0);

    annotate_namespace(&w, Some(&role), Some("a-wrong-id")).await;
    let o = w.condition_reason(&name, "Stalled", "True", "AwsAccessDenied").await;
    let message = condition(&o, "Stalled").map(|c| c.message.clone()).unwrap_or_default();
    assert!(message.contains(&format!("could not assume role {role}")), "{message}");
    assert!(message.contains("not authorized to perform: sts:AssumeRole"), "STS's own words: {message}");
    assert!(!stack_names_in(&conf).await.contains(&name));
    assert!(!stack_names_in(&support::operator::emulator_sdk_config(w.emu)).await.contains(&name));

    // The trust policy's external id, and the operator carries on by itself.
    annotate_namespace(&w, Some(&role), Some("the-right-id")).await;
    w.ready(&name).await;
    assert!(stack_names_in(&conf).await.contains(&name));
}

#[tokio::test]
async fn a_stack_is_never_looked_for_in_another_account() {
    let w = World::new("acct-move").await;
    let (account, role) = role_in_new_account(w.emu, None);
    let (_, elsewhere) = role_in_new_account(w.emu, None);
    let conf = w.emu.sdk_config_for_role(&role, None).await;
    let conf_elsewhere = w.emu.sdk_config_for_role(&elsewhere, None).await;
    w.emu.deploy_vpc_in(&conf, &w.vpc).await;
    w.emu.deploy_vpc_in(&conf_elsewhere, &w.vpc).await;
    annotate_namespace(&w, Some(&role), None).await;
    let name = unique_name("oms-redis-acct-move");
    w.create(&name, "dev", json!({})).await;
    w.ready(&name).await;

    // The namespace now leads to another account: refused, for the live resource and for its deletion.
    annotate_namespace(&w, Some(&elsewhere), None).await;
    let o = w.condition_reason(&name, "Stalled", "True", "StackIdentityChanged").await;
    let message = condition(&o, "Stalled").map(|c| c.message.clone()).unwrap_or_default();
    assert!(message.contains(&account) && message.contains(&elsewhere), "{message}");
    w.api.delete(&name, &DeleteParams::default()).await.expect("delete");
    tokio::time::sleep(std::time::Duration::from_secs(3)).await;
    assert!(w.api.get_opt(&name).await.expect("get").is_some(), "not released while its stack is out of reach");
    assert!(stack_names_in(&conf).await.contains(&name), "the stack is kept");
    assert!(!stack_names_in(&conf_elsewhere).await.contains(&name), "and none made elsewhere");

    // Back to the stack's account: the deletion goes ahead there.
    annotate_namespace(&w, Some(&role), None).await;
    w.gone(&name).await;
    eventually("the stack to be deleted", support::world::WAIT, || async {
        (!stack_names_in(&conf).await.contains(&name)).then_some(())
    })
    .await;
}
