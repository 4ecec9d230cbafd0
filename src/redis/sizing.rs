//! From the OMS workload to memory, a node type and a monthly bill: the seed's capacity planning
//! (its key families, memory estimates and costs) as arithmetic the status and the `size`
//! command share, so nobody redoes it by hand.
//!
//! The model: each key family takes `count × bytes per key` of data; Redis needs about 40 % more
//! than that (the seed's "Overhead Redis ~40%": key names, encodings, pointers, fragmentation); and
//! ElastiCache keeps 25 % of a node's `maxmemory` for backups and replication (the default
//! `reserved-memory-percent`, AWS "Managing reserved memory",
//! <https://docs.aws.amazon.com/AmazonElastiCache/latest/red-ug/redis-memory-management.html>), so a
//! node's usable memory is 75 % of its `maxmemory`. Every node of a replication group holds all
//! the data (one shard), so the estimate is per node.

use super::node_types::{self, NodeType};
use super::spec::Engine;
use serde::Serialize;

/// Redis's memory over the raw size of the data (the seed).
pub const REDIS_OVERHEAD: f64 = 0.40;
/// The share of `maxmemory` ElastiCache reserves by default (see the module docs).
pub const RESERVED_MEMORY: f64 = 0.25;
/// The headroom a node type must leave, as a share of its usable memory, unless the spec says.
pub const DEFAULT_HEADROOM_PERCENT: u8 = 20;
/// A node type at most this share of the current one's cost is "much cheaper".
pub const MUCH_CHEAPER: f64 = 0.5;
/// Backup storage, per GB-month (the seed: "Backup storage: ~$0.085/GB-month").
pub const BACKUP_USD_PER_GB_MONTH: f64 = 0.085;

/// A family of keys, as the seed lists them.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct KeyFamily {
    pub name: String,
    /// The key pattern, e.g. `order:{exchange}:{exchangeOrderId}`.
    pub key: String,
    pub count: u64,
    pub bytes_per_key: u64,
}

impl KeyFamily {
    /// A family of the user's own (its keys shown as `<name>:…`).
    pub fn custom(name: &str, count: u64, bytes_per_key: u64) -> KeyFamily {
        KeyFamily { name: name.to_string(), key: format!("{name}:…"), count, bytes_per_key }
    }

    pub fn bytes(&self) -> u64 {
        self.count.saturating_mul(self.bytes_per_key)
    }
}

/// The OMS's own families (the seed's "Casos de Uso OMS"). Where the seed gives a range, the size
/// is the one its memory estimates use: orders 2 KB (1,000 orders ≈ 2 MB), instruments 2 KB (200 ≈
/// 400 KB). Leader keys have no size in the seed: a short string, taken as 100 bytes like an
/// idempotency key.
pub const ORDERS: (&str, &str, u64) = ("orders", "order:{exchange}:{exchangeOrderId}", 2_000);
pub const POSITIONS: (&str, &str, u64) = ("positions", "position:{clientId}:{symbol}", 500);
pub const INSTRUMENTS: (&str, &str, u64) = ("instruments", "instrument:{symbol}", 2_000);
pub const IDEMPOTENCY: (&str, &str, u64) = ("idempotencyKeys", "idempotency:{requestId}", 100);
pub const LEADERS: (&str, &str, u64) = ("leaderKeys", "leader:{service}", 100);

/// Expected key counts.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Workload {
    pub families: Vec<KeyFamily>,
}

impl Workload {
    /// The OMS families with these counts (families with no count are left out).
    pub fn oms(orders: u64, positions: u64, instruments: u64, idempotency_keys: u64, leader_keys: u64) -> Self {
        let families = [
            (ORDERS, orders),
            (POSITIONS, positions),
            (INSTRUMENTS, instruments),
            (IDEMPOTENCY, idempotency_keys),
            (LEADERS, leader_keys),
        ]
        .into_iter()
        .filter(|(_, count)| *count > 0)
        .map(|((name, key, bytes), count)| KeyFamily {
            name: name.into(),
            key: key.into(),
            count,
            bytes_per_key: bytes,
        })
        .collect();
        Workload { families }
    }

    /// The seed's dev workload: 1,000 orders, 100 positions, 200 instruments, 500 idempotency keys.
    pub fn seed_dev() -> Self {
        Workload::oms(1_000, 100, 200, 500, 0)
    }

    /// The seed's prod workload: 50,000 orders, 5,000 positions, 2,000 instruments, 10,000
    /// idempotency keys.
    pub fn seed_prod() -> Self {
        Workload::oms(50_000, 5_000, 2_000, 10_000, 0)
    }

    /// The raw size of the data.
    pub fn data_bytes(&self) -> u64 {
        self.families.iter().map(KeyFamily::bytes).sum()
    }

    /// What the data takes in Redis.
    pub fn memory_bytes(&self) -> u64 {
        (self.data_bytes() as f64 * (1.0 + REDIS_OVERHEAD)).round() as u64
    }
}

/// A node's usable memory: its `maxmemory` less what ElastiCache reserves.
pub fn usable_bytes(node: &NodeType) -> u64 {
    (node.maxmemory_bytes as f64 * (1.0 - RESERVED_MEMORY)).round() as u64
}

/// How a workload sits on a node type.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Fit {
    pub node_type: &'static str,
    pub usable_bytes: u64,
    pub memory_bytes: u64,
    /// Usable memory left after the data (0 when it does not fit at all).
    pub free_bytes: u64,
    /// The free share of usable memory, in percent (negative when the data does not fit).
    pub headroom_percent: f64,
    /// Whether it leaves at least the wanted headroom.
    pub fits: bool,
}

pub fn fit(workload: &Workload, node: &NodeType, headroom_percent: u8) -> Fit {
    let usable = usable_bytes(node);
    let memory = workload.memory_bytes();
    let headroom = if usable == 0 { -100.0 } else { (usable as f64 - memory as f64) / usable as f64 * 100.0 };
    Fit {
        node_type: node.name,
        usable_bytes: usable,
        memory_bytes: memory,
        free_bytes: usable.saturating_sub(memory),
        headroom_percent: headroom,
        fits: headroom >= f64::from(headroom_percent),
    }
}

/// A monthly bill of a configuration, in US dollars.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Cost {
    pub node_type: &'static str,
    pub nodes: u32,
    pub nodes_usd: f64,
    pub backup_usd: f64,
    pub total_usd: f64,
}

/// The monthly cost of `nodes` nodes of `node` with `engine`, plus the backups kept
/// (`retention_days` daily snapshots of the data); `None` when the catalogue has no price.
pub fn monthly_cost(node: &NodeType, nodes: u32, engine: Engine, retention_days: u32, data_bytes: u64) -> Option<Cost> {
    let per_node = node_types::monthly_price(node.name, engine)?;
    let nodes_usd = per_node * f64::from(nodes);
    let backup_usd = f64::from(retention_days) * data_bytes as f64 / 1e9 * BACKUP_USD_PER_GB_MONTH;
    Some(Cost { node_type: node.name, nodes, nodes_usd, backup_usd, total_usd: nodes_usd + backup_usd })
}

/// The cheapest priced node type that holds the workload with the wanted headroom, for this engine
/// and environment (prod is never offered a burstable type: the seed runs prod on m7g and r7g, and
/// burstable types throttle when their CPU credits run out). Ties go to the smaller memory.
pub fn cheapest_fit(
    workload: &Workload,
    engine: Engine,
    prod: bool,
    headroom_percent: u8,
) -> Option<(&'static NodeType, f64)> {
    node_types::NODE_TYPES
        .iter()
        .filter(|n| engine == Engine::Valkey || !n.valkey_only)
        .filter(|n| !(prod && is_burstable(n)))
        .filter(|n| fit(workload, n, headroom_percent).fits)
        .filter_map(|n| Some((n, node_types::monthly_price(n.name, engine)?)))
        .min_by(|a, b| a.1.total_cmp(&b.1).then(a.0.maxmemory_bytes.cmp(&b.0.maxmemory_bytes)))
}

/// T3 and T4g: burstable, CPU credits.
pub fn is_burstable(node: &NodeType) -> bool {
    node.family.starts_with('t')
}

/// The workload a spec declares, and the headroom it wants.
pub fn from_spec(spec: &super::spec::WorkloadSpec) -> (Workload, u8) {
    let n = |v: Option<i64>| v.unwrap_or(0).max(0) as u64;
    let mut workload = Workload::oms(
        n(spec.orders),
        n(spec.positions),
        n(spec.instruments),
        n(spec.idempotency_keys),
        n(spec.leader_keys),
    );
    workload.families.extend(
        spec.families.iter().map(|f| KeyFamily::custom(&f.name, f.count.max(0) as u64, f.bytes_per_key.max(0) as u64)),
    );
    let headroom = spec.headroom_percent.map(|h| h.clamp(0, 90) as u8).unwrap_or(DEFAULT_HEADROOM_PERCENT);
    (workload, headroom)
}

/// A configuration as the stack's parameters give it.
#[derive(Debug, Clone, Copy)]
pub struct Config {
    pub node: &'static NodeType,
    pub nodes: u32,
    pub engine: Engine,
    pub retention_days: u32,
    pub prod: bool,
}

impl Config {
    /// From a stack's parameters (NodeType, NumCacheNodes, Engine, SnapshotRetentionLimit,
    /// Environment); `None` when the node type is not in the catalogue.
    pub fn from_parameters(parameters: &std::collections::BTreeMap<String, String>) -> Option<Config> {
        use super::template::param;
        let get = |k: &str| parameters.get(k).map(String::as_str);
        Some(Config {
            node: node_types::find(get(param::NODE_TYPE)?)?,
            nodes: get(param::NUM_CACHE_NODES).and_then(|v| v.parse().ok()).unwrap_or(1),
            engine: if get(param::ENGINE) == Some("valkey") { Engine::Valkey } else { Engine::Redis },
            retention_days: get(param::SNAPSHOT_RETENTION_LIMIT).and_then(|v| v.parse().ok()).unwrap_or(0),
            prod: get(param::ENVIRONMENT) == Some("prod"),
        })
    }
}

/// Sizing and cost in status, in words and figures a person reads with kubectl.
#[derive(Serialize, serde::Deserialize, Clone, Debug, Default, PartialEq, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct SizingStatus {
    /// Estimated monthly on-demand cost of the configuration as deployed, e.g. "$330".
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub monthly_cost: Option<String>,
    /// What the cost is made of, and where the prices come from.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cost_basis: Option<String>,
    /// The workload's data, and what it takes in Redis (with its overhead).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub estimated_memory: Option<String>,
    /// Memory a node can hold data in (its maxmemory less ElastiCache's reserved 25 %).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub usable_memory_per_node: Option<String>,
    /// The share of usable memory the workload leaves free, e.g. "97%".
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub headroom: Option<String>,
    /// The cheapest node type that holds the workload with the wanted headroom.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub recommended_node_type: Option<String>,
    /// Its monthly cost with the same number of nodes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub recommended_monthly_cost: Option<String>,
}

/// Status for a configuration, with the workload when the spec gives one.
pub fn status(config: &Config, workload: Option<&(Workload, u8)>) -> SizingStatus {
    let data = workload.map(|(w, _)| w.data_bytes()).unwrap_or(0);
    let cost = monthly_cost(config.node, config.nodes, config.engine, config.retention_days, data);
    let mut out = SizingStatus {
        monthly_cost: cost.as_ref().map(|c| usd(c.total_usd)),
        cost_basis: Some(match &cost {
            Some(c) => format!(
                "{} × {} ({}) {} + backups {}; on-demand prices from {}",
                config.nodes,
                config.node.name,
                config.engine.as_str(),
                usd(c.nodes_usd),
                usd(c.backup_usd),
                node_types::SEED_PRICES
            ),
            None => format!("no price is known for {}; only the seed's node types are priced", config.node.name),
        }),
        usable_memory_per_node: Some(human_memory(usable_bytes(config.node))),
        ..SizingStatus::default()
    };
    if let Some((w, headroom)) = workload {
        let f = fit(w, config.node, *headroom);
        out.estimated_memory = Some(format!("{} of data, {} in Redis", human(w.data_bytes()), human(w.memory_bytes())));
        out.headroom = Some(format!("{:.0}%", f.headroom_percent));
        if let Some((best, price)) = cheapest_fit(w, config.engine, config.prod, *headroom) {
            out.recommended_node_type = Some(best.name.to_string());
            out.recommended_monthly_cost = Some(usd(price * f64::from(config.nodes)));
        }
    }
    out
}

/// What the sizing says the user should know: the node type is too small for the workload
/// (Warning), or a type at most half the cost would hold it (informational).
pub fn advisories(config: &Config, workload: &Workload, headroom: u8) -> Vec<crate::stack::Advisory> {
    let f = fit(workload, config.node, headroom);
    let best = cheapest_fit(workload, config.engine, config.prod, headroom);
    let offer = |(n, price): (&NodeType, f64)| {
        format!(
            "{} holds it with that headroom, at {} a month for {} (set spec.nodeType: {})",
            n.name,
            usd(price * f64::from(config.nodes)),
            nodes(config.nodes),
            n.name
        )
    };
    let mut out = Vec::new();
    if !f.fits {
        let instead = best
            .map(offer)
            .unwrap_or_else(|| "no priced node type holds it; spread it over shards or trim the workload".into());
        out.push(crate::stack::Advisory {
            type_: "Undersized",
            reason: "NotEnoughHeadroom",
            message: format!(
                "{} leaves {:.0}% of its usable memory free for spec.workload, less than the {headroom}% wanted: {} of \
                 data takes {} in Redis, and the node holds {}. {instead}. The cache still works; when memory runs \
                 out it evicts keys (allkeys-lru)",
                config.node.name,
                f.headroom_percent.max(0.0),
                human(workload.data_bytes()),
                human(workload.memory_bytes()),
                human_memory(f.usable_bytes)
            ),
            warning: true,
        });
    } else if let (Some((n, price)), Some(current)) = (best, node_types::monthly_price(config.node.name, config.engine))
        && price <= current * MUCH_CHEAPER
    {
        out.push(crate::stack::Advisory {
            type_: "Oversized",
            reason: "CheaperTypeFits",
            message: format!(
                "spec.workload fits a much cheaper node type: {}. {} costs {} a month for {}",
                offer((n, price)),
                config.node.name,
                usd(current * f64::from(config.nodes)),
                nodes(config.nodes)
            ),
            warning: false,
        });
    }
    out
}

/// Bytes in the unit a person reads: KB, MB or GB (decimal, as the seed writes them).
pub fn human(bytes: u64) -> String {
    let b = bytes as f64;
    if b >= 1e9 {
        format!("{:.2} GB", b / 1e9)
    } else if b >= 1e6 {
        format!("{:.1} MB", b / 1e6)
    } else {
        format!("{:.0} KB", b / 1e3)
    }
}

/// "1 node", "3 nodes".
fn nodes(n: u32) -> String {
    if n == 1 { "1 node".into() } else { format!("{n} nodes") }
}

/// Node memory in binary units, as AWS lists node types ("0.5 GiB"; the seed's "512 MB").
pub fn human_memory(bytes: u64) -> String {
    let b = bytes as f64;
    if b >= (1u64 << 30) as f64 {
        format!("{:.2} GiB", b / (1u64 << 30) as f64)
    } else {
        format!("{:.0} MiB", b / (1u64 << 20) as f64)
    }
}

/// Dollars as the seed writes them: `$11`, `$0.06`.
pub fn usd(amount: f64) -> String {
    if amount >= 10.0 { format!("${amount:.0}") } else { format!("${amount:.2}") }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn node(name: &str) -> &'static NodeType {
        node_types::find(name).expect("in the catalogue")
    }

    /// Within `pct` percent of the seed's rounded figure.
    fn about(actual: f64, seed: f64, pct: f64) -> bool {
        (actual - seed).abs() <= seed * pct / 100.0
    }

    #[test]
    fn the_model_reproduces_the_seeds_dev_estimate() {
        let dev = Workload::seed_dev();
        // "1.000 ordens ativas: ~2 MB … 100 posições: ~50 KB … 200 instrumentos: ~400 KB … 500
        // idempotency keys: ~50 KB … Total usado: ~3 MB"
        let by_name = |n: &str| dev.families.iter().find(|f| f.name == n).map(KeyFamily::bytes);
        assert_eq!(by_name("orders"), Some(2_000_000));
        assert_eq!(by_name("positions"), Some(50_000));
        assert_eq!(by_name("instruments"), Some(400_000));
        assert_eq!(by_name("idempotencyKeys"), Some(50_000));
        assert!(about(dev.data_bytes() as f64 / 1e6, 3.0, 20.0), "~3 MB used: {}", dev.data_bytes());
        // "Capacidade disponível: ~360 MB livre" on cache.t4g.micro (512 MB).
        let f = fit(&dev, node("cache.t4g.micro"), DEFAULT_HEADROOM_PERCENT);
        assert!(about(f.free_bytes as f64 / (1 << 20) as f64, 360.0, 10.0), "~360 MB free: {f:?}");
        assert!(f.fits);
    }

    #[test]
    fn the_model_reproduces_the_seeds_prod_estimate() {
        let prod = Workload::seed_prod();
        // "Total usado: ~107 MB"
        assert!(about(prod.data_bytes() as f64 / 1e6, 107.0, 1.0), "{}", prod.data_bytes());
        // "Capacidade disponível: ~4.3 GB livre" on cache.m7g.large (6.38 GB).
        let f = fit(&prod, node("cache.m7g.large"), DEFAULT_HEADROOM_PERCENT);
        assert!(about(f.free_bytes as f64 / (1u64 << 30) as f64, 4.3, 10.0), "~4.3 GB free: {f:?}");
    }

    #[test]
    fn the_model_reproduces_the_seeds_costs() {
        let data = Workload::seed_prod().data_bytes();
        let cost = |name: &str, nodes: u32, days: u32| {
            monthly_cost(node(name), nodes, Engine::Redis, days, data).expect("priced").nodes_usd
        };
        // "Dev t4g.micro x1 ~$11 · Staging t4g.small x2 ~$44 · Prod m7g.large x3 ~$330"
        assert_eq!(cost("cache.t4g.micro", 1, 0), 11.0);
        assert_eq!(cost("cache.t4g.small", 2, 3), 44.0);
        assert_eq!(cost("cache.m7g.large", 3, 7), 330.0);
        let prod = monthly_cost(node("cache.m7g.large"), 3, Engine::Redis, 7, data).expect("priced");
        assert!(prod.backup_usd > 0.0 && prod.backup_usd < 1.0, "7 daily snapshots of ~107 MB: {prod:?}");
        let valkey = monthly_cost(node("cache.m7g.large"), 3, Engine::Valkey, 0, 0).expect("priced");
        assert!(about(valkey.nodes_usd, 330.0 * 0.8, 0.01), "Valkey is up to 20% lower: {valkey:?}");
    }

    #[test]
    fn the_cheapest_fit_leaves_the_headroom_and_keeps_prod_off_burstable_types() {
        let (dev, _) = cheapest_fit(&Workload::seed_dev(), Engine::Redis, false, 20).expect("a fit");
        assert_eq!(dev.name, "cache.t4g.micro");
        let (prod, price) = cheapest_fit(&Workload::seed_prod(), Engine::Redis, true, 20).expect("a fit");
        assert!(!is_burstable(prod), "{}", prod.name);
        assert_eq!((prod.name, price), ("cache.m7g.large", 110.0));
        // 2 GB of orders need more than a t4g.micro or small holds.
        let big = Workload::oms(1_000_000, 0, 0, 0, 0);
        let (fits, _) = cheapest_fit(&big, Engine::Redis, false, 20).expect("a fit");
        assert!(fit(&big, fits, 20).fits && !fit(&big, node("cache.t4g.small"), 20).fits, "{}", fits.name);
    }

    #[test]
    fn a_node_too_small_is_warned_about_and_a_much_cheaper_fit_is_mentioned() {
        let config = |name: &str, prod: bool| Config {
            node: node(name),
            nodes: 3,
            engine: Engine::Redis,
            retention_days: 7,
            prod,
        };
        let big = Workload::oms(1_000_000, 0, 0, 0, 0);
        let warned = advisories(&config("cache.t4g.small", false), &big, 20);
        assert_eq!(warned.len(), 1);
        assert!(warned[0].warning && warned[0].type_ == "Undersized", "{warned:?}");
        assert!(
            warned[0].message.contains("cache.m7g.large holds it with that headroom, at $330 a month for 3 nodes"),
            "{}",
            warned[0].message
        );
        let small = Workload::seed_dev();
        let info = advisories(&config("cache.r7g.xlarge", false), &small, 20);
        assert!(info.len() == 1 && !info[0].warning && info[0].type_ == "Oversized", "{info:?}");
        assert!(info[0].message.contains("cache.t4g.micro"), "{}", info[0].message);
        assert!(
            advisories(&config("cache.m7g.large", true), &Workload::seed_prod(), 20).is_empty(),
            "prod at its preset is right"
        );
    }
}
