//! The ElastiCache node types this operator accepts for `spec.nodeType`: one table, the single
//! source of truth for validating the field at apply time (the CRD's enum / CEL list is generated
//! from [`names`]) and for later sizing and cost work.
//!
//! Sources, AWS ElastiCache user guide, read on 2026-11-29 (through stored copies of the pages,
//! not the live site; the copies are the revision that documents Valkey 9.1 and the m8g/r8g/c8gn
//! node types):
//!
//! - "Supported node types" (CacheNodes.SupportedTypes),
//!   <https://docs.aws.amazon.com/AmazonElastiCache/latest/dg/CacheNodes.SupportedTypes.html>:
//!   which types exist for Redis OSS ("Current Generation (Redis OSS)" tables) and for Valkey
//!   ("Current Generation (Valkey)" tables), their `Memory (GiB)`, `Baseline bandwidth (Gbps)` and
//!   `Burst bandwidth (Gbps)` columns, and, for the burstable T3/T4g types only, `vCPUs` and
//!   `Network performance` ("Up to 5 Gigabit").
//! - "Valkey and Redis OSS parameters" / "Memcached specific parameters" (ParameterGroups.Engine),
//!   <https://docs.aws.amazon.com/AmazonElastiCache/latest/dg/ParameterGroups.Engine.html>:
//!   `maxmemory` in bytes per node type (section "Redis OSS node-type specific parameters",
//!   `#ParameterGroups.Redis.NodeSpecific`, and, for the Valkey-only types, section "Valkey
//!   node-type specific parameters", `#ParameterGroups.Valkey.NodeSpecific`), and `num_threads`
//!   per node type (section "Memcached node-type specific parameters",
//!   `#ParameterGroups.Memcached.NodeSpecific`).
//! - The API reference's `CacheNodeType` list (e.g. CreateReplicationGroup),
//!   <https://docs.aws.amazon.com/AmazonElastiCache/latest/APIReference/API_CreateReplicationGroup.html>:
//!   the same families and sizes, and which generations AWS calls "previous".
//!
//! How each column was filled:
//!
//! - `memory_gib`: the "Memory (GiB)" column of the Redis OSS tables, verbatim; for the
//!   Valkey-only types (m8g, r8g, c8gn), that of the Valkey tables ("Current Generation (Valkey)"),
//!   verbatim. It agrees (to ±0.01 GiB; AWS rounds some rows down and some to nearest) with
//!   `maxmemory_bytes` / 2^30.
//! - `maxmemory_bytes`: the Redis OSS node-type `maxmemory` table, verbatim; for the Valkey-only
//!   types, the Valkey node-type `maxmemory` table, verbatim (the Redis OSS table does not list
//!   them; the Valkey table gives every other type here the same figure as the Redis OSS one).
//! - `vcpu`: T3/T4g from the burstable table's "vCPUs" column. No ElastiCache page read gives a
//!   vCPU count for the other types; for them (m8g, r8g and c8gn included: the Memcached table
//!   lists them) the figure is the Memcached `num_threads` default of the same node type, which
//!   equals the documented vCPU count on every type where both are given (t2.*, t3.*, t4g.*).
//!   R6gd has no Memcached row at all: its figure is that of the R6g type of the same size (same
//!   memory and `maxmemory`), an inference marked on each row. Check these before trusting them
//!   for CPU sizing.
//! - `network`: T3/T4g verbatim ("Up to 5 Gigabit"). The other rows (the Valkey-only ones from the
//!   Valkey tables) only have baseline and burst bandwidth on the pages read; the string is
//!   rendered from them the way AWS's pricing pages write it: "Up to {burst} Gigabit" when a burst
//!   figure is given, "{baseline} Gigabit" when the burst column says N/A.
//! - `valkey_only`: true for the m8g, r8g and c8gn rows, which the Supported node types page lists
//!   only in its Valkey and Memcached tables (minimum Valkey 7.2), not in the Redis OSS ones. The
//!   rows were read on 2026-11-29 from the same stored revision (the one that documents Valkey
//!   9.1). This table accepts them for `spec.nodeType` whatever the engine; refusing them with
//!   `engine: redis` is up to the callers ([`valkey_only_names`] lists them).
//!
//! Deliberately left out (refused at apply time):
//!
//! - previous generations: t1, t2, m1, m2, m3, m4, c1, r3, r4. (The Supported node types page
//!   still lists M4, R4 and T2 inside its current-generation tables, but says T2 is being moved
//!   to previous generation and no new T2 clusters can be created; this operator accepts none of
//!   them.)
//! - r6gd (data tiering): AWS requires `DataTieringEnabled: true` for its replication groups, and
//!   the stack template does not set it; add the rows back with that template change.
//!
//! (m8g, r8g and c8gn used to be left out too, while the stack template ran only Redis OSS; they
//! are accepted now that it can run Valkey, marked `valkey_only`.)

/// One accepted ElastiCache node type.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct NodeType {
    /// Full API name, e.g. `cache.m7g.large`.
    pub name: &'static str,
    /// Family, e.g. `m7g`.
    pub family: &'static str,
    /// Size, e.g. `large`.
    pub size: &'static str,
    /// vCPUs (see the module docs for where each figure comes from).
    pub vcpu: u16,
    /// Memory in GiB, as AWS's Supported node types page lists it (Redis OSS tables; Valkey
    /// tables for the Valkey-only types).
    pub memory_gib: f64,
    /// Network performance, e.g. "Up to 12.5 Gigabit" (see the module docs).
    pub network: &'static str,
    /// Whether AWS documents the type as current generation; every accepted type is.
    pub current_generation: bool,
    /// `maxmemory` default for the node type, in bytes (not modifiable on ElastiCache): the Redis
    /// OSS table's figure, or, for the Valkey-only types, the Valkey table's.
    pub maxmemory_bytes: u64,
    /// Whether AWS offers the type only for the Valkey engine (and Memcached), not for Redis OSS.
    pub valkey_only: bool,
}

const fn node(
    name: &'static str,
    family: &'static str,
    size: &'static str,
    vcpu: u16,
    memory_gib: f64,
    maxmemory_bytes: u64,
    network: &'static str,
) -> NodeType {
    NodeType {
        name,
        family,
        size,
        vcpu,
        memory_gib,
        network,
        current_generation: true,
        maxmemory_bytes,
        valkey_only: false,
    }
}

/// A row AWS documents only for Valkey (see the module docs); otherwise as [`node`].
const fn valkey_node(
    name: &'static str,
    family: &'static str,
    size: &'static str,
    vcpu: u16,
    memory_gib: f64,
    maxmemory_bytes: u64,
    network: &'static str,
) -> NodeType {
    NodeType { valkey_only: true, ..node(name, family, size, vcpu, memory_gib, maxmemory_bytes, network) }
}

/// Every node type this operator accepts, grouped by family, sizes in ascending order.
pub const NODE_TYPES: &[NodeType] = &[
    // Burstable general purpose. vCPUs and network verbatim from the burstable table.
    node("cache.t4g.micro", "t4g", "micro", 2, 0.5, 536_870_912, "Up to 5 Gigabit"),
    node("cache.t4g.small", "t4g", "small", 2, 1.37, 1_471_026_299, "Up to 5 Gigabit"),
    node("cache.t4g.medium", "t4g", "medium", 2, 3.09, 3_317_862_236, "Up to 5 Gigabit"),
    node("cache.t3.micro", "t3", "micro", 2, 0.5, 536_870_912, "Up to 5 Gigabit"),
    node("cache.t3.small", "t3", "small", 2, 1.37, 1_471_026_299, "Up to 5 Gigabit"),
    node("cache.t3.medium", "t3", "medium", 2, 3.09, 3_317_862_236, "Up to 5 Gigabit"),
    // General purpose, Graviton3 (Redis OSS 6.2+).
    node("cache.m7g.large", "m7g", "large", 2, 6.38, 6_854_542_746, "Up to 12.5 Gigabit"),
    node("cache.m7g.xlarge", "m7g", "xlarge", 4, 12.93, 13_891_921_715, "Up to 12.5 Gigabit"),
    node("cache.m7g.2xlarge", "m7g", "2xlarge", 8, 26.04, 27_966_669_210, "Up to 15 Gigabit"),
    node("cache.m7g.4xlarge", "m7g", "4xlarge", 16, 52.26, 56_116_178_125, "Up to 15 Gigabit"),
    node("cache.m7g.8xlarge", "m7g", "8xlarge", 32, 103.68, 111_325_552_312, "15 Gigabit"),
    node("cache.m7g.12xlarge", "m7g", "12xlarge", 48, 157.12, 168_715_971_994, "22.5 Gigabit"),
    node("cache.m7g.16xlarge", "m7g", "16xlarge", 64, 209.55, 225_000_375_228, "30 Gigabit"),
    // General purpose, Graviton2 (Redis OSS 5.0.6+).
    node("cache.m6g.large", "m6g", "large", 2, 6.38, 6_854_542_746, "Up to 10 Gigabit"),
    node("cache.m6g.xlarge", "m6g", "xlarge", 4, 12.93, 13_891_921_715, "Up to 10 Gigabit"),
    node("cache.m6g.2xlarge", "m6g", "2xlarge", 8, 26.04, 27_966_669_210, "Up to 10 Gigabit"),
    node("cache.m6g.4xlarge", "m6g", "4xlarge", 16, 52.26, 56_116_178_125, "Up to 10 Gigabit"),
    node("cache.m6g.8xlarge", "m6g", "8xlarge", 32, 103.68, 111_325_552_312, "12 Gigabit"),
    node("cache.m6g.12xlarge", "m6g", "12xlarge", 48, 157.12, 168_715_971_994, "20 Gigabit"),
    node("cache.m6g.16xlarge", "m6g", "16xlarge", 64, 209.55, 225_000_375_228, "25 Gigabit"),
    // General purpose, x86 (there is no m5.8xlarge or m5.16xlarge on ElastiCache).
    node("cache.m5.large", "m5", "large", 2, 6.38, 6_854_542_746, "Up to 10 Gigabit"),
    node("cache.m5.xlarge", "m5", "xlarge", 4, 12.93, 13_891_921_715, "Up to 10 Gigabit"),
    node("cache.m5.2xlarge", "m5", "2xlarge", 8, 26.04, 27_966_669_210, "Up to 10 Gigabit"),
    node("cache.m5.4xlarge", "m5", "4xlarge", 16, 52.26, 56_116_178_125, "Up to 10 Gigabit"),
    node("cache.m5.12xlarge", "m5", "12xlarge", 48, 157.12, 168_715_971_994, "12 Gigabit"),
    node("cache.m5.24xlarge", "m5", "24xlarge", 96, 314.32, 337_500_562_842, "25 Gigabit"),
    // Memory optimized, Graviton3 (Redis OSS 6.2+); r7g stops at 16xlarge.
    node("cache.r7g.large", "r7g", "large", 2, 13.07, 14_037_181_030, "Up to 12.5 Gigabit"),
    node("cache.r7g.xlarge", "r7g", "xlarge", 4, 26.32, 28_261_849_702, "Up to 12.5 Gigabit"),
    node("cache.r7g.2xlarge", "r7g", "2xlarge", 8, 52.82, 56_711_183_565, "Up to 15 Gigabit"),
    node("cache.r7g.4xlarge", "r7g", "4xlarge", 16, 105.81, 113_609_865_216, "Up to 15 Gigabit"),
    node("cache.r7g.8xlarge", "r7g", "8xlarge", 32, 209.55, 225_000_375_228, "15 Gigabit"),
    node("cache.r7g.12xlarge", "r7g", "12xlarge", 48, 317.77, 341_206_346_547, "22.5 Gigabit"),
    node("cache.r7g.16xlarge", "r7g", "16xlarge", 64, 419.09, 450_000_750_456, "30 Gigabit"),
    // Memory optimized, Graviton2 (Redis OSS 5.0.6+).
    node("cache.r6g.large", "r6g", "large", 2, 13.07, 14_037_181_030, "Up to 10 Gigabit"),
    node("cache.r6g.xlarge", "r6g", "xlarge", 4, 26.32, 28_261_849_702, "Up to 10 Gigabit"),
    node("cache.r6g.2xlarge", "r6g", "2xlarge", 8, 52.82, 56_711_183_565, "Up to 10 Gigabit"),
    node("cache.r6g.4xlarge", "r6g", "4xlarge", 16, 105.81, 113_609_865_216, "Up to 10 Gigabit"),
    node("cache.r6g.8xlarge", "r6g", "8xlarge", 32, 209.55, 225_000_375_228, "12 Gigabit"),
    node("cache.r6g.12xlarge", "r6g", "12xlarge", 48, 317.77, 341_206_346_547, "20 Gigabit"),
    node("cache.r6g.16xlarge", "r6g", "16xlarge", 64, 419.09, 450_000_750_456, "25 Gigabit"),
    // Memory optimized, x86 (there is no r5.8xlarge or r5.16xlarge on ElastiCache). The page's
    // Redis OSS table gives r5.12xlarge a 12 Gbps baseline, its Memcached table 20; the Redis OSS
    // figure is used.
    node("cache.r5.large", "r5", "large", 2, 13.07, 14_037_181_030, "Up to 10 Gigabit"),
    node("cache.r5.xlarge", "r5", "xlarge", 4, 26.32, 28_261_849_702, "Up to 10 Gigabit"),
    node("cache.r5.2xlarge", "r5", "2xlarge", 8, 52.82, 56_711_183_565, "Up to 10 Gigabit"),
    node("cache.r5.4xlarge", "r5", "4xlarge", 16, 105.81, 113_609_865_216, "Up to 10 Gigabit"),
    node("cache.r5.12xlarge", "r5", "12xlarge", 48, 317.77, 341_206_346_547, "12 Gigabit"),
    node("cache.r5.24xlarge", "r5", "24xlarge", 96, 635.61, 682_485_973_811, "25 Gigabit"),
    // Network optimized, Graviton3 (Redis OSS 6.2+).
    node("cache.c7gn.large", "c7gn", "large", 2, 3.09, 3_317_862_236, "Up to 30 Gigabit"),
    node("cache.c7gn.xlarge", "c7gn", "xlarge", 4, 6.38, 6_854_542_746, "Up to 40 Gigabit"),
    node("cache.c7gn.2xlarge", "c7gn", "2xlarge", 8, 12.94, 13_891_921_715, "Up to 50 Gigabit"),
    node("cache.c7gn.4xlarge", "c7gn", "4xlarge", 16, 26.05, 27_966_669_210, "50 Gigabit"),
    node("cache.c7gn.8xlarge", "c7gn", "8xlarge", 32, 52.26, 56_116_178_125, "100 Gigabit"),
    node("cache.c7gn.12xlarge", "c7gn", "12xlarge", 48, 78.56, 84_357_985_997, "150 Gigabit"),
    node("cache.c7gn.16xlarge", "c7gn", "16xlarge", 64, 105.81, 113_609_865_216, "200 Gigabit"),
    // Valkey only (minimum Valkey 7.2), Graviton4: memory and bandwidth from the "Current
    // Generation (Valkey)" tables, `maxmemory` from the Valkey node-type table, vCPUs from the
    // Memcached `num_threads` table. AWS lists every size from large to 16xlarge for each family.
    // General purpose.
    valkey_node("cache.m8g.large", "m8g", "large", 2, 6.79, 7_294_178_820, "Up to 12.5 Gigabit"),
    valkey_node("cache.m8g.xlarge", "m8g", "xlarge", 4, 14.18, 15_222_495_510, "Up to 12.5 Gigabit"),
    valkey_node("cache.m8g.2xlarge", "m8g", "2xlarge", 8, 29.68, 31_866_224_640, "Up to 15 Gigabit"),
    valkey_node("cache.m8g.4xlarge", "m8g", "4xlarge", 16, 61.33, 65_856_864_256, "Up to 15 Gigabit"),
    valkey_node("cache.m8g.8xlarge", "m8g", "8xlarge", 32, 124.65, 133_838_143_488, "15 Gigabit"),
    valkey_node("cache.m8g.12xlarge", "m8g", "12xlarge", 48, 187.96, 201_819_422_720, "22.5 Gigabit"),
    valkey_node("cache.m8g.16xlarge", "m8g", "16xlarge", 64, 251.27, 269_800_701_952, "30 Gigabit"),
    // Memory optimized.
    valkey_node("cache.r8g.large", "r8g", "large", 2, 14.18, 15_222_495_510, "Up to 12.5 Gigabit"),
    valkey_node("cache.r8g.xlarge", "r8g", "xlarge", 4, 29.68, 31_866_224_640, "Up to 12.5 Gigabit"),
    valkey_node("cache.r8g.2xlarge", "r8g", "2xlarge", 8, 61.33, 65_856_864_256, "Up to 15 Gigabit"),
    valkey_node("cache.r8g.4xlarge", "r8g", "4xlarge", 16, 124.65, 133_838_143_488, "Up to 15 Gigabit"),
    valkey_node("cache.r8g.8xlarge", "r8g", "8xlarge", 32, 251.27, 269_800_701_952, "15 Gigabit"),
    valkey_node("cache.r8g.12xlarge", "r8g", "12xlarge", 48, 377.9, 405_763_260_416, "22.5 Gigabit"),
    valkey_node("cache.r8g.16xlarge", "r8g", "16xlarge", 64, 504.52, 541_725_818_880, "30 Gigabit"),
    // Network optimized.
    valkey_node("cache.c8gn.large", "c8gn", "large", 2, 3.1, 3_330_020_474, "Up to 30 Gigabit"),
    valkey_node("cache.c8gn.xlarge", "c8gn", "xlarge", 4, 6.79, 7_294_178_820, "Up to 40 Gigabit"),
    valkey_node("cache.c8gn.2xlarge", "c8gn", "2xlarge", 8, 14.18, 15_222_495_510, "Up to 50 Gigabit"),
    valkey_node("cache.c8gn.4xlarge", "c8gn", "4xlarge", 16, 29.68, 31_866_224_640, "50 Gigabit"),
    valkey_node("cache.c8gn.8xlarge", "c8gn", "8xlarge", 32, 61.33, 65_856_864_256, "100 Gigabit"),
    valkey_node("cache.c8gn.12xlarge", "c8gn", "12xlarge", 48, 92.99, 99_847_503_872, "150 Gigabit"),
    valkey_node("cache.c8gn.16xlarge", "c8gn", "16xlarge", 64, 124.65, 133_838_143_488, "200 Gigabit"),
];

/// Families AWS documents for ElastiCache that this operator refuses: previous generations and
/// data tiering (see the module docs).
const REFUSED_FAMILIES: &[(&str, &str)] = &[
    ("t1", "a previous-generation family"),
    ("t2", "a previous-generation family"),
    ("m1", "a previous-generation family"),
    ("m2", "a previous-generation family"),
    ("m3", "a previous-generation family"),
    ("m4", "a previous-generation family"),
    ("c1", "a previous-generation family"),
    ("r3", "a previous-generation family"),
    ("r4", "a previous-generation family"),
    ("r6gd", "a data-tiering family, which needs DataTieringEnabled, and the stack template does not set it"),
];

/// The accepted node type with this exact name (e.g. `cache.m7g.large`), if any.
pub fn find(name: &str) -> Option<&'static NodeType> {
    NODE_TYPES.iter().find(|t| t.name == name)
}

/// Names of every accepted node type, in table order.
pub fn names() -> impl Iterator<Item = &'static str> {
    NODE_TYPES.iter().map(|t| t.name)
}

/// Names of the accepted node types AWS offers only for Valkey, in table order.
pub fn valkey_only_names() -> impl Iterator<Item = &'static str> {
    NODE_TYPES.iter().filter(|t| t.valkey_only).map(|t| t.name)
}

/// Accepted families, in table order, each once.
pub fn families() -> impl Iterator<Item = &'static str> {
    NODE_TYPES
        .iter()
        .enumerate()
        .filter(|(i, t)| *i == 0 || NODE_TYPES[i - 1].family != t.family)
        .map(|(_, t)| t.family)
}

/// CEL for `spec.nodeType`: one of the table's names, so the apiserver refuses any other at apply.
pub fn cel_rule() -> String {
    format!("self in [{}]", names().map(|n| format!("'{n}'")).collect::<Vec<_>>().join(", "))
}

/// The sizes of one family, smallest first.
fn sizes(family: &str) -> Vec<&'static str> {
    NODE_TYPES.iter().filter(|t| t.family == family).map(|t| t.size).collect()
}

/// CEL on `spec`: a Valkey-only node type needs engine valkey.
pub fn valkey_only_rule() -> String {
    let only: Vec<String> = valkey_only_names().map(|n| format!("'{n}'")).collect();
    format!(
        "!has(self.nodeType) || !(self.nodeType in [{}]) || (has(self.engine) && self.engine == 'valkey')",
        only.join(", ")
    )
}

/// CEL for the refusal's message: the refused type, then every accepted type by family. Only
/// `self` is computed (the list is a literal), so the apiserver's cost budget holds.
pub fn cel_message() -> String {
    let by_family: Vec<String> = families().map(|f| format!("{f}: {}", sizes(f).join(", "))).collect();
    format!(
        "'nodeType ' + self + ' is not a node type ElastiCache offers for this engine; the accepted types are \
         cache.<family>.<size> with {}'",
        by_family.join("; ")
    )
}

/// The template's `NodeType` AllowedPattern: exactly this table's types, so the seed's
/// `aws cloudformation create-stack` commands are held to the same list (a test keeps the copy in
/// the template equal to this).
pub fn allowed_pattern() -> String {
    let families: Vec<String> = families().map(|f| format!("{f}\\.({})", sizes(f).join("|"))).collect();
    format!("^cache\\.({})$", families.join("|"))
}

/// A size's scale, for "closest size" only: micro < small < medium < large < xlarge < 2xlarge ...
fn size_scale(size: &str) -> Option<f64> {
    match size {
        "micro" => Some(0.25),
        "small" => Some(0.5),
        "medium" => Some(1.0),
        "large" => Some(2.0),
        "xlarge" => Some(4.0),
        _ => {
            let n: u32 = size.strip_suffix("xlarge")?.parse().ok()?;
            (n > 0).then(|| 4.0 * f64::from(n))
        }
    }
}

/// A short user-facing hint for an unknown type: the closest accepted types of the same family,
/// or the family list.
pub fn suggestion(name: &str) -> String {
    if find(name).is_some() {
        return format!("{name} is an accepted node type");
    }
    let family_list = families().collect::<Vec<_>>().join(", ");
    let mut parts = name.splitn(3, '.');
    let (Some("cache"), Some(family), Some(size)) = (parts.next(), parts.next(), parts.next()) else {
        return format!(
            "{name:?} is not a node type: expected cache.<family>.<size>, e.g. cache.t4g.micro; accepted families: {family_list}"
        );
    };
    let members: Vec<&NodeType> = NODE_TYPES.iter().filter(|t| t.family == family).collect();
    if members.is_empty() {
        let why = match REFUSED_FAMILIES.iter().find(|(f, _)| *f == family) {
            Some((_, why)) => format!("{family} is {why}"),
            None => format!("{family} is not an ElastiCache family this operator knows"),
        };
        return format!("{name} is not accepted: {why}; accepted families: {family_list}");
    }
    let sizes = members.iter().map(|t| t.size).collect::<Vec<_>>().join(", ");
    match size_scale(size) {
        Some(wanted) => {
            let mut closest = members.clone();
            closest.sort_by(|a, b| {
                let d = |t: &NodeType| size_scale(t.size).map_or(f64::INFINITY, |s| (s.ln() - wanted.ln()).abs());
                d(a).total_cmp(&d(b))
            });
            let closest = closest.iter().take(2).map(|t| t.name).collect::<Vec<_>>().join(" or ");
            format!("{name} does not exist; closest {family} types: {closest} ({family} sizes: {sizes})")
        }
        None => format!("{name} does not exist; {family} sizes: {sizes}"),
    }
}

/// A node type's on-demand price, and where it comes from.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Price {
    pub node_type: &'static str,
    /// US dollars a month for one Redis OSS node.
    pub redis_monthly_usd: f64,
    pub source: &'static str,
    pub region: &'static str,
}

/// The seed's node-type tables ("Custo/mês"): approximate monthly on-demand prices, read
/// 2026-11-29 from `data-layer-templates.md`. The seed names no region.
pub const SEED_PRICES: &str = "the seed's node-type tables (data-layer-templates.md, \"Custo/mês\", approximate)";
const SEED_REGION: &str = "not stated by the seed";

/// Every price the operator knows. Only the seed's seven types have one: AWS's pricing page
/// loads its tables in the browser, and no stored copy of an AWS page gives the others (third-party
/// mirrors of AWS's price list do; they are not used). A type without a price is still accepted; it
/// has no cost in status, and the cheapest-fit search passes it by.
pub const PRICES: &[Price] = &[
    Price { node_type: "cache.t4g.micro", redis_monthly_usd: 11.0, source: SEED_PRICES, region: SEED_REGION },
    Price { node_type: "cache.t4g.small", redis_monthly_usd: 22.0, source: SEED_PRICES, region: SEED_REGION },
    Price { node_type: "cache.t4g.medium", redis_monthly_usd: 44.0, source: SEED_PRICES, region: SEED_REGION },
    Price { node_type: "cache.m7g.large", redis_monthly_usd: 110.0, source: SEED_PRICES, region: SEED_REGION },
    Price { node_type: "cache.m7g.xlarge", redis_monthly_usd: 220.0, source: SEED_PRICES, region: SEED_REGION },
    Price { node_type: "cache.r7g.large", redis_monthly_usd: 150.0, source: SEED_PRICES, region: SEED_REGION },
    Price { node_type: "cache.r7g.xlarge", redis_monthly_usd: 300.0, source: SEED_PRICES, region: SEED_REGION },
];

/// Valkey nodes cost this share of the Redis OSS price. AWS: "On ElastiCache for Valkey
/// self-designed node-based, you can benefit from up to 20% lower cost per node" (ElastiCache FAQ,
/// <https://amazonaws.cn/en/elasticache/faqs>, read 2026-11-29 through a stored copy); the
/// estimate takes the full 20 %.
pub const VALKEY_PRICE_FACTOR: f64 = 0.8;

/// The monthly on-demand price of one node of this type with this engine, if known.
pub fn monthly_price(name: &str, engine: super::spec::Engine) -> Option<f64> {
    let price = PRICES.iter().find(|p| p.node_type == name)?;
    Some(match engine {
        super::spec::Engine::Redis => price.redis_monthly_usd,
        super::spec::Engine::Valkey => price.redis_monthly_usd * VALKEY_PRICE_FACTOR,
    })
}

/// The seed's node-type tables: name, vCPU, memory (GiB). Tests hold the table and the template to them.
#[cfg(test)]
pub(crate) const SEED_NODE_TYPES: [(&str, u16, f64); 7] = [
    ("cache.t4g.micro", 2, 0.5),
    ("cache.t4g.small", 2, 1.37),
    ("cache.t4g.medium", 2, 3.09),
    ("cache.m7g.large", 2, 6.38),
    ("cache.m7g.xlarge", 4, 12.93),
    ("cache.r7g.large", 2, 13.07),
    ("cache.r7g.xlarge", 4, 26.32),
];

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeSet;

    #[test]
    fn names_are_unique_and_well_formed() {
        let mut seen = BTreeSet::new();
        for t in NODE_TYPES {
            assert!(seen.insert(t.name), "{} listed twice", t.name);
            assert_eq!(t.name, format!("cache.{}.{}", t.family, t.size), "{}", t.name);
            assert!(t.family.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit()), "{}", t.name);
            assert!(size_scale(t.size).is_some(), "{}: unknown size", t.name);
            assert!(t.current_generation, "{}: only current-generation types are accepted", t.name);
            assert!(t.vcpu > 0 && t.memory_gib > 0.0 && !t.network.is_empty(), "{}", t.name);
            assert!(t.network.ends_with(" Gigabit"), "{}: {}", t.name, t.network);
        }
        assert_eq!(names().count(), NODE_TYPES.len());
        assert!(names().eq(NODE_TYPES.iter().map(|t| t.name)));
        assert!(valkey_only_names().eq(NODE_TYPES.iter().filter(|t| t.valkey_only).map(|t| t.name)));
        for n in valkey_only_names() {
            assert!(n.starts_with("cache.") && n.split('.').count() == 3, "{n}");
            assert!(find(n).is_some_and(|t| t.valkey_only), "{n}");
        }
    }

    const VALKEY_ONLY_FAMILIES: [&str; 3] = ["m8g", "r8g", "c8gn"];

    #[test]
    fn the_valkey_only_families_are_present_with_every_size() {
        let families: Vec<_> = families().collect();
        for f in VALKEY_ONLY_FAMILIES {
            assert!(families.contains(&f), "{f} missing: {families:?}");
            assert_eq!(sizes(f), ["large", "xlarge", "2xlarge", "4xlarge", "8xlarge", "12xlarge", "16xlarge"], "{f}");
            assert!(!REFUSED_FAMILIES.iter().any(|(r, _)| *r == f), "{f} still refused");
        }
        // Exactly these families are Valkey only, every row of them, and nothing else.
        for t in NODE_TYPES {
            assert_eq!(t.valkey_only, VALKEY_ONLY_FAMILIES.contains(&t.family), "{}", t.name);
        }
        assert_eq!(valkey_only_names().count(), 21);
        for name in ["cache.m8g.large", "cache.r8g.large", "cache.c8gn.large", "cache.r8g.16xlarge"] {
            let t = find(name).unwrap_or_else(|| panic!("{name} missing"));
            assert!(t.valkey_only && t.current_generation, "{name}");
            assert!(valkey_only_names().any(|n| n == name), "{name}");
        }
        // Spot checks against the Valkey tables (memory, maxmemory) and Memcached num_threads.
        let m8g = find("cache.m8g.large").unwrap();
        assert_eq!((m8g.vcpu, m8g.memory_gib, m8g.maxmemory_bytes), (2, 6.79, 7_294_178_820));
        assert_eq!(m8g.network, "Up to 12.5 Gigabit");
        let r8g = find("cache.r8g.12xlarge").unwrap();
        assert_eq!((r8g.vcpu, r8g.memory_gib, r8g.maxmemory_bytes), (48, 377.9, 405_763_260_416));
        let c8gn = find("cache.c8gn.large").unwrap();
        assert_eq!((c8gn.vcpu, c8gn.memory_gib, c8gn.maxmemory_bytes), (2, 3.1, 3_330_020_474));
        assert_eq!(c8gn.network, "Up to 30 Gigabit");
    }

    #[test]
    fn the_seeds_types_and_older_families_are_not_valkey_only() {
        for name in SEED_NODE_TYPES.map(|(n, _, _)| n).into_iter().chain(["cache.c7gn.large"]) {
            let t = find(name).unwrap_or_else(|| panic!("{name} missing"));
            assert!(!t.valkey_only, "{name}");
            assert!(!valkey_only_names().any(|n| n == name), "{name}");
        }
    }

    #[test]
    fn the_cel_rule_the_message_and_the_pattern_list_the_valkey_only_types() {
        let rule = cel_rule();
        assert!(rule.starts_with("self in ['cache.t4g.micro', "), "{rule}");
        for n in names() {
            assert!(rule.contains(&format!("'{n}'")), "{n} missing from {rule}");
        }
        for n in ["cache.m8g.large", "cache.r8g.16xlarge", "cache.c8gn.12xlarge"] {
            assert!(rule.contains(&format!("'{n}'")), "{n} missing from {rule}");
        }
        let message = cel_message();
        assert!(message.contains("m8g: large, xlarge") && message.contains("c8gn: large"), "{message}");
        let pattern = allowed_pattern();
        assert!(pattern.contains("|r8g\\.(large|xlarge|2xlarge|4xlarge|8xlarge|12xlarge|16xlarge)"), "{pattern}");
    }

    #[test]
    fn families_are_contiguous_and_sizes_ascend() {
        let families: Vec<_> = families().collect();
        let unique: BTreeSet<_> = families.iter().collect();
        assert_eq!(families.len(), unique.len(), "a family's rows are split: {families:?}");
        for pair in NODE_TYPES.windows(2) {
            let (a, b) = (&pair[0], &pair[1]);
            if a.family == b.family {
                assert!(size_scale(a.size) < size_scale(b.size), "{} before {}", a.name, b.name);
                assert!(a.memory_gib < b.memory_gib && a.vcpu <= b.vcpu, "{} before {}", a.name, b.name);
            }
        }
    }

    #[test]
    fn memory_agrees_with_maxmemory() {
        const GIB: f64 = (1u64 << 30) as f64;
        for t in NODE_TYPES {
            let from_bytes = t.maxmemory_bytes as f64 / GIB;
            assert!((from_bytes - t.memory_gib).abs() < 0.011, "{}: {} GiB vs {from_bytes}", t.name, t.memory_gib);
        }
    }

    #[test]
    fn the_seeds_types_are_present_with_the_seeds_figures() {
        for (name, vcpu, memory) in SEED_NODE_TYPES {
            let t = find(name).unwrap_or_else(|| panic!("{name} missing"));
            assert_eq!((t.vcpu, t.memory_gib), (vcpu, memory), "{name}");
        }
    }

    #[test]
    fn previous_generations_and_nonexistent_sizes_are_refused() {
        for name in [
            "cache.t2.micro",
            "cache.t2.medium",
            "cache.t1.micro",
            "cache.m3.large",
            "cache.m4.large",
            "cache.r3.large",
            "cache.r4.large",
            "cache.c1.xlarge",
            "cache.r7g.24xlarge",
            "cache.m5.8xlarge",
            "cache.r6gd.large",
            "cache.r6gd.xlarge",
            "cache.t4g.large",
            "cache.m8g.24xlarge",
            "cache.c8gn.medium",
            "cache.m8g.large ",
            "cache.m7g.large ",
            "m7g.large",
            "",
        ] {
            assert!(find(name).is_none(), "{name:?} accepted");
            assert!(!names().any(|n| n == name), "{name:?} listed");
        }
        assert!(!families().any(|f| REFUSED_FAMILIES.iter().any(|(r, _)| *r == f)));
    }

    #[test]
    fn suggestions_name_sizes_that_exist() {
        let hint = suggestion("cache.r7g.24xlarge");
        assert!(hint.contains("cache.r7g.16xlarge"), "{hint}");
        for t in NODE_TYPES.iter().filter(|t| t.family == "r7g") {
            assert!(hint.contains(t.size), "{hint}");
        }
        let mentioned: Vec<&str> = hint
            .split(|c: char| c.is_whitespace() || c == ',' || c == '(' || c == ')')
            .filter(|w| w.starts_with("cache."))
            .collect();
        assert!(mentioned.contains(&"cache.r7g.24xlarge"));
        assert!(mentioned.iter().filter(|w| **w != "cache.r7g.24xlarge").all(|w| find(w).is_some()), "{hint}");

        let hint = suggestion("cache.t2.micro");
        assert!(hint.contains("previous-generation") && hint.contains("t4g"), "{hint}");
        let hint = suggestion("cache.m7g.huge");
        assert!(hint.contains("large") && hint.contains("16xlarge"), "{hint}");
        let hint = suggestion("cache.zz9.large");
        assert!(hint.contains("accepted families") && hint.contains("m7g"), "{hint}");
        let hint = suggestion("redis-large");
        assert!(hint.contains("cache.<family>.<size>"), "{hint}");
        assert!(suggestion("cache.m7g.large").contains("accepted"));
        assert!(suggestion("cache.m7g.medium").contains("cache.m7g.large"));
        assert!(suggestion("cache.m8g.large").contains("accepted"));
        let hint = suggestion("cache.r8g.24xlarge");
        assert!(hint.contains("cache.r8g.16xlarge"), "{hint}");
        let hint = suggestion("cache.r6gd.large");
        assert!(hint.contains("data-tiering") && hint.contains("c8gn"), "{hint}");
    }

    #[test]
    fn every_price_is_of_a_catalogued_type_and_the_seeds_types_all_have_one() {
        for p in PRICES {
            assert!(find(p.node_type).is_some(), "{} is priced but not in the catalogue", p.node_type);
            assert!(p.redis_monthly_usd > 0.0 && !p.source.is_empty() && !p.region.is_empty());
        }
        for (name, _, _) in SEED_NODE_TYPES {
            assert!(PRICES.iter().any(|p| p.node_type == name), "{name} is in the seed's tables but has no price");
        }
    }
}
