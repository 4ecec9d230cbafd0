//! oms-data-operator: OMS Spider data-layer resources on Kubernetes, reconciled into
//! CloudFormation stacks.
//!
//! [`stack`] is the generic lifecycle (CloudFormation, ownership, deletion policies, status and
//! Secret); each kind of data stack is one module beside it (today [`redis`]) that implements
//! [`stack::DataStack`].

pub mod controller;
pub mod crd;
pub mod error;
pub mod http;
pub mod leader;
pub mod metrics;
pub mod redis;
pub mod stack;
