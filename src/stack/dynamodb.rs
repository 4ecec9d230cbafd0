//! The AWS edge for DynamoDB: what a table says of itself (status, item count, size) and the
//! on-demand backups deletion policy Snapshot takes. Like [`super::elasticache`], every call has a
//! deadline and a static error category; answers that are part of a normal day (a table busy being
//! updated, a backup not listed yet) come back as values.

use super::cfn::{Ops, aws_error};
use super::elasticache::SnapshotStart;
use crate::error::{AwsCategory, Error, Result};
use aws_sdk_dynamodb::error::ProvideErrorMetadata;

/// The DynamoDB actions the operator calls (see [`super::cfn::ACTIONS`]).
pub const ACTIONS: [&str; 3] = ["DescribeTable", "CreateBackup", "ListBackups"];

/// A table as DescribeTable reports it. DynamoDB refreshes the item count and size about every six
/// hours, so both are estimates.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Table {
    /// `CREATING`, `ACTIVE`, `UPDATING`, `DELETING`, …
    pub status: String,
    pub item_count: Option<i64>,
    pub size_bytes: Option<i64>,
    pub billing_mode: Option<String>,
}

/// An on-demand backup as ListBackups reports it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Backup {
    pub name: String,
    pub arn: String,
    /// `CREATING`, `AVAILABLE` or `DELETED`.
    pub status: String,
    pub table_name: Option<String>,
}

impl Ops {
    /// The table of that name, `None` when there is none.
    pub async fn table(&self, name: &str) -> Result<Option<Table>> {
        let action = "DescribeTable";
        match self.call(action, self.clients.dynamodb.describe_table().table_name(name).send()).await? {
            Ok(out) => Ok(out.table().map(|t| Table {
                status: t.table_status().map(|s| s.as_str().to_string()).unwrap_or_default(),
                item_count: t.item_count(),
                size_bytes: t.table_size_bytes(),
                billing_mode: t.billing_mode_summary().and_then(|b| b.billing_mode()).map(|m| m.as_str().to_string()),
            })),
            Err(e) if e.code() == Some("ResourceNotFoundException") => Ok(None),
            Err(e) => Err(aws_error(action, &self.dynamodb, e)),
        }
    }

    /// Starts an on-demand backup of `table` named `name`. DynamoDB does not keep backup names
    /// unique, so a caller looks for its backup by name ([`Ops::table_backup`]) before it starts one.
    pub async fn create_table_backup(&self, table: &str, name: &str) -> Result<SnapshotStart> {
        let action = "CreateBackup";
        let req = self.clients.dynamodb.create_backup().table_name(table).backup_name(name).send();
        match self.call(action, req).await? {
            Ok(_) => Ok(SnapshotStart::Started),
            Err(e) => {
                let message = e.message().unwrap_or_default().to_string();
                match e.code() {
                    Some("TableNotFoundException" | "ResourceNotFoundException") => {
                        Ok(SnapshotStart::GroupGone(message))
                    }
                    // Being created, updated or already backed up, or backups not ready for a new table yet.
                    Some(
                        "TableInUseException"
                        | "BackupInUseException"
                        | "ContinuousBackupsUnavailableException"
                        | "LimitExceededException",
                    ) => Ok(SnapshotStart::Busy(message)),
                    _ => match aws_error(action, &self.dynamodb, e) {
                        err @ Error::Aws { category: AwsCategory::Transient | AwsCategory::Throttled, .. } => Err(err),
                        Error::Aws { message, .. } => Ok(SnapshotStart::Refused(message)),
                        other => Err(other),
                    },
                }
            }
        }
    }

    /// The newest on-demand backup of `table` named `name`, `None` when there is none.
    pub async fn table_backup(&self, table: &str, name: &str) -> Result<Option<Backup>> {
        let action = "ListBackups";
        let mut found: Option<(i64, Backup)> = None;
        let mut start: Option<String> = None;
        loop {
            let req = self
                .clients
                .dynamodb
                .list_backups()
                .table_name(table)
                .backup_type(aws_sdk_dynamodb::types::BackupTypeFilter::User)
                .set_exclusive_start_backup_arn(start.take())
                .send();
            let out = match self.call(action, req).await? {
                Ok(out) => out,
                Err(e) => return Err(aws_error(action, &self.dynamodb, e)),
            };
            for b in out.backup_summaries().iter().filter(|b| b.backup_name() == Some(name)) {
                let made = b.backup_creation_date_time().map(|t| t.secs()).unwrap_or_default();
                if found.as_ref().is_none_or(|(t, _)| made >= *t) {
                    let backup = Backup {
                        name: name.to_string(),
                        arn: b.backup_arn().unwrap_or_default().to_string(),
                        status: b.backup_status().map(|s| s.as_str().to_string()).unwrap_or_default(),
                        table_name: b.table_name().map(String::from),
                    };
                    found = Some((made, backup));
                }
            }
            match out.last_evaluated_backup_arn() {
                Some(next) if !next.is_empty() => start = Some(next.to_string()),
                _ => return Ok(found.map(|(_, b)| b)),
            }
        }
    }
}
