//! The ElastiCache Redis CloudFormation template, embedded in the binary, and the one place in
//! Rust that names its parameters and outputs. A unit test holds these names to the JSON file, so
//! the two cannot drift apart.

/// The template body, exactly as shipped in `templates/data/elasticache-redis.json`.
pub const TEMPLATE_BODY: &str = include_str!("../../templates/data/elasticache-redis.json");

/// The template parsed, once per process (a unit test holds it to be JSON; were it not, this is
/// `null` and nothing is read from it).
pub fn parsed() -> &'static serde_json::Value {
    static PARSED: std::sync::OnceLock<serde_json::Value> = std::sync::OnceLock::new();
    PARSED.get_or_init(|| serde_json::from_str(TEMPLATE_BODY).unwrap_or(serde_json::Value::Null))
}

/// Parameter keys of the template.
pub mod param {
    pub const ENVIRONMENT: &str = "Environment";
    pub const VPC_STACK_NAME: &str = "VPCStackName";
    pub const ENGINE: &str = "Engine";
    pub const NODE_TYPE: &str = "NodeType";
    pub const NUM_CACHE_NODES: &str = "NumCacheNodes";
    pub const ENGINE_VERSION: &str = "EngineVersion";
    pub const SNAPSHOT_RETENTION_LIMIT: &str = "SnapshotRetentionLimit";
    pub const AUTOMATIC_FAILOVER_ENABLED: &str = "AutomaticFailoverEnabled";
    pub const MAINTENANCE_WINDOW: &str = "MaintenanceWindow";
    /// NoEcho; sent only with CreateStack, kept as it is by every update.
    pub const AUTH_TOKEN: &str = "AuthToken";
    pub const SNAPSHOT_WINDOW: &str = "SnapshotWindow";
    /// The snapshot a new group starts from; set only at create (a change replaces the group).
    pub const SNAPSHOT_NAME: &str = "SnapshotName";
    pub const ALARMS_IN_ALL_ENVIRONMENTS: &str = "AlarmsInAllEnvironments";
    pub const ALARM_TOPIC_ARN: &str = "AlarmTopicArn";
    pub const CPU_ALARM_THRESHOLD: &str = "CpuAlarmThreshold";
    pub const MEMORY_ALARM_THRESHOLD: &str = "MemoryAlarmThreshold";
    pub const CACHE_HIT_RATE_ALARM_THRESHOLD: &str = "CacheHitRateAlarmThreshold";
    pub const EVICTIONS_ALARM_THRESHOLD: &str = "EvictionsAlarmThreshold";

    /// Every parameter: the seed's, in the order its commands pass them, then the ones added since
    /// (each with a default that keeps the seed's commands working).
    pub const ALL: [&str; 18] = [
        ENVIRONMENT,
        VPC_STACK_NAME,
        NODE_TYPE,
        NUM_CACHE_NODES,
        ENGINE_VERSION,
        SNAPSHOT_RETENTION_LIMIT,
        AUTOMATIC_FAILOVER_ENABLED,
        ENGINE,
        MAINTENANCE_WINDOW,
        SNAPSHOT_WINDOW,
        ALARMS_IN_ALL_ENVIRONMENTS,
        ALARM_TOPIC_ARN,
        CPU_ALARM_THRESHOLD,
        MEMORY_ALARM_THRESHOLD,
        CACHE_HIT_RATE_ALARM_THRESHOLD,
        EVICTIONS_ALARM_THRESHOLD,
        AUTH_TOKEN,
        SNAPSHOT_NAME,
    ];
}

/// Output keys of the template; each is exported as `<stack name>-<output key>`.
pub mod output {
    pub const ENDPOINT: &str = "RedisEndpoint";
    pub const PORT: &str = "RedisPort";
    pub const READER_ENDPOINT: &str = "RedisReaderEndpoint";
    pub const SECURITY_GROUP_ID: &str = "RedisSecurityGroupId";
    pub const REPLICATION_GROUP_ID: &str = "RedisReplicationGroupId";

    pub const ALL: [&str; 5] = [ENDPOINT, PORT, READER_ENDPOINT, SECURITY_GROUP_ID, REPLICATION_GROUP_ID];
}

/// The metrics of the seed's four alarms; each alarm is named `<stack name>-<metric>`.
pub const ALARM_METRICS: [&str; 4] = ["CPUUtilization", "DatabaseMemoryUsagePercentage", "CacheHitRate", "Evictions"];

/// The names the template gives the alarms of a stack.
pub fn alarm_names(stack_name: &str) -> Vec<String> {
    ALARM_METRICS.iter().map(|m| format!("{stack_name}-{m}")).collect()
}

/// The VPC stack's exports this template imports, each as `<VPCStackName>-<name>`.
pub const VPC_IMPORTS: [&str; 3] = ["VpcId", "VpcCidr", "PrivateSubnetIds"];

/// The export name CloudFormation gives an output of this template.
pub fn export_name(stack_name: &str, output_key: &str) -> String {
    format!("{stack_name}-{output_key}")
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::Value;
    use std::collections::BTreeSet;

    fn template() -> Value {
        serde_json::from_str(TEMPLATE_BODY).expect("the embedded template is JSON")
    }

    fn keys(v: &Value, section: &str) -> BTreeSet<String> {
        v[section].as_object().unwrap_or_else(|| panic!("template has no {section}")).keys().cloned().collect()
    }

    #[test]
    fn parameter_names_match_the_template() {
        let expected: BTreeSet<String> = param::ALL.iter().map(|s| s.to_string()).collect();
        assert_eq!(keys(&template(), "Parameters"), expected);
    }

    #[test]
    fn output_names_match_the_template_and_are_exported_under_the_stack_name() {
        let t = template();
        let expected: BTreeSet<String> = output::ALL.iter().map(|s| s.to_string()).collect();
        assert_eq!(keys(&t, "Outputs"), expected);
        for name in output::ALL {
            let export = &t["Outputs"][name]["Export"]["Name"]["Fn::Sub"];
            assert_eq!(export.as_str(), Some(export_name("${AWS::StackName}", name).as_str()), "export of {name}");
        }
    }

    fn imports(v: &Value, found: &mut BTreeSet<String>) {
        match v {
            Value::Object(m) => {
                if let Some(sub) = m.get("Fn::ImportValue").and_then(|i| i["Fn::Sub"].as_str()) {
                    found.insert(sub.to_string());
                }
                m.values().for_each(|x| imports(x, found));
            }
            Value::Array(a) => a.iter().for_each(|x| imports(x, found)),
            _ => {}
        }
    }

    #[test]
    fn the_vpc_imports_are_the_ones_messages_name() {
        let mut found = BTreeSet::new();
        imports(&template(), &mut found);
        let expected: BTreeSet<String> = VPC_IMPORTS.iter().map(|o| export_name("${VPCStackName}", o)).collect();
        assert_eq!(found, expected);
    }

    #[test]
    fn a_replacement_of_the_replication_group_leaves_a_snapshot() {
        let group = &template()["Resources"]["RedisReplicationGroup"];
        assert_eq!(group["UpdateReplacePolicy"], "Snapshot");
    }

    #[test]
    fn every_engine_version_maps_to_its_own_parameter_group_family() {
        use crate::redis::{Engine, EngineVersion};
        let t = template();
        let versions: Vec<&str> = t["Parameters"][param::ENGINE_VERSION]["AllowedValues"]
            .as_array()
            .expect("EngineVersion has AllowedValues")
            .iter()
            .filter_map(|v| v.as_str())
            .collect();
        assert_eq!(versions, EngineVersion::ALL.map(|v| v.as_str()), "the template lists the spec's versions");
        for v in EngineVersion::ALL {
            assert_eq!(
                t["Mappings"]["EngineFamily"][v.as_str()]["Family"].as_str(),
                Some(v.family()),
                "family for engine {}",
                v.as_str()
            );
        }
        // The parameter group takes its family from that mapping, never a literal.
        let family = &t["Resources"]["RedisParameterGroup"]["Properties"]["CacheParameterGroupFamily"];
        assert_eq!(family["Fn::FindInMap"][0], "EngineFamily");
        assert_eq!(family["Fn::FindInMap"][1]["Ref"], param::ENGINE_VERSION);
        // The group runs the engine parameter, which defaults to the seed's, and a rule keeps
        // each version with its engine.
        assert_eq!(t["Resources"]["RedisReplicationGroup"]["Properties"]["Engine"]["Ref"], param::ENGINE);
        assert_eq!(t["Parameters"][param::ENGINE]["Default"], Engine::Redis.as_str());
        let valkey: Vec<&str> =
            EngineVersion::ALL.iter().filter(|v| v.engine() == Engine::Valkey).map(|v| v.as_str()).collect();
        let rule = &t["Rules"]["ValkeyNeedsValkeyVersion"]["Assertions"][0]["Assert"]["Fn::Contains"];
        assert_eq!(rule[0].as_array().map(|a| a.iter().filter_map(|v| v.as_str()).collect::<Vec<_>>()), Some(valkey));
    }

    #[test]
    fn node_type_pattern_accepts_the_seed_types_and_refuses_bogus_ones() {
        let t = template();
        let pattern =
            t["Parameters"][param::NODE_TYPE]["AllowedPattern"].as_str().expect("NodeType has an AllowedPattern");
        assert_eq!(pattern, crate::redis::node_types::allowed_pattern(), "the template lists the node-type table");
        let re = regex::Regex::new(pattern).expect("pattern compiles");
        for t in crate::redis::node_types::NODE_TYPES {
            assert!(re.is_match(t.name), "{} must be accepted", t.name);
        }
        // The Valkey-only types are held to engine valkey by a rule, for the seed's commands too.
        let only = &t["Rules"]["ValkeyOnlyNodeTypes"]["RuleCondition"]["Fn::Contains"][0];
        let listed: Vec<&str> = only.as_array().expect("a list").iter().filter_map(|v| v.as_str()).collect();
        assert_eq!(listed, crate::redis::node_types::valkey_only_names().collect::<Vec<_>>());
        for (good, _, _) in crate::redis::node_types::SEED_NODE_TYPES {
            assert!(re.is_match(good), "{good} must be accepted");
        }
        for bad in [
            "cache.t4g.huge",
            "cache.x9.large",
            "t4g.micro",
            "cache.m7g.large ",
            "cache.t4g.micro.extra",
            "cache.m7g.micro",
            "cache.t2.micro",
            "cache.r7g.24xlarge",
            "",
        ] {
            assert!(!re.is_match(bad), "{bad:?} must be refused");
        }
    }

    #[test]
    fn parameter_group_has_the_seed_settings() {
        let t = template();
        let props = &t["Resources"]["RedisParameterGroup"]["Properties"]["Properties"];
        assert_eq!(props["maxmemory-policy"], "allkeys-lru");
        assert_eq!(props["timeout"], "300");
        assert_eq!(props["tcp-keepalive"], "300");
        assert_eq!(props["maxmemory-samples"], "5");
    }

    fn alarms(t: &Value) -> Vec<&Value> {
        t["Resources"]
            .as_object()
            .expect("resources")
            .values()
            .filter(|r| r["Type"] == "AWS::CloudWatch::Alarm")
            .collect()
    }

    #[test]
    fn alarms_are_named_after_their_metric_and_notify_the_topic_when_one_is_given() {
        let t = template();
        let alarms = alarms(&t);
        let names: BTreeSet<String> =
            alarms.iter().filter_map(|a| a["Properties"]["AlarmName"]["Fn::Sub"].as_str().map(String::from)).collect();
        assert_eq!(names, alarm_names("${AWS::StackName}").into_iter().collect::<BTreeSet<_>>());
        let topic = t["Parameters"][param::ALARM_TOPIC_ARN]["AllowedPattern"].as_str().expect("a pattern");
        assert_eq!(topic, format!("^$|{}", crate::redis::spec::SNS_TOPIC_ARN_PATTERN), "the spec's pattern, or empty");
        for a in alarms {
            assert_eq!(a["Condition"], "CreateAlarms");
            for actions in ["AlarmActions", "OKActions"] {
                assert_eq!(a["Properties"][actions]["Fn::If"][0], "HasAlarmTopic");
                assert_eq!(a["Properties"][actions]["Fn::If"][1][0]["Ref"], param::ALARM_TOPIC_ARN);
            }
        }
    }

    #[test]
    fn prod_alarms_cover_the_seed_thresholds() {
        let t = template();
        let alarms = alarms(&t);
        let find = |metric: &str| {
            alarms
                .iter()
                .find(|a| a["Properties"]["MetricName"] == metric)
                .unwrap_or_else(|| panic!("no alarm on {metric}"))
        };
        let cases = [
            ("CPUUtilization", "GreaterThanThreshold", 75),
            ("DatabaseMemoryUsagePercentage", "GreaterThanThreshold", 85),
            ("CacheHitRate", "LessThanThreshold", 80),
            ("Evictions", "GreaterThanThreshold", 1000),
        ];
        for (metric, op, threshold) in cases {
            let a = find(metric);
            assert_eq!(a["Condition"], "CreateAlarms", "{metric} alarm: prod, or asked for");
            assert_eq!(a["Properties"]["ComparisonOperator"], op, "{metric}");
            let param = a["Properties"]["Threshold"]["Ref"].as_str().expect("a threshold parameter");
            assert_eq!(t["Parameters"][param]["Default"], threshold.to_string(), "{metric}: the seed's threshold");
        }
        // Evictions are counted per minute.
        let ev = find("Evictions");
        assert_eq!(ev["Properties"]["Period"], 60);
        assert_eq!(ev["Properties"]["Statistic"], "Sum");
    }
}
