//! The environments' presets for a table: what an omitted field means in dev, staging and prod.
//!
//! The same table feeds the operator's parameter resolution and the CEL rules the apiserver
//! enforces, so a preset cannot say one thing in Rust and another in the schema.

use super::spec::BillingMode;
use crate::redis::Environment;
use crate::stack::DeletionPolicy;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Preset {
    pub billing_mode: BillingMode,
    pub point_in_time_recovery: bool,
    pub deletion_protection: bool,
    pub kms_encryption: bool,
    pub deletion_policy: DeletionPolicy,
}

pub const fn preset(env: Environment) -> Preset {
    match env {
        // Disposable: nothing kept when it goes.
        Environment::Dev => Preset {
            billing_mode: BillingMode::PAY_PER_REQUEST,
            point_in_time_recovery: false,
            deletion_protection: false,
            kms_encryption: false,
            deletion_policy: DeletionPolicy::Delete,
        },
        // Recoverable: continuous backups, and a backup taken before the table is deleted.
        Environment::Staging => Preset {
            billing_mode: BillingMode::PAY_PER_REQUEST,
            point_in_time_recovery: true,
            deletion_protection: false,
            kms_encryption: true,
            deletion_policy: DeletionPolicy::Snapshot,
        },
        // Never deleted through the operator: a protected table is retained with its data.
        Environment::Prod => Preset {
            billing_mode: BillingMode::PAY_PER_REQUEST,
            point_in_time_recovery: true,
            deletion_protection: true,
            kms_encryption: true,
            deletion_policy: DeletionPolicy::Retain,
        },
    }
}

/// A CEL expression for a spec field with its preset fallback.
fn effective(field: &str, value: impl Fn(Preset) -> String) -> String {
    Environment::cel_with_preset(field, |env| value(preset(env)))
}

fn policy_word(p: DeletionPolicy) -> &'static str {
    match p {
        DeletionPolicy::Delete => "Delete",
        DeletionPolicy::Retain => "Retain",
        DeletionPolicy::Snapshot => "Snapshot",
    }
}

/// Whether the table is protected from deletion, the preset filled in.
pub fn deletion_protection_cel() -> String {
    effective("deletionProtection", |p| p.deletion_protection.to_string())
}

/// The deletion policy, the preset filled in.
pub fn deletion_policy_cel() -> String {
    effective("deletionPolicy", |p| format!("'{}'", policy_word(p.deletion_policy)))
}

/// The message of the rule that a protected table is only retained (a CEL expression, so it can
/// name the environment's defaults).
pub const DELETION_POLICY_MESSAGE_CEL: &str = "'a table with deletion protection (on by default in prod) cannot be deleted by its stack, so deletionPolicy must be Retain (the default in prod). To delete the table when this resource goes, set deletionProtection: false (not in prod) and deletionPolicy Snapshot or Delete'";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prod_is_protected_and_retained_and_only_dev_deletes_by_default() {
        let prod = preset(Environment::Prod);
        assert!(prod.deletion_protection && prod.point_in_time_recovery && prod.kms_encryption);
        assert_eq!(prod.deletion_policy, DeletionPolicy::Retain);
        assert_eq!(preset(Environment::Staging).deletion_policy, DeletionPolicy::Snapshot);
        assert_eq!(preset(Environment::Dev).deletion_policy, DeletionPolicy::Delete);
        for env in Environment::ALL {
            let p = preset(env);
            assert!(!p.deletion_protection || p.deletion_policy == DeletionPolicy::Retain, "{env:?}");
        }
    }

    #[test]
    fn the_cel_fallbacks_follow_the_table() {
        assert_eq!(
            deletion_policy_cel(),
            "(has(self.deletionPolicy) ? self.deletionPolicy : (self.environment == 'dev' ? 'Delete' : \
             (self.environment == 'staging' ? 'Snapshot' : 'Retain')))"
        );
        assert!(deletion_protection_cel().contains("'staging' ? false : true"));
    }
}
