//! The DynamoDB table's CloudFormation template: the file as shipped (one table, every setting a
//! parameter), and the same template with the spec's global secondary indexes written in, since
//! CloudFormation parameters cannot hold a list of indexes. This is the one place in Rust that
//! names the template's parameters and outputs; a unit test holds the names to the JSON file.

use super::spec::{GlobalSecondaryIndex, KeyAttribute, ProjectionType};
use serde_json::{Value, json};
use std::borrow::Cow;

/// The template body, exactly as shipped in `templates/data/dynamodb-table.json`.
pub const TEMPLATE_BODY: &str = include_str!("../../templates/data/dynamodb-table.json");

/// The template parsed, once per process (`null` if it were not JSON; a unit test holds it to be).
pub fn parsed() -> &'static Value {
    static PARSED: std::sync::OnceLock<Value> = std::sync::OnceLock::new();
    PARSED.get_or_init(|| serde_json::from_str(TEMPLATE_BODY).unwrap_or(Value::Null))
}

/// The table's logical id.
pub const TABLE: &str = "Table";

pub mod param {
    pub const ENVIRONMENT: &str = "Environment";
    pub const PARTITION_KEY_NAME: &str = "PartitionKeyName";
    pub const PARTITION_KEY_TYPE: &str = "PartitionKeyType";
    pub const SORT_KEY_NAME: &str = "SortKeyName";
    pub const SORT_KEY_TYPE: &str = "SortKeyType";
    pub const BILLING_MODE: &str = "BillingMode";
    pub const READ_CAPACITY_UNITS: &str = "ReadCapacityUnits";
    pub const WRITE_CAPACITY_UNITS: &str = "WriteCapacityUnits";
    pub const POINT_IN_TIME_RECOVERY: &str = "PointInTimeRecovery";
    pub const DELETION_PROTECTION: &str = "DeletionProtection";
    pub const KMS_ENCRYPTION: &str = "KmsEncryption";
    pub const TABLE_CLASS: &str = "TableClass";
    pub const TIME_TO_LIVE_ATTRIBUTE: &str = "TimeToLiveAttribute";
    pub const STREAM_VIEW_TYPE: &str = "StreamViewType";
    /// `<index names>@<digest>` of the indexes written into the template: it makes an index change a
    /// parameter change, which the lifecycle compares with what was applied.
    pub const GLOBAL_SECONDARY_INDEXES: &str = "GlobalSecondaryIndexes";

    pub const ALL: [&str; 15] = [
        ENVIRONMENT,
        PARTITION_KEY_NAME,
        PARTITION_KEY_TYPE,
        SORT_KEY_NAME,
        SORT_KEY_TYPE,
        BILLING_MODE,
        READ_CAPACITY_UNITS,
        WRITE_CAPACITY_UNITS,
        POINT_IN_TIME_RECOVERY,
        DELETION_PROTECTION,
        KMS_ENCRYPTION,
        TABLE_CLASS,
        TIME_TO_LIVE_ATTRIBUTE,
        STREAM_VIEW_TYPE,
        GLOBAL_SECONDARY_INDEXES,
    ];
}

/// Output keys; each but GlobalSecondaryIndexes is exported as `<stack name>-<output key>`.
pub mod output {
    pub const TABLE_NAME: &str = "TableName";
    pub const TABLE_ARN: &str = "TableArn";
    /// Only when the table has a stream.
    pub const STREAM_ARN: &str = "StreamArn";
    pub const GLOBAL_SECONDARY_INDEXES: &str = "GlobalSecondaryIndexes";

    pub const ALL: [&str; 4] = [TABLE_NAME, TABLE_ARN, STREAM_ARN, GLOBAL_SECONDARY_INDEXES];
    pub const EXPORTED: [&str; 3] = [TABLE_NAME, TABLE_ARN, STREAM_ARN];
}

/// The value of the GlobalSecondaryIndexes parameter for these indexes: their names and a digest of
/// everything the template says of them. Empty for none.
pub fn indexes_parameter(indexes: &[GlobalSecondaryIndex], provisioned: bool) -> String {
    if indexes.is_empty() {
        return String::new();
    }
    use sha2::Digest;
    let declared = Value::Array(indexes.iter().map(|i| index(i, provisioned)).collect());
    let digest = sha2::Sha256::digest(declared.to_string().as_bytes());
    let hex: String = digest.iter().take(6).map(|b| format!("{b:02x}")).collect();
    let names: Vec<&str> = indexes.iter().map(|i| i.index_name.as_str()).collect();
    format!("{}@{hex}", names.join(","))
}

fn key_schema(partition: &KeyAttribute, sort: Option<&KeyAttribute>) -> Value {
    let mut keys = vec![json!({ "AttributeName": partition.name, "KeyType": "HASH" })];
    keys.extend(sort.map(|s| json!({ "AttributeName": s.name, "KeyType": "RANGE" })));
    Value::Array(keys)
}

/// One index as AWS::DynamoDB::Table's GlobalSecondaryIndexes takes it. Under PROVISIONED an index
/// without its own capacity takes the table's parameters.
fn index(i: &GlobalSecondaryIndex, provisioned: bool) -> Value {
    let projection_type = i.projection.as_ref().map_or(ProjectionType::ALL, |p| p.type_);
    let mut projection = json!({ "ProjectionType": projection_type.as_str() });
    if let Some(attrs) = i.projection.as_ref().and_then(|p| p.non_key_attributes.as_ref()) {
        projection["NonKeyAttributes"] = Value::Array(attrs.iter().map(|a| Value::String(a.0.clone())).collect());
    }
    let mut out = json!({
        "IndexName": i.index_name,
        "KeySchema": key_schema(&i.partition_key, i.sort_key.as_ref()),
        "Projection": projection,
    });
    if provisioned {
        out["ProvisionedThroughput"] = match &i.provisioned_throughput {
            Some(t) => {
                json!({ "ReadCapacityUnits": t.read_capacity_units, "WriteCapacityUnits": t.write_capacity_units })
            }
            None => json!({
                "ReadCapacityUnits": { "Ref": super::template::param::READ_CAPACITY_UNITS },
                "WriteCapacityUnits": { "Ref": super::template::param::WRITE_CAPACITY_UNITS },
            }),
        };
    }
    out
}

/// The template for a table with these keys and indexes: the file as shipped when there are no
/// indexes, else the file with the indexes and their key attributes written into the table.
pub fn for_spec(
    partition: &KeyAttribute,
    sort: Option<&KeyAttribute>,
    indexes: &[GlobalSecondaryIndex],
    provisioned: bool,
) -> Cow<'static, str> {
    if indexes.is_empty() {
        return Cow::Borrowed(TEMPLATE_BODY);
    }
    let mut template = parsed().clone();
    let properties = &mut template["Resources"][TABLE]["Properties"];
    // The table's own keys are defined by the file (from parameters); an index's other key
    // attributes are added once each, after them, in the order the indexes name them.
    let mut extra: Vec<&KeyAttribute> = Vec::new();
    for key in indexes.iter().flat_map(|i| std::iter::once(&i.partition_key).chain(i.sort_key.as_ref())) {
        let table_key = key.name == partition.name || sort.is_some_and(|s| s.name == key.name);
        if !table_key && !extra.iter().any(|e| e.name == key.name) {
            extra.push(key);
        }
    }
    let definitions: Vec<Value> =
        extra.iter().map(|k| json!({ "AttributeName": k.name, "AttributeType": k.type_.as_str() })).collect();
    // AttributeDefinitions is {"Fn::If": [HasSortKey, [pk, sk], [pk]]} in the file.
    if let Some(branches) = properties["AttributeDefinitions"]["Fn::If"].as_array_mut() {
        for branch in branches.iter_mut().skip(1) {
            if let Some(list) = branch.as_array_mut() {
                list.extend(definitions.iter().cloned());
            }
        }
    }
    properties["GlobalSecondaryIndexes"] = Value::Array(indexes.iter().map(|i| index(i, provisioned)).collect());
    Cow::Owned(serde_json::to_string_pretty(&template).unwrap_or_else(|_| TEMPLATE_BODY.to_string()) + "\n")
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeSet;

    fn keys(v: &Value, section: &str) -> BTreeSet<String> {
        v[section].as_object().unwrap_or_else(|| panic!("template has no {section}")).keys().cloned().collect()
    }

    #[test]
    fn parameter_and_output_names_match_the_template() {
        let t: Value = serde_json::from_str(TEMPLATE_BODY).expect("the embedded template is JSON");
        assert_eq!(keys(&t, "Parameters"), param::ALL.iter().map(|s| s.to_string()).collect());
        assert_eq!(keys(&t, "Outputs"), output::ALL.iter().map(|s| s.to_string()).collect());
        for name in output::EXPORTED {
            let export = &t["Outputs"][name]["Export"]["Name"]["Fn::Sub"];
            assert_eq!(export.as_str(), Some(format!("${{AWS::StackName}}-{name}").as_str()), "export of {name}");
        }
        assert_eq!(t["Resources"][TABLE]["Type"], "AWS::DynamoDB::Table");
    }

    fn key(name: &str, t: &str) -> KeyAttribute {
        serde_json::from_value(json!({ "name": name, "type": t })).expect("a key")
    }

    fn gsi(v: Value) -> GlobalSecondaryIndex {
        serde_json::from_value(v).expect("an index")
    }

    #[test]
    fn no_indexes_is_the_file_as_shipped() {
        assert!(matches!(for_spec(&key("pk", "String"), None, &[], false), Cow::Borrowed(TEMPLATE_BODY)));
        assert_eq!(indexes_parameter(&[], false), "");
    }

    #[test]
    fn indexes_are_written_in_with_each_key_attribute_defined_once() {
        let indexes = [
            gsi(json!({ "indexName": "by-client", "partitionKey": { "name": "clientId", "type": "String" },
                        "sortKey": { "name": "createdAt", "type": "Number" } })),
            gsi(json!({ "indexName": "by-symbol", "partitionKey": { "name": "symbol", "type": "String" },
                        "sortKey": { "name": "createdAt", "type": "Number" }, "projection": { "type": "KEYS_ONLY" } })),
            gsi(json!({ "indexName": "by-order", "partitionKey": { "name": "orderId", "type": "String" },
                        "projection": { "type": "INCLUDE", "nonKeyAttributes": ["status"] } })),
        ];
        let body = for_spec(&key("orderId", "String"), Some(&key("seq", "Number")), &indexes, false);
        let t: Value = serde_json::from_str(&body).expect("JSON");
        let props = &t["Resources"][TABLE]["Properties"];
        let with_sort = &props["AttributeDefinitions"]["Fn::If"][1];
        let names: Vec<&str> = with_sort
            .as_array()
            .expect("a list")
            .iter()
            .skip(2)
            .map(|d| d["AttributeName"].as_str().expect("a name"))
            .collect();
        assert_eq!(names, ["clientId", "createdAt", "symbol"], "orderId is the table's own key");
        assert_eq!(props["GlobalSecondaryIndexes"].as_array().map(Vec::len), Some(3));
        assert_eq!(props["GlobalSecondaryIndexes"][2]["Projection"]["NonKeyAttributes"], json!(["status"]));
        assert!(props["GlobalSecondaryIndexes"][0].get("ProvisionedThroughput").is_none());
        // Everything else is the file's.
        let mut shipped = parsed().clone();
        let mut generated = t.clone();
        for v in [&mut shipped, &mut generated] {
            let p = v["Resources"][TABLE]["Properties"].as_object_mut().expect("properties");
            p.remove("AttributeDefinitions");
            p.remove("GlobalSecondaryIndexes");
        }
        assert_eq!(shipped, generated);

        let provisioned: Value =
            serde_json::from_str(&for_spec(&key("orderId", "String"), None, &indexes[..1], true)).expect("JSON");
        let throughput =
            &provisioned["Resources"][TABLE]["Properties"]["GlobalSecondaryIndexes"][0]["ProvisionedThroughput"];
        assert_eq!(throughput["ReadCapacityUnits"], json!({ "Ref": "ReadCapacityUnits" }));
    }

    #[test]
    fn the_indexes_parameter_names_them_and_changes_with_any_of_their_settings() {
        let a = gsi(json!({ "indexName": "by-client", "partitionKey": { "name": "clientId", "type": "String" } }));
        let mut b = a.clone();
        b.projection = serde_json::from_value(json!({ "type": "KEYS_ONLY" })).expect("projection");
        let pa = indexes_parameter(std::slice::from_ref(&a), false);
        assert!(pa.starts_with("by-client@") && pa.len() == "by-client@".len() + 12, "{pa}");
        assert_ne!(pa, indexes_parameter(&[b], false));
        assert_ne!(pa, indexes_parameter(std::slice::from_ref(&a), true), "capacity is part of it");
    }
}
