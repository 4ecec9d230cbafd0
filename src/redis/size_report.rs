//! `oms-data-operator size`: the seed's two capacity tables (memory estimate, monthly cost per
//! environment) for a workload, with the cheapest node type that holds it. Pure: the command only
//! parses its input and prints what this returns.

use super::node_types;
use super::presets::preset;
use super::sizing::{self, Config, Workload};
use super::spec::{Engine, Environment, OmsRedis};
use serde::Serialize;

/// One environment's configuration, fit and bill.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct EnvironmentLine {
    pub environment: &'static str,
    pub node_type: &'static str,
    pub nodes: u32,
    pub fit: sizing::Fit,
    /// `None` when the node type has no price.
    pub cost: Option<sizing::Cost>,
    /// The cheapest node type that holds the workload here, and its cost for as many nodes.
    pub recommended_node_type: Option<&'static str>,
    pub recommended_monthly_usd: Option<f64>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Report {
    pub engine: &'static str,
    pub headroom_percent: u8,
    pub redis_overhead_percent: u32,
    pub reserved_memory_percent: u32,
    pub families: Vec<sizing::KeyFamily>,
    pub data_bytes: u64,
    pub memory_bytes: u64,
    pub environments: Vec<EnvironmentLine>,
    pub prices: &'static str,
}

/// The report for a workload, over the given environments' configurations (a manifest's own, or
/// the presets).
pub fn report(workload: &Workload, headroom: u8, engine: Engine, configs: &[(&'static str, Config)]) -> Report {
    let environments = configs
        .iter()
        .map(|(env, c)| {
            let best = sizing::cheapest_fit(workload, engine, c.prod, headroom);
            EnvironmentLine {
                environment: env,
                node_type: c.node.name,
                nodes: c.nodes,
                fit: sizing::fit(workload, c.node, headroom),
                cost: sizing::monthly_cost(c.node, c.nodes, engine, c.retention_days, workload.data_bytes()),
                recommended_node_type: best.map(|(n, _)| n.name),
                recommended_monthly_usd: best.map(|(_, p)| p * f64::from(c.nodes)),
            }
        })
        .collect();
    Report {
        engine: engine.as_str(),
        headroom_percent: headroom,
        redis_overhead_percent: (sizing::REDIS_OVERHEAD * 100.0).round() as u32,
        reserved_memory_percent: (sizing::RESERVED_MEMORY * 100.0).round() as u32,
        families: workload.families.clone(),
        data_bytes: workload.data_bytes(),
        memory_bytes: workload.memory_bytes(),
        environments,
        prices: node_types::SEED_PRICES,
    }
}

/// The seed's three environments, each at its preset.
pub fn presets(engine: Engine) -> Vec<(&'static str, Config)> {
    [Environment::Dev, Environment::Staging, Environment::Prod]
        .into_iter()
        .filter_map(|env| {
            let p = preset(env);
            let node = node_types::find(p.node_type)?;
            let config = Config {
                node,
                nodes: p.num_cache_nodes.max(1) as u32,
                engine,
                retention_days: p.snapshot_retention_limit.max(0) as u32,
                prod: env == Environment::Prod,
            };
            Some((env.as_str(), config))
        })
        .collect()
}

/// What `size` sizes: a workload, its headroom, the engine, and the configurations to fit it on.
pub type Sizing = (Workload, u8, Engine, Vec<(&'static str, Config)>);

/// A manifest's workload and configuration, as the operator would size it.
pub fn from_manifest(yaml: &str) -> Result<Sizing, String> {
    let r: OmsRedis = serde_saphyr::from_str(yaml).map_err(|e| format!("not an OmsRedis manifest: {e}"))?;
    let w = r.spec.workload.as_ref().ok_or("the manifest has no spec.workload")?;
    let (workload, headroom) = sizing::from_spec(w);
    let parameters = r.parameters().map_err(|e| e.to_string())?;
    let config = Config::from_parameters(&parameters).ok_or("the manifest's node type is not in the catalogue")?;
    Ok((workload, headroom, r.spec.engine, vec![(r.spec.environment.as_str(), config)]))
}

/// The report as the seed's tables.
pub fn render(r: &Report) -> String {
    let mut out = String::new();
    out.push_str(&format!(
        "Memory estimate ({} engine; Redis needs ~{}% over the data; ElastiCache reserves {}% of a node's maxmemory)\n\n",
        r.engine, r.redis_overhead_percent, r.reserved_memory_percent
    ));
    let mut rows = vec![vec!["family".to_string(), "key".into(), "keys".into(), "bytes/key".into(), "data".into()]];
    for f in &r.families {
        rows.push(vec![
            f.name.clone(),
            f.key.clone(),
            thousands(f.count),
            thousands(f.bytes_per_key),
            sizing::human(f.bytes()),
        ]);
    }
    rows.push(vec!["total".into(), String::new(), String::new(), String::new(), sizing::human(r.data_bytes)]);
    rows.push(vec!["in Redis".into(), String::new(), String::new(), String::new(), sizing::human(r.memory_bytes)]);
    out.push_str(&table(&rows));
    out.push('\n');
    let mut rows = vec![vec![
        "environment".to_string(),
        "node type".into(),
        "usable/node".into(),
        "free".into(),
        "headroom".into(),
        format!("fits ({}% headroom)", r.headroom_percent),
    ]];
    for e in &r.environments {
        rows.push(vec![
            e.environment.into(),
            e.node_type.into(),
            sizing::human_memory(e.fit.usable_bytes),
            sizing::human_memory(e.fit.free_bytes),
            format!("{:.0}%", e.fit.headroom_percent),
            if e.fit.fits { "yes".into() } else { "NO".into() },
        ]);
    }
    out.push_str(&table(&rows));
    out.push_str(&format!("\nMonthly cost (on-demand; prices: {})\n\n", r.prices));
    let mut rows = vec![vec![
        "environment".to_string(),
        "config".into(),
        "nodes".into(),
        "backups".into(),
        "total".into(),
        "cheapest that fits".into(),
    ]];
    for e in &r.environments {
        let (nodes, backups, total) = match &e.cost {
            Some(c) => (sizing::usd(c.nodes_usd), sizing::usd(c.backup_usd), sizing::usd(c.total_usd)),
            None => ("no price".into(), "-".into(), "-".into()),
        };
        let best = match (e.recommended_node_type, e.recommended_monthly_usd) {
            (Some(n), Some(usd)) => format!("{n} x{} {}", e.nodes, sizing::usd(usd)),
            _ => "none priced".into(),
        };
        rows.push(vec![e.environment.into(), format!("{} x{}", e.node_type, e.nodes), nodes, backups, total, best]);
    }
    out.push_str(&table(&rows));
    out
}

fn thousands(n: u64) -> String {
    let s = n.to_string();
    let mut out = String::new();
    for (i, c) in s.chars().enumerate() {
        if i > 0 && (s.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// Columns padded to their widest cell, the first left-aligned and the rest too (text and figures
/// mix in them).
fn table(rows: &[Vec<String>]) -> String {
    let columns = rows.iter().map(Vec::len).max().unwrap_or(0);
    let widths: Vec<usize> = (0..columns)
        .map(|c| rows.iter().filter_map(|r| r.get(c)).map(|s| s.chars().count()).max().unwrap_or(0))
        .collect();
    rows.iter()
        .map(|r| {
            let cells: Vec<String> = r.iter().enumerate().map(|(c, s)| format!("{s:<w$}", w = widths[c])).collect();
            format!("{}\n", cells.join("  ").trim_end())
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_seeds_workloads_print_the_seeds_tables() {
        let r = report(&Workload::seed_dev(), 20, Engine::Redis, &presets(Engine::Redis));
        let text = render(&r);
        for says in
            ["orders", "order:{exchange}:{exchangeOrderId}", "1,000", "2.0 MB", "total", "2.5 MB", "in Redis", "3.5 MB"]
        {
            assert!(text.contains(says), "{says:?} not in:\n{text}");
        }
        let cost = |env: &str| {
            r.environments.iter().find(|e| e.environment == env).and_then(|e| e.cost.clone()).expect("priced")
        };
        assert_eq!((cost("dev").nodes_usd, cost("staging").nodes_usd, cost("prod").nodes_usd), (11.0, 44.0, 330.0));
        assert!(text.contains("cache.t4g.micro x1") && text.contains("$11") && text.contains("$330"), "{text}");
        let prod = r.environments.iter().find(|e| e.environment == "prod").expect("prod");
        assert_eq!(prod.recommended_node_type, Some("cache.m7g.large"), "prod stays off burstable types");
        let json = serde_json::to_value(&r).expect("json");
        assert_eq!(json["environments"][0]["cost"]["nodesUsd"], 11.0);
    }

    #[test]
    fn a_manifest_is_sized_as_the_operator_sizes_it() {
        let yaml = "apiVersion: data.oms-spider.io/v1alpha1\nkind: OmsRedis\nmetadata: {name: oms-redis-prod}\nspec:\n  environment: prod\n  vpcStackName: oms-vpc\n  workload: {orders: 50000, positions: 5000, instruments: 2000, idempotencyKeys: 10000, headroomPercent: 30}\n";
        let (workload, headroom, engine, configs) = from_manifest(yaml).expect("sized");
        assert_eq!((workload.data_bytes(), headroom, engine), (107_500_000, 30, Engine::Redis));
        assert_eq!((configs[0].0, configs[0].1.node.name, configs[0].1.nodes), ("prod", "cache.m7g.large", 3));
        assert!(from_manifest("kind: OmsRedis\nspec: {environment: dev, vpcStackName: v}\n").is_err());
        let example = std::fs::read_to_string(crate::repo_file("examples/prod.yaml")).expect("example");
        let (workload, _, _, _) = from_manifest(&example).expect("the README's `size -f examples/prod.yaml`");
        assert_eq!(workload, Workload::seed_prod());
    }

    #[test]
    fn the_readmes_size_output_is_what_the_command_prints() {
        let readme = std::fs::read_to_string(crate::repo_file("README.md")).expect("README");
        for workload in [Workload::seed_dev(), Workload::seed_prod()] {
            let text =
                render(&report(&workload, sizing::DEFAULT_HEADROOM_PERCENT, Engine::Redis, &presets(Engine::Redis)));
            assert!(
                readme.contains(text.trim_end()),
                "README's \"Sizing and cost\" differs from `size`; paste:\n{text}"
            );
        }
    }
}
