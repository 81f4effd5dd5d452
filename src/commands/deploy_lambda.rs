//! `lew deploy-lambda`: creates or updates the launcher function alone, for a quick redeploy
//! after a lew upgrade. The code is uploaded only when its hash changed. S3's permission to
//! invoke it is checked too, and that of each EventBridge rule there is: a function deleted by
//! hand loses them, and a recreated function without them would leave uploads and stopped
//! workers silently unanswered.

use std::fmt;

use anyhow::{Result, bail};
use serde::Serialize;

use super::Ctx;
use crate::output::Report;
use crate::resources::{Mode, Outcome, events, function, network, queue, trigger};

#[derive(Debug, Serialize)]
pub struct DeployReport {
    pub function: Outcome,
    pub permission: Outcome,
    /// The launcher's permissions for the EventBridge rules that exist.
    pub rule_permissions: Vec<Outcome>,
    pub code_sha256: String,
}

impl fmt::Display for DeployReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for o in [&self.function, &self.permission]
            .into_iter()
            .chain(&self.rule_permissions)
        {
            writeln!(f, "{} {} {}", o.verb(Mode::Apply), o.resource, o.name)?;
            for c in &o.changes {
                writeln!(f, "  - {c}")?;
            }
        }
        write!(f, "code sha256 {}", self.code_sha256)
    }
}

impl Report for DeployReport {}

pub async fn run(ctx: &Ctx) -> Result<DeployReport> {
    let d = ctx.deployment().await?;
    let Some(queue_url) = queue::url(&d, queue::Which::Jobs).await? else {
        bail!(
            "the job queue {} does not exist yet: run `lew setup` first",
            d.names.queue
        );
    };
    // Plan mode: deploy-lambda never creates the security group; setup does.
    let (_, net) = network::ensure(&d, Mode::Plan).await?;
    if net
        .security_groups
        .iter()
        .any(|g| g == network::TO_BE_CREATED)
    {
        bail!(
            "the security group {} does not exist yet: run `lew setup` first",
            d.names.security_group
        );
    }
    let function = function::ensure(&d, &queue_url, &net, Mode::Apply).await?;
    let (permission, rule_permissions) = futures::join!(
        trigger::ensure_permission(&d, Mode::Apply),
        events::ensure_permissions(&d)
    );
    Ok(DeployReport {
        function,
        permission: permission?,
        rule_permissions: rule_permissions?,
        code_sha256: crate::embedded::code_sha256(&crate::embedded::launcher_zip()),
    })
}
