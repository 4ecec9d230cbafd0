//! oms-data-operator: OMS Spider data-layer resources on Kubernetes, reconciled into
//! CloudFormation stacks.
//!
//! [`stack`] is the generic lifecycle (CloudFormation, ownership, deletion policies, status and
//! Secret); each kind of data stack is one module beside it ([`redis`], [`dynamo`]) that implements
//! [`stack::DataStack`].

pub mod backup;
pub mod budget;
pub mod context;
pub mod controller;
pub mod crd;
pub mod dynamo;
pub mod error;
pub mod failover;
pub mod http;
pub mod leader;
pub mod metrics;
pub mod operation;
pub mod redis;
pub mod render;
pub mod source;
pub mod stack;

/// A file of this repository, for tests. Cargo sets CARGO_MANIFEST_DIR when it runs tests, so a
/// test binary reused from another checkout (a shared target dir) still reads this checkout.
#[cfg(test)]
pub(crate) fn repo_file(relative: &str) -> std::path::PathBuf {
    let root = std::env::var("CARGO_MANIFEST_DIR").unwrap_or_else(|_| env!("CARGO_MANIFEST_DIR").to_string());
    std::path::Path::new(&root).join(relative)
}
