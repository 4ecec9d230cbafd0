//! The generic data-stack lifecycle: a namespaced resource becomes a CloudFormation stack, the
//! stack's settled outputs become status and a Secret, and deleting the resource does what its
//! deletion policy says. Nothing here knows Redis; a kind plugs in through [`DataStack`].
//!
//! The reconcile is a pipeline: read → validate and build the desired stack (pure, in the kind) →
//! decide (pure, [`plan`]) → act on AWS ([`cfn`]) → publish to Kubernetes ([`publish`]). The
//! [`reconcile`] entry sends each pass down the apply path or the deletion path (`apply`, `delete`).

pub mod accounts;
mod apply;
pub mod cfn;
pub mod changeset;
pub mod credential;
mod delete;
mod drift;
pub mod dynamodb;
pub mod elasticache;
pub mod endpoint;
pub mod kind;
mod outside;
pub mod ownership;
pub mod plan;
pub mod publish;
pub mod reconcile;
mod restore;
pub mod status;
pub mod survey;

pub use kind::{
    Advisory, BackupTarget, Credential, CredentialTarget, DataStack, DeletionPolicy, Desired, FailoverTarget, Probe,
    Published, RestoreSource, SpecError, Wanted,
};
