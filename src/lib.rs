//! oms-data-operator: OMS Spider data-layer resources on Kubernetes, reconciled into
//! CloudFormation stacks.
//!
//! Each kind of data stack lives in a module of its own (today [`redis`]); the generic stack
//! lifecycle will grow beside it without Redis words in it.

pub mod redis;
