//! The AWS edge for CloudFormation: stack operations, the clients of every region and account, and
//! how AWS failures become messages ([`super::elasticache`] is the ElastiCache side). Every call has a deadline (the SDK's operation timeout and a tokio timeout around
//! it) and maps failures to a static [`AwsCategory`].

use super::accounts::{AssumedRole, Role};
use super::survey::{Seen, Summary, Survey};
use crate::error::{AwsCategory, Error, Result};
use aws_credential_types::provider::SharedCredentialsProvider;
use aws_sdk_cloudformation::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_cloudformation::types::{Parameter, Stack, Tag};
use std::collections::{BTreeMap, HashMap};
use std::sync::Mutex;
use std::time::Duration;

/// Every AWS action the operator itself calls, as `service:Action` (CloudFormation makes the
/// stack's resources with the caller's permissions too; docs/iam-policy.json grants both, and a
/// test holds it to this list).
pub const ACTIONS: [&str; 29] = [
    "cloudformation:CreateStack",
    "cloudformation:UpdateStack",
    "cloudformation:CreateChangeSet",
    "cloudformation:DescribeChangeSet",
    "cloudformation:ExecuteChangeSet",
    "cloudformation:DeleteChangeSet",
    "cloudformation:ListChangeSets",
    "cloudformation:ContinueUpdateRollback",
    "cloudformation:DeleteStack",
    "cloudformation:DescribeStacks",
    "cloudformation:ListStacks",
    "cloudformation:DescribeStackEvents",
    "cloudformation:GetTemplate",
    "cloudformation:DetectStackDrift",
    "cloudformation:DescribeStackDriftDetectionStatus",
    "cloudformation:DescribeStackResourceDrifts",
    "elasticache:CreateSnapshot",
    // Not called by itself: CreateSnapshot with tags needs it.
    "elasticache:AddTagsToResource",
    "elasticache:DescribeSnapshots",
    "elasticache:DeleteSnapshot",
    "elasticache:ListTagsForResource",
    "elasticache:ModifyReplicationGroup",
    "elasticache:DescribeReplicationGroups",
    "elasticache:TestFailover",
    "elasticache:DescribeEvents",
    "dynamodb:DescribeTable",
    "dynamodb:CreateBackup",
    "dynamodb:ListBackups",
    "sts:AssumeRole",
];

/// A stack as CloudFormation reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ObservedStack {
    pub id: String,
    pub status: String,
    pub status_reason: Option<String>,
    pub tags: BTreeMap<String, String>,
    pub outputs: BTreeMap<String, String>,
    pub parameters: BTreeMap<String, String>,
    /// When a deleted stack was deleted (CloudFormation answers for a deleted stack by its id).
    pub deletion_time: Option<String>,
    /// When the stack was last updated (by anyone); absent for a stack never updated.
    pub last_updated: Option<String>,
}

/// What UpdateStack did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UpdateOutcome {
    Started,
    /// "No updates are to be performed.": the stack already is what was asked.
    NoChange,
}

/// Clients for one region.
#[derive(Clone)]
pub struct RegionClients {
    pub cloudformation: aws_sdk_cloudformation::Client,
    pub elasticache: aws_sdk_elasticache::Client,
    pub dynamodb: aws_sdk_dynamodb::Client,
}

/// Where clients act: a region, and the role to assume (none: the operator's own account).
type ClientKey = (String, Option<Role>);

/// What one account and region has: its clients, the role's credentials, and the shared polling.
type AtPlace = (RegionClients, Option<AssumedRole>, std::sync::Arc<Survey>);

/// AWS clients, one set per region and account, all from one base configuration (the default
/// credential chain in production, so IRSA works; an endpoint override only for emulators). Another
/// account is reached through a role the resource's namespace names (see [`super::accounts`]).
pub struct Aws {
    metrics: std::sync::Arc<crate::metrics::Metrics>,
    budget: std::sync::Arc<crate::budget::Budget>,
    base: aws_config::SdkConfig,
    default_region: Option<String>,
    by_place: Mutex<HashMap<ClientKey, AtPlace>>,
    /// Stacks whose summary changed in any account's or region's sweep (see [`super::survey`]).
    changed: tokio::sync::broadcast::Sender<String>,
    deadline: Duration,
}

impl Aws {
    pub fn new(
        base: aws_config::SdkConfig,
        deadline: Duration,
        metrics: std::sync::Arc<crate::metrics::Metrics>,
    ) -> Aws {
        let default_region = base.region().map(|r| r.to_string());
        let budget = std::sync::Arc::new(crate::budget::Budget::unlimited());
        let (changed, _) = tokio::sync::broadcast::channel(4096);
        Aws { metrics, budget, base, default_region, by_place: Mutex::new(HashMap::new()), deadline, changed }
    }

    /// Clients for `region` (or the operator's default region), in the operator's own account or,
    /// with `role`, in the role's. A role that cannot be assumed is an error in STS's words.
    pub async fn clients(&self, region: Option<&str>, role: Option<&Role>) -> Result<Ops> {
        let region = region
            .map(str::to_string)
            .or_else(|| self.default_region.clone())
            .ok_or_else(|| Error::Internal("no AWS region: set spec.region, --region or AWS_REGION".into()))?;
        let endpoint = |service: &str| {
            self.base
                .endpoint_url()
                .map(str::to_string)
                .unwrap_or_else(|| format!("https://{service}.{region}.amazonaws.com"))
        };
        let (clients, assumed, survey) = {
            let mut map = self.by_place.lock().map_err(|_| Error::Internal("AWS client cache poisoned".into()))?;
            map.entry((region.clone(), role.cloned()))
                .or_insert_with(|| {
                    let regional = || self.base.to_builder().region(aws_config::Region::new(region.clone()));
                    let assumed = role.map(|r| AssumedRole::new(r.clone(), &regional().build()));
                    let conf = match &assumed {
                        Some(a) => regional().credentials_provider(SharedCredentialsProvider::new(a.clone())).build(),
                        None => regional().build(),
                    };
                    let clients = RegionClients {
                        cloudformation: aws_sdk_cloudformation::Client::new(&conf),
                        elasticache: aws_sdk_elasticache::Client::new(&conf),
                        dynamodb: aws_sdk_dynamodb::Client::new(&conf),
                    };
                    (clients, assumed, std::sync::Arc::new(Survey::new(self.changed.clone())))
                })
                .clone()
        };
        // Asked before any call, so a refusal is STS's own answer, not a failed CloudFormation call.
        if let Some(a) = &assumed {
            let sts = Place { service: "STS", endpoint: endpoint("sts") };
            let outcome = tokio::time::timeout(self.deadline, a.credentials(&sts, &self.metrics)).await;
            outcome.map_err(|_| Error::Timeout { action: "AssumeRole", after: self.deadline })??;
        }
        Ok(Ops {
            cloudformation: Place { service: "CloudFormation", endpoint: endpoint("cloudformation") },
            elasticache: Place { service: "ElastiCache", endpoint: endpoint("elasticache") },
            dynamodb: Place { service: "DynamoDB", endpoint: endpoint("dynamodb") },
            region,
            clients,
            deadline: self.deadline,
            metrics: self.metrics.clone(),
            budget: self.budget.clone(),
            survey,
        })
    }

    /// Every AWS call this process makes takes a token of `budget` first.
    pub fn with_budget(mut self, budget: crate::budget::Budget) -> Aws {
        self.budget = std::sync::Arc::new(budget);
        self
    }

    /// Names of stacks whose summary just changed in a shared sweep.
    pub fn stack_changes(&self) -> tokio::sync::broadcast::Receiver<String> {
        self.changed.subscribe()
    }

    /// The process-wide AWS call budget.
    pub fn budget(&self) -> &crate::budget::Budget {
        &self.budget
    }

    /// The region a resource's stack goes to: its own, else the operator's default.
    pub fn region_for(&self, region: Option<&str>) -> Option<String> {
        region.map(str::to_string).or_else(|| self.default_region.clone())
    }
}

/// Stack and backup operations against one region.
pub struct Ops {
    pub region: String,
    pub(super) cloudformation: Place,
    pub(super) elasticache: Place,
    pub(super) dynamodb: Place,
    pub(super) clients: RegionClients,
    deadline: Duration,
    metrics: std::sync::Arc<crate::metrics::Metrics>,
    budget: std::sync::Arc<crate::budget::Budget>,
    pub(super) survey: std::sync::Arc<Survey>,
}

pub(crate) fn categorize<E: ProvideErrorMetadata, R>(err: &SdkError<E, R>) -> AwsCategory {
    match err {
        SdkError::TimeoutError(_) | SdkError::DispatchFailure(_) | SdkError::ResponseError(_) => AwsCategory::Transient,
        _ => match err.code() {
            Some("Throttling" | "ThrottlingException" | "RequestLimitExceeded" | "TooManyRequestsException") => {
                AwsCategory::Throttled
            }
            Some(
                "ValidationError" | "ValidationException" | "InvalidParameterValue" | "InvalidParameterCombination",
            ) => AwsCategory::Validation,
            Some(c) if c.starts_with("AccessDenied") || c == "UnauthorizedOperation" => AwsCategory::AccessDenied,
            Some(c) if c.ends_with("NotFoundFault") || c.ends_with("NotFound") || c.ends_with("NotFoundException") => {
                AwsCategory::NotFound
            }
            Some("InternalFailure" | "ServiceUnavailable" | "InternalServerError") => AwsCategory::Transient,
            _ => AwsCategory::Other,
        },
    }
}

/// The innermost cause of an error, as its own text (e.g. "Connection refused (os error 111)").
fn root_cause(err: &(dyn std::error::Error + 'static)) -> String {
    let mut cause = err;
    while let Some(next) = cause.source() {
        cause = next;
    }
    cause.to_string()
}

/// An AWS failure in words: AWS's own message when it answered, else what happened on the way
/// there, naming the service and endpoint, never the SDK's debug structures.
pub(crate) fn aws_error<E, R>(action: &'static str, place: &Place, err: SdkError<E, R>) -> Error
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
    R: std::fmt::Debug + 'static,
{
    let category = categorize(&err);
    let Place { service, endpoint } = place;
    let message = match &err {
        SdkError::DispatchFailure(d) => {
            let what = if d.is_timeout() {
                "the connection timed out".to_string()
            } else {
                d.as_connector_error().map(|c| root_cause(c)).unwrap_or_else(|| root_cause(&err)).to_lowercase()
            };
            format!("could not reach AWS {service} at {endpoint} ({what}); the operator retries")
        }
        SdkError::TimeoutError(_) => {
            format!("AWS {service} at {endpoint} did not answer in time; the operator retries")
        }
        SdkError::ResponseError(_) => {
            format!("AWS {service} at {endpoint} sent an answer that could not be read; the operator retries")
        }
        _ => match err.message() {
            Some(m) => m.to_string(),
            None => format!("AWS {service} at {endpoint} answered {}", err.code().unwrap_or("an error without a code")),
        },
    };
    Error::Aws { action, category, message }
}

/// Which AWS service and endpoint a call went to, for messages.
#[derive(Debug, Clone)]
pub(crate) struct Place {
    pub service: &'static str,
    pub endpoint: String,
}

fn is_missing_stack<E: ProvideErrorMetadata, R>(err: &SdkError<E, R>) -> bool {
    err.code() == Some("ValidationError") && err.message().is_some_and(|m| m.contains("does not exist"))
}

fn observed(stack: &Stack) -> ObservedStack {
    ObservedStack {
        id: stack.stack_id().unwrap_or_default().to_string(),
        status: stack.stack_status().map(|s| s.as_str().to_string()).unwrap_or_default(),
        status_reason: stack.stack_status_reason().map(str::to_string),
        tags: stack.tags().iter().filter_map(|t| Some((t.key()?.to_string(), t.value()?.to_string()))).collect(),
        outputs: stack
            .outputs()
            .iter()
            .filter_map(|o| Some((o.output_key()?.to_string(), o.output_value()?.to_string())))
            .collect(),
        parameters: stack
            .parameters()
            .iter()
            .filter_map(|p| Some((p.parameter_key()?.to_string(), p.parameter_value()?.to_string())))
            .collect(),
        deletion_time: stack.deletion_time().map(|t| t.to_string()),
        last_updated: stack.last_updated_time().map(|t| t.to_string()),
    }
}

fn sdk_parameters(params: &BTreeMap<String, String>) -> Vec<Parameter> {
    params.iter().map(|(k, v)| Parameter::builder().parameter_key(k).parameter_value(v).build()).collect()
}

/// An update's parameters: `params` as given, and those named in `keep` at the stack's own value
/// (a NoEcho password, which the operator never sends twice).
pub(super) fn update_parameters(params: &BTreeMap<String, String>, keep: &[&str]) -> Vec<Parameter> {
    let mut parameters = sdk_parameters(params);
    parameters.extend(keep.iter().map(|k| Parameter::builder().parameter_key(*k).use_previous_value(true).build()));
    parameters
}

pub(super) fn sdk_tags(tags: &BTreeMap<String, String>) -> Vec<Tag> {
    tags.iter().map(|(k, v)| Tag::builder().key(k).value(v).build()).collect()
}

impl Ops {
    pub(super) async fn call<T, E, R>(
        &self,
        action: &'static str,
        fut: impl std::future::Future<Output = std::result::Result<T, SdkError<E, R>>>,
    ) -> Result<std::result::Result<T, SdkError<E, R>>>
    where
        E: ProvideErrorMetadata,
    {
        let service = if super::elasticache::ACTIONS.contains(&action) {
            "elasticache"
        } else if super::dynamodb::ACTIONS.contains(&action) {
            "dynamodb"
        } else {
            "cloudformation"
        };
        // The request is sent when the future is first polled: after its token.
        let waited = self.budget.acquire().await;
        let result = tokio::time::timeout(self.deadline, fut).await;
        let outcome = match &result {
            Err(_) => "timeout",
            Ok(Ok(_)) => "success",
            Ok(Err(e)) => categorize(e).label(),
        };
        match &result {
            Ok(Ok(_)) => self.budget.succeeded(),
            Ok(Err(e)) if categorize(e) == AwsCategory::Throttled => self.budget.throttled(),
            Ok(Err(e)) if categorize(e) == AwsCategory::Transient => self.budget.unreachable(),
            Err(_) => self.budget.unreachable(),
            _ => {}
        }
        self.metrics.aws_budget(self.budget.rate(), waited);
        debug_assert!(
            ACTIONS.contains(&format!("{service}:{action}").as_str()),
            "{service}:{action} is not in ACTIONS"
        );
        self.metrics.aws_call(service, action, outcome);
        result.map_err(|_| Error::Timeout { action, after: self.deadline })
    }

    /// The stack by name or id, as the shared sweep ([`super::survey`]) knows it when it can tell
    /// from a sweep no older than `within`, else as DescribeStacks answers.
    pub async fn observe(&self, stack: &str, within: Duration) -> Result<Option<ObservedStack>> {
        match self.survey.look(self, stack, within).await {
            Seen::Stack(s) => Ok(Some(s)),
            Seen::Absent => Ok(None),
            Seen::Ask => self.describe(stack).await,
            Seen::Unreachable(e) => Err(e),
        }
    }

    /// How long to wait before trying again during an AWS outage (see [`crate::budget::Budget::outage_delay`]).
    pub fn outage_delay(&self, fastest: Duration, slowest: Duration) -> Duration {
        self.budget.outage_delay(fastest, slowest)
    }

    /// The stack by name or id, read now; `None` when CloudFormation has no live stack by that name.
    pub async fn describe(&self, stack: &str) -> Result<Option<ObservedStack>> {
        let action = "DescribeStacks";
        match self.call(action, self.clients.cloudformation.describe_stacks().stack_name(stack).send()).await? {
            Ok(out) => {
                let seen = out.stacks().first().map(observed);
                if let Some(s) = &seen {
                    self.survey.described(s);
                }
                Ok(seen)
            }
            Err(e) if is_missing_stack(&e) => Ok(None),
            Err(e) => Err(aws_error(action, &self.cloudformation, e)),
        }
    }

    /// Every stack of the account and region that is not deleted, by name, page by page.
    pub(super) async fn list_live_stacks(&self) -> Result<Vec<(String, Summary)>> {
        use aws_sdk_cloudformation::types::StackStatus;
        let action = "ListStacks";
        let live: Vec<StackStatus> =
            StackStatus::values().iter().filter(|s| **s != "DELETE_COMPLETE").map(|s| StackStatus::from(*s)).collect();
        let mut stacks = Vec::new();
        let mut token: Option<String> = None;
        loop {
            let req = self
                .clients
                .cloudformation
                .list_stacks()
                .set_stack_status_filter(Some(live.clone()))
                .set_next_token(token.take())
                .send();
            let out = match self.call(action, req).await? {
                Ok(out) => out,
                Err(e) => return Err(aws_error(action, &self.cloudformation, e)),
            };
            stacks.extend(out.stack_summaries().iter().filter_map(|s| {
                let summary = Summary {
                    id: s.stack_id()?.to_string(),
                    status: s.stack_status()?.as_str().to_string(),
                    status_reason: s.stack_status_reason().map(str::to_string),
                    last_updated: s.last_updated_time().map(|t| t.to_string()),
                };
                Some((s.stack_name()?.to_string(), summary))
            }));
            match out.next_token() {
                Some(t) if !t.is_empty() => token = Some(t.to_string()),
                _ => return Ok(stacks),
            }
        }
    }

    /// Creates the stack; its id, or `None` when a stack of that name already exists (a create that
    /// raced ours, or an earlier attempt of ours: the next describe sorts it out).
    pub async fn create(
        &self,
        stack: &str,
        template: &str,
        params: &BTreeMap<String, String>,
        tags: &BTreeMap<String, String>,
        token: &str,
    ) -> Result<Option<String>> {
        let action = "CreateStack";
        let req = self
            .clients
            .cloudformation
            .create_stack()
            .stack_name(stack)
            .template_body(template)
            .set_parameters(Some(sdk_parameters(params)))
            .set_tags(Some(sdk_tags(tags)))
            .client_request_token(token)
            .send();
        match self.call(action, req).await? {
            Ok(out) => {
                let id = out.stack_id().map(str::to_string);
                if let Some(id) = &id {
                    self.survey.created(id, tags);
                }
                Ok(id)
            }
            Err(e) if e.code() == Some("AlreadyExistsException") => Ok(None),
            Err(e) => Err(aws_error(action, &self.cloudformation, e)),
        }
    }

    /// The template the stack runs with, parsed; `None` when it is not JSON (a YAML template,
    /// which the operator never sends).
    pub async fn template(&self, stack_id: &str) -> Result<Option<serde_json::Value>> {
        let action = "GetTemplate";
        match self.call(action, self.clients.cloudformation.get_template().stack_name(stack_id).send()).await? {
            Ok(out) => Ok(out.template_body().and_then(|b| serde_json::from_str(b).ok())),
            Err(e) => Err(aws_error(action, &self.cloudformation, e)),
        }
    }

    /// Starts CloudFormation drift detection of the stack's resources; the detection's id.
    pub async fn detect_drift(&self, stack_id: &str) -> Result<String> {
        let action = "DetectStackDrift";
        match self.call(action, self.clients.cloudformation.detect_stack_drift().stack_name(stack_id).send()).await? {
            Ok(out) => out
                .stack_drift_detection_id()
                .map(str::to_string)
                .ok_or_else(|| Error::Internal("DetectStackDrift answered without an id".into())),
            Err(e) => Err(aws_error(action, &self.cloudformation, e)),
        }
    }

    /// Where a drift detection stands: `None` while it runs, else whether the stack drifted (or
    /// why the detection failed).
    pub async fn drift_detection(&self, detection_id: &str) -> Result<Option<std::result::Result<bool, String>>> {
        let action = "DescribeStackDriftDetectionStatus";
        let req =
            self.clients.cloudformation.describe_stack_drift_detection_status().stack_drift_detection_id(detection_id);
        let out = match self.call(action, req.send()).await? {
            Ok(out) => out,
            Err(e) => return Err(aws_error(action, &self.cloudformation, e)),
        };
        use aws_sdk_cloudformation::types::{StackDriftDetectionStatus as D, StackDriftStatus as S};
        Ok(match out.detection_status() {
            Some(D::DetectionInProgress) => None,
            Some(D::DetectionComplete) => Some(Ok(out.stack_drift_status() == Some(&S::Drifted))),
            _ => Some(Err(out.detection_status_reason().unwrap_or("drift detection failed").to_string())),
        })
    }

    /// The drifted resources of the last completed detection, each with its property differences,
    /// as `<LogicalId>: <property> is <actual> in AWS, the stack says <expected>`.
    pub async fn resource_drifts(&self, stack_id: &str) -> Result<Vec<String>> {
        use aws_sdk_cloudformation::types::StackResourceDriftStatus as R;
        let action = "DescribeStackResourceDrifts";
        let req = self
            .clients
            .cloudformation
            .describe_stack_resource_drifts()
            .stack_name(stack_id)
            .stack_resource_drift_status_filters(R::Modified)
            .stack_resource_drift_status_filters(R::Deleted);
        let out = match self.call(action, req.send()).await? {
            Ok(out) => out,
            Err(e) => return Err(aws_error(action, &self.cloudformation, e)),
        };
        Ok(out
            .stack_resource_drifts()
            .iter()
            .flat_map(|d| {
                let id = d.logical_resource_id().unwrap_or_default().to_string();
                if d.stack_resource_drift_status() == Some(&R::Deleted) {
                    return vec![format!("{id}: deleted outside CloudFormation")];
                }
                d.property_differences()
                    .iter()
                    .map(|p| {
                        let path = p.property_path().unwrap_or_default().trim_start_matches('/');
                        let (actual, expected) =
                            (p.actual_value().unwrap_or("null"), p.expected_value().unwrap_or("null"));
                        format!("{id}: {path} is {actual} in AWS, the stack says {expected}")
                    })
                    .collect()
            })
            .collect())
    }

    /// Continues the rollback of a failed update (UPDATE_ROLLBACK_FAILED), skipping nothing.
    pub async fn continue_rollback(&self, stack_id: &str, token: &str) -> Result<()> {
        let action = "ContinueUpdateRollback";
        let req = self
            .clients
            .cloudformation
            .continue_update_rollback()
            .stack_name(stack_id)
            .client_request_token(token)
            .send();
        match self.call(action, req).await? {
            Ok(_) => {
                self.survey.wrote(stack_id, "UPDATE_ROLLBACK_IN_PROGRESS");
                Ok(())
            }
            Err(e) => Err(aws_error(action, &self.cloudformation, e)),
        }
    }

    /// Replaces the stack's tags and nothing else (used to mark a retained stack orphaned).
    pub async fn retag(
        &self,
        stack: &ObservedStack,
        tags: &BTreeMap<String, String>,
        token: &str,
    ) -> Result<UpdateOutcome> {
        let action = "UpdateStack";
        let keep: Vec<Parameter> = stack
            .parameters
            .keys()
            .map(|k| Parameter::builder().parameter_key(k).use_previous_value(true).build())
            .collect();
        let req = self
            .clients
            .cloudformation
            .update_stack()
            .stack_name(&stack.id)
            .use_previous_template(true)
            .set_parameters(Some(keep))
            .set_tags(Some(sdk_tags(tags)))
            .client_request_token(token)
            .send();
        let outcome = self.update_outcome(action, req).await?;
        if outcome == UpdateOutcome::Started {
            self.survey.wrote(&stack.id, "UPDATE_IN_PROGRESS");
        }
        Ok(outcome)
    }

    async fn update_outcome<T, E, R>(
        &self,
        action: &'static str,
        req: impl std::future::Future<Output = std::result::Result<T, SdkError<E, R>>>,
    ) -> Result<UpdateOutcome>
    where
        E: ProvideErrorMetadata + std::error::Error + 'static,
        R: std::fmt::Debug + 'static,
    {
        match self.call(action, req).await? {
            Ok(_) => Ok(UpdateOutcome::Started),
            Err(e) if e.code() == Some("ValidationError") && e.message() == Some("No updates are to be performed.") => {
                Ok(UpdateOutcome::NoChange)
            }
            Err(e) => Err(aws_error(action, &self.cloudformation, e)),
        }
    }

    pub async fn delete(&self, stack_id: &str, token: &str) -> Result<()> {
        let action = "DeleteStack";
        let req = self.clients.cloudformation.delete_stack().stack_name(stack_id).client_request_token(token).send();
        match self.call(action, req).await? {
            Ok(_) => {
                self.survey.wrote(stack_id, "DELETE_IN_PROGRESS");
                Ok(())
            }
            Err(e) => Err(aws_error(action, &self.cloudformation, e)),
        }
    }

    /// The first failure of the stack's latest operation: `<LogicalId>: <ResourceStatusReason>`.
    pub async fn first_failure(&self, stack_id: &str) -> Result<Option<String>> {
        Ok(first_failure(&self.events(stack_id).await?))
    }

    /// Why the latest rollback failed (of a stack in UPDATE_ROLLBACK_FAILED): the first failure
    /// since the rollback began, not the update's that caused it.
    pub async fn rollback_failure(&self, stack_id: &str) -> Result<Option<String>> {
        Ok(failure_since(&self.events(stack_id).await?, &["UPDATE_ROLLBACK_IN_PROGRESS"]))
    }

    async fn events(&self, stack_id: &str) -> Result<Vec<Event>> {
        let action = "DescribeStackEvents";
        let out = match self
            .call(action, self.clients.cloudformation.describe_stack_events().stack_name(stack_id).send())
            .await?
        {
            Ok(out) => out,
            Err(e) => return Err(aws_error(action, &self.cloudformation, e)),
        };
        let events = out
            .stack_events()
            .iter()
            .map(|e| Event {
                logical_id: e.logical_resource_id().unwrap_or_default().to_string(),
                is_stack: e.resource_type() == Some("AWS::CloudFormation::Stack"),
                status: e.resource_status().map(|s| s.as_str().to_string()).unwrap_or_default(),
                reason: e.resource_status_reason().map(str::to_string),
            })
            .collect();
        Ok(events)
    }
}

/// A stack event, reduced to what failure reporting needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Event {
    pub logical_id: String,
    pub is_stack: bool,
    pub status: String,
    pub reason: Option<String>,
}

/// From events newest first (as CloudFormation lists them): the oldest failed resource of the
/// latest operation, which is the cause; later failures are usually its consequences.
pub fn first_failure(events_newest_first: &[Event]) -> Option<String> {
    failure_since(events_newest_first, &["CREATE_IN_PROGRESS", "UPDATE_IN_PROGRESS", "DELETE_IN_PROGRESS"])
}

/// The oldest failed resource since the newest stack-level event whose status is in `opening`.
fn failure_since(events_newest_first: &[Event], opening: &[&str]) -> Option<String> {
    let opens = |e: &Event| e.is_stack && opening.contains(&e.status.as_str());
    let end = events_newest_first.iter().position(opens).unwrap_or(events_newest_first.len());
    let latest = &events_newest_first[..end];
    let failed = |e: &&Event| e.status.ends_with("_FAILED") && e.reason.as_deref().is_some_and(|r| !r.is_empty());
    latest
        .iter()
        .rev()
        .filter(failed)
        .find(|e| !e.is_stack)
        .or_else(|| latest.iter().rev().find(failed))
        .map(|e| format!("{}: {}", e.logical_id, e.reason.as_deref().unwrap_or_default()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ev(logical: &str, is_stack: bool, status: &str, reason: Option<&str>) -> Event {
        Event { logical_id: logical.into(), is_stack, status: status.into(), reason: reason.map(String::from) }
    }

    #[test]
    fn the_documented_iam_policy_grants_every_action_the_operator_calls() {
        let path = crate::repo_file("docs/iam-policy.json");
        let policy: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(path).expect("the policy exists")).expect("JSON");
        let granted: Vec<String> = policy["Statement"]
            .as_array()
            .expect("statements")
            .iter()
            .filter(|s| s["Effect"] == "Allow" && s.get("Condition").is_none())
            .flat_map(|s| s["Action"].as_array().cloned().unwrap_or_default())
            .filter_map(|a| a.as_str().map(String::from))
            .collect();
        for action in ACTIONS {
            assert!(granted.iter().any(|g| g == action), "{action} is not granted unconditionally");
        }
    }

    #[test]
    fn first_failure_is_the_oldest_failed_resource_of_the_latest_operation() {
        // Newest first, as CloudFormation lists them.
        let events = vec![
            ev("s", true, "ROLLBACK_COMPLETE", None),
            ev("Sg", false, "DELETE_COMPLETE", None),
            ev("s", true, "ROLLBACK_IN_PROGRESS", Some("The following resource(s) failed to create: [Rg].")),
            ev("Alarm", false, "CREATE_FAILED", Some("Resource creation cancelled")),
            ev("Rg", false, "CREATE_FAILED", Some("node type not available")),
            ev("Rg", false, "CREATE_IN_PROGRESS", None),
            ev("s", true, "CREATE_IN_PROGRESS", Some("User Initiated")),
            // An older operation's failure must not be reported.
            ev("Old", false, "UPDATE_FAILED", Some("stale")),
            ev("s", true, "UPDATE_IN_PROGRESS", Some("User Initiated")),
        ];
        assert_eq!(first_failure(&events).as_deref(), Some("Rg: node type not available"));
    }

    #[test]
    fn a_stack_level_failure_is_reported_when_no_resource_failed() {
        let events = vec![
            ev("s", true, "DELETE_FAILED", Some("Export s-Out cannot be deleted as it is in use")),
            ev("s", true, "DELETE_IN_PROGRESS", Some("User Initiated")),
        ];
        assert_eq!(first_failure(&events).as_deref(), Some("s: Export s-Out cannot be deleted as it is in use"));
        assert_eq!(first_failure(&[ev("s", true, "CREATE_COMPLETE", None)]), None);
    }
}
