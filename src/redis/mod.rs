//! The ElastiCache Redis data stack: its CloudFormation template and the names in it.

pub mod template;
