//! The seed's environment presets: what an omitted sizing field means in dev, staging and prod.
//!
//! The same table feeds the operator's parameter resolution and the CEL rules the apiserver
//! enforces, so a preset cannot say one thing in Rust and another in the schema.

use super::spec::{Engine, EngineVersion, Environment};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Preset {
    pub node_type: &'static str,
    pub num_cache_nodes: i32,
    pub snapshot_retention_limit: i32,
    pub automatic_failover_enabled: bool,
    /// At-rest and in-transit encryption; the template turns both on for prod.
    pub encrypted: bool,
}

/// The version an omitted engineVersion means: the seed's 7.1 for Redis OSS, the newest for Valkey.
pub const fn default_engine_version(engine: Engine) -> EngineVersion {
    match engine {
        Engine::Redis => EngineVersion::V7_1,
        Engine::Valkey => EngineVersion::V8_2,
    }
}

pub const fn preset(env: Environment) -> Preset {
    match env {
        Environment::Dev => Preset {
            node_type: "cache.t4g.micro",
            num_cache_nodes: 1,
            snapshot_retention_limit: 0,
            automatic_failover_enabled: false,
            encrypted: false,
        },
        Environment::Staging => Preset {
            node_type: "cache.t4g.small",
            num_cache_nodes: 2,
            snapshot_retention_limit: 3,
            automatic_failover_enabled: true,
            encrypted: false,
        },
        Environment::Prod => Preset {
            node_type: "cache.m7g.large",
            num_cache_nodes: 3,
            snapshot_retention_limit: 7,
            automatic_failover_enabled: true,
            encrypted: true,
        },
    }
}

/// A CEL expression for a spec field with its preset fallback.
fn effective(field: &str, value: impl Fn(Preset) -> String) -> String {
    Environment::cel_with_preset(field, |env| value(preset(env)))
}

fn effective_failover() -> String {
    effective("automaticFailoverEnabled", |p| p.automatic_failover_enabled.to_string())
}

/// CEL: failover, as given or preset, needs at least two nodes, as given or preset.
pub fn failover_needs_nodes_rule() -> String {
    let nodes = effective("numCacheNodes", |p| p.num_cache_nodes.to_string());
    format!("!{} || {nodes} >= 2", effective_failover())
}

/// CEL: automatic snapshots are on (the retention, as given or preset, is above 0).
pub fn snapshots_on_cel() -> String {
    format!("({} > 0)", effective("snapshotRetentionLimit", |p| p.snapshot_retention_limit.to_string()))
}

/// CEL: prod runs with failover.
pub fn prod_needs_failover_rule() -> String {
    format!("self.environment != 'prod' || {}", effective_failover())
}

/// CEL: the version, as given or defaulted from the engine (omitted engine means redis).
fn effective_version(obj: &str) -> String {
    let (redis, valkey) =
        (default_engine_version(Engine::Redis).as_str(), default_engine_version(Engine::Valkey).as_str());
    format!(
        "(has({obj}.engineVersion) ? {obj}.engineVersion : \
         (has({obj}.engine) && {obj}.engine == 'valkey' ? '{valkey}' : '{redis}'))"
    )
}

/// CEL (transition): the engine version, as given or defaulted, never goes down, across engines
/// too (every Valkey version is above every Redis OSS one).
pub fn engine_never_downgrades_rule() -> String {
    format!("double({}) >= double({})", effective_version("self"), effective_version("oldSelf"))
}

/// CEL: a given version belongs to the engine.
pub fn version_matches_engine_rule() -> String {
    let valkey: Vec<String> = EngineVersion::ALL
        .iter()
        .filter(|v| v.engine() == Engine::Valkey)
        .map(|v| format!("'{}'", v.as_str()))
        .collect();
    format!(
        "!has(self.engineVersion) || ((has(self.engine) && self.engine == 'valkey') == (self.engineVersion in [{}]))",
        valkey.join(", ")
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn presets_are_the_seeds() {
        assert_eq!(
            preset(Environment::Dev),
            Preset {
                node_type: "cache.t4g.micro",
                num_cache_nodes: 1,
                snapshot_retention_limit: 0,
                automatic_failover_enabled: false,
                encrypted: false
            }
        );
        assert_eq!(preset(Environment::Staging).node_type, "cache.t4g.small");
        assert_eq!(preset(Environment::Staging).num_cache_nodes, 2);
        assert_eq!(preset(Environment::Staging).snapshot_retention_limit, 3);
        assert!(preset(Environment::Staging).automatic_failover_enabled);
        let prod = preset(Environment::Prod);
        assert_eq!((prod.node_type, prod.num_cache_nodes, prod.snapshot_retention_limit), ("cache.m7g.large", 3, 7));
        assert!(prod.automatic_failover_enabled && prod.encrypted);
    }

    #[test]
    fn every_preset_satisfies_the_rules_it_feeds() {
        for env in Environment::ALL {
            let p = preset(env);
            assert!(!p.automatic_failover_enabled || p.num_cache_nodes >= 2, "{env:?}");
            assert!(env != Environment::Prod || p.automatic_failover_enabled);
        }
    }

    #[test]
    fn engine_rules_know_each_engines_versions_and_defaults() {
        assert_eq!(default_engine_version(Engine::Redis), EngineVersion::V7_1, "the seed's version");
        assert_eq!(default_engine_version(Engine::Valkey).engine(), Engine::Valkey);
        let matches = version_matches_engine_rule();
        assert!(matches.ends_with("in ['7.2', '8.0', '8.1', '8.2']))"), "{matches}");
        let downgrade = engine_never_downgrades_rule();
        assert!(downgrade.contains("oldSelf.engine == 'valkey' ? '8.2' : '7.1'"), "{downgrade}");
        // Every Valkey version is above every Redis OSS one, so the numeric rule allows the upgrade.
        let newest_redis = EngineVersion::ALL.iter().filter(|v| v.engine() == Engine::Redis).max().expect("redis");
        let oldest_valkey = EngineVersion::ALL.iter().filter(|v| v.engine() == Engine::Valkey).min().expect("valkey");
        let as_number = |v: &EngineVersion| v.as_str().parse::<f64>().expect("a number");
        assert!(as_number(oldest_valkey) > as_number(newest_redis));
    }

    #[test]
    fn rules_spell_out_each_presets_fallback() {
        let rule = failover_needs_nodes_rule();
        assert_eq!(
            rule,
            "!(has(self.automaticFailoverEnabled) ? self.automaticFailoverEnabled : \
             (self.environment == 'dev' ? false : (self.environment == 'staging' ? true : true))) || \
             (has(self.numCacheNodes) ? self.numCacheNodes : \
             (self.environment == 'dev' ? 1 : (self.environment == 'staging' ? 2 : 3))) >= 2"
        );
        assert!(
            prod_needs_failover_rule().starts_with("self.environment != 'prod' || (has(self.automaticFailoverEnabled)")
        );
    }
}
