//! Safe changes on the bed: a stack changed outside the operator (someone's `update-stack`) is
//! noticed at the next look, reported with what changed, and brought back to the spec.

mod support;

use aws_sdk_cloudformation::types::Parameter;
use oms_data_operator::redis::template::{TEMPLATE_BODY, param};
use serde_json::json;
use std::time::Duration;
use support::operator::{Operator, test_settings};
use support::world::{WAIT, World, stack, stack_params};
use support::{eventually, unique_name};

#[tokio::test]
async fn an_update_stack_made_by_hand_is_reported_and_changed_back_to_the_spec() {
    let mut w = World::new("changes-oob").await;
    // A short resync, so the next look comes soon.
    w.operator.take().expect("operator").stop().await;
    let settings = oms_data_operator::context::Settings { resync: Duration::from_secs(3), ..test_settings() };
    w.operator = Some(Operator::start_with(w.cp, w.emu, &w.ns, settings).await);
    let name = unique_name("oms-redis-oob");
    w.create(&name, "dev", json!({})).await;
    w.ready(&name).await;

    // Someone scales the node type by hand, keeping every other parameter.
    let cfn = w.emu.cloudformation();
    let params: Vec<Parameter> = param::ALL
        .iter()
        .map(|k| match *k {
            param::NODE_TYPE => Parameter::builder().parameter_key(*k).parameter_value("cache.t4g.small").build(),
            _ => Parameter::builder().parameter_key(*k).use_previous_value(true).build(),
        })
        .collect();
    cfn.update_stack()
        .stack_name(&name)
        .template_body(TEMPLATE_BODY)
        .set_parameters(Some(params))
        .send()
        .await
        .expect("an update-stack by hand");

    let note = w.event_note("StackChangedOutside").await;
    assert!(
        note.contains("NodeType is cache.t4g.small, the spec says cache.t4g.micro")
            && note.contains("changing it back"),
        "{note}"
    );
    eventually("the stack back at the spec's node type", WAIT, || async {
        let s = stack(w.emu, &name).await?;
        let settled = s.stack_status().is_some_and(|st| st.as_str() == "UPDATE_COMPLETE");
        (settled && stack_params(&s).get(param::NODE_TYPE).map(String::as_str) == Some("cache.t4g.micro")).then_some(())
    })
    .await;
    w.ready(&name).await;
    assert_eq!(w.count(&name, "cloudformation:UpdateStack"), 2, "the hand-made update and one update back");
    // Once back, later looks change nothing.
    tokio::time::sleep(Duration::from_secs(7)).await;
    assert_eq!(w.count(&name, "cloudformation:UpdateStack"), 2, "no more updates once it matches the spec");
}
