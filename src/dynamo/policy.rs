//! The IAM policy a workload needs to use its table: read and write items, query and scan the
//! indexes, and read the stream when there is one. Nothing else: no table management, no other
//! table. Published in status so the workload's IRSA role can attach it as it is.

/// Item reads and writes. Transactions (TransactGetItems, TransactWriteItems) are authorized by
/// these same actions, per item.
pub const ITEM_ACTIONS: [&str; 10] = [
    "dynamodb:GetItem",
    "dynamodb:BatchGetItem",
    "dynamodb:Query",
    "dynamodb:Scan",
    "dynamodb:ConditionCheckItem",
    "dynamodb:PutItem",
    "dynamodb:UpdateItem",
    "dynamodb:DeleteItem",
    "dynamodb:BatchWriteItem",
    "dynamodb:DescribeTable",
];

pub const INDEX_ACTIONS: [&str; 2] = ["dynamodb:Query", "dynamodb:Scan"];

pub const STREAM_ACTIONS: [&str; 3] = ["dynamodb:DescribeStream", "dynamodb:GetShardIterator", "dynamodb:GetRecords"];

/// The policy document for the table `arn`, as compact JSON.
pub fn workload(arn: &str, stream: bool) -> String {
    let mut statements = vec![
        serde_json::json!({ "Sid": "ReadAndWriteItems", "Effect": "Allow", "Action": ITEM_ACTIONS, "Resource": arn }),
        serde_json::json!({
            "Sid": "QueryIndexes", "Effect": "Allow", "Action": INDEX_ACTIONS, "Resource": format!("{arn}/index/*"),
        }),
    ];
    if stream {
        // Any stream of this table: a stream turned off and on again gets a new ARN.
        statements.push(serde_json::json!({
            "Sid": "ReadStream", "Effect": "Allow", "Action": STREAM_ACTIONS, "Resource": format!("{arn}/stream/*"),
        }));
    }
    serde_json::json!({ "Version": "2012-10-17", "Statement": statements }).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_policy_names_only_this_table_its_indexes_and_its_stream() {
        let arn = "arn:aws:dynamodb:us-east-1:123456789012:table/oms-dynamodb-orders-prod";
        let p: serde_json::Value = serde_json::from_str(&workload(arn, true)).expect("JSON");
        let resources: Vec<&str> = p["Statement"]
            .as_array()
            .expect("statements")
            .iter()
            .map(|s| s["Resource"].as_str().expect("one"))
            .collect();
        assert_eq!(resources, [arn.to_string(), format!("{arn}/index/*"), format!("{arn}/stream/*")]);
        let actions = p.to_string();
        for banned in ["DeleteTable", "UpdateTable", "CreateTable", "dynamodb:*", "\"*\""] {
            assert!(!actions.contains(banned), "{banned} in {actions}");
        }
        let without: serde_json::Value = serde_json::from_str(&workload(arn, false)).expect("JSON");
        assert_eq!(without["Statement"].as_array().map(Vec::len), Some(2));
    }
}
