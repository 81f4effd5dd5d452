//! Where the worker tasks run: the subnets (configured, or the default VPC's default subnets)
//! and the security group `lew-<app>-worker`, which allows outbound traffic only (a worker
//! listens on nothing; it pulls its image and talks to SQS and S3).
//!
//! EC2 models no typed errors, so its error codes are matched with `ProvideErrorMetadata::code`.

use std::time::Duration;

use anyhow::{Context as _, Result, bail};
use aws_sdk_ec2::error::ProvideErrorMetadata as _;
use aws_sdk_ec2::types::{
    Filter, IpPermission, IpRange, ResourceType, SecurityGroup, Tag, TagSpecification,
};
use serde::Serialize;

use super::{Deployment, Mode, Outcome, Removal, Removed, not_ours};
use crate::error::UsageError;

/// What this resource is called in reports.
pub const KIND: &str = "security group";

/// Shown in place of a security group id that a plan would create.
pub const TO_BE_CREATED: &str = "(to be created)";

/// The network configuration handed to the launcher for RunTask.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Network {
    pub vpc_id: String,
    pub subnets: Vec<String>,
    pub security_groups: Vec<String>,
}

fn filter(name: &str, value: &str) -> Filter {
    Filter::builder().name(name).values(value).build()
}

/// The subnets the tasks use and their VPC.
pub async fn subnets(d: &Deployment) -> Result<(String, Vec<String>)> {
    let ec2 = &d.aws.ec2;
    let region = &d.aws.region;
    if !d.cfg.network.subnets.is_empty() {
        let out = ec2
            .describe_subnets()
            .set_subnet_ids(Some(d.cfg.network.subnets.clone()))
            .send()
            .await
            .map_err(|e| {
                if e.code() == Some("InvalidSubnetID.NotFound") {
                    anyhow::Error::new(UsageError::new(format!(
                        "network.subnets in lew.toml names a subnet that does not exist in \
                         {region}: {}",
                        e.message().unwrap_or_default()
                    )))
                } else {
                    anyhow::Error::new(e).context("cannot look up the configured subnets")
                }
            })?;
        let vpcs: std::collections::BTreeSet<&str> =
            out.subnets().iter().filter_map(|s| s.vpc_id()).collect();
        if vpcs.len() != 1 {
            return Err(UsageError::new(format!(
                "network.subnets in lew.toml must all be in one VPC (found {})",
                vpcs.into_iter().collect::<Vec<_>>().join(", ")
            ))
            .into());
        }
        let vpc = vpcs.into_iter().next().unwrap_or_default().to_string();
        return Ok((vpc, d.cfg.network.subnets.clone()));
    }

    // Default subnets exist only in the default VPC: one call finds both.
    let out = ec2
        .describe_subnets()
        .filters(filter("default-for-az", "true"))
        .send()
        .await
        .context("cannot list the default VPC's subnets")?;
    let mut found: Vec<(String, String)> = out
        .subnets()
        .iter()
        .filter_map(|s| Some((s.vpc_id()?.to_string(), s.subnet_id()?.to_string())))
        .collect();
    found.sort();
    let Some(vpc) = found.first().map(|(vpc, _)| vpc.clone()) else {
        let default_vpc = ec2
            .describe_vpcs()
            .filters(filter("is-default", "true"))
            .send()
            .await
            .context("cannot look up the default VPC")?;
        match default_vpc.vpcs().first().and_then(|v| v.vpc_id()) {
            Some(vpc) => bail!(
                "the default VPC {vpc} in {region} has no default subnets: set network.subnets \
                 in lew.toml"
            ),
            None => bail!(
                "there is no default VPC in {region}: set network.subnets (and, if you like, \
                 network.security_groups) in lew.toml to where the worker tasks should run"
            ),
        }
    };
    let ids = found
        .into_iter()
        .filter(|(v, _)| *v == vpc)
        .map(|(_, id)| id)
        .collect();
    Ok((vpc, ids))
}

/// The groups named like lew's worker group, in any VPC (read while the subnets are found).
async fn groups_named(d: &Deployment) -> Result<Vec<SecurityGroup>> {
    let out = d
        .aws
        .ec2
        .describe_security_groups()
        .filters(filter("group-name", &d.names.security_group))
        .send()
        .await
        .with_context(|| format!("cannot look up security group {}", d.names.security_group))?;
    Ok(out.security_groups.unwrap_or_default())
}

/// The security groups `network.security_groups` names (read while the subnets are found).
async fn configured_groups(d: &Deployment) -> Result<Vec<SecurityGroup>> {
    let region = &d.aws.region;
    let out = d
        .aws
        .ec2
        .describe_security_groups()
        .set_group_ids(Some(d.cfg.network.security_groups.clone()))
        .send()
        .await
        .map_err(|e| {
            if e.code() == Some("InvalidGroup.NotFound") {
                anyhow::Error::new(UsageError::new(format!(
                    "network.security_groups in lew.toml names a security group that does not \
                     exist in {region}: {}",
                    e.message().unwrap_or_default()
                )))
            } else {
                anyhow::Error::new(e).context("cannot look up the configured security groups")
            }
        })?;
    Ok(out.security_groups.unwrap_or_default())
}

/// The worker tasks' security groups must be in the subnets' VPC, or every RunTask the launcher
/// makes fails; said at setup, naming both VPCs.
fn same_vpc(d: &Deployment, vpc: &str, groups: &[SecurityGroup]) -> Result<()> {
    let elsewhere: Vec<String> = groups
        .iter()
        .filter(|g| g.vpc_id() != Some(vpc))
        .map(|g| {
            format!(
                "{} is in {}",
                g.group_id().unwrap_or_default(),
                g.vpc_id().unwrap_or("no VPC")
            )
        })
        .collect();
    if elsewhere.is_empty() {
        return Ok(());
    }
    let subnets = if d.cfg.network.subnets.is_empty() {
        "the default VPC's subnets are"
    } else {
        "network.subnets are"
    };
    Err(UsageError::new(format!(
        "network.security_groups in lew.toml must be in the VPC of the subnets the worker tasks \
         use ({subnets} in {vpc}), but {}; set network.security_groups to groups of {vpc}, or \
         network.subnets to subnets of the groups' VPC",
        elsewhere.join(", ")
    ))
    .into())
}

async fn find_group(d: &Deployment, vpc: &str) -> Result<Option<SecurityGroup>> {
    let out = d
        .aws
        .ec2
        .describe_security_groups()
        .filters(filter("group-name", &d.names.security_group))
        .filters(filter("vpc-id", vpc))
        .send()
        .await
        .with_context(|| format!("cannot look up security group {}", d.names.security_group))?;
    Ok(out.security_groups.unwrap_or_default().into_iter().next())
}

fn owned(d: &Deployment, group: &SecurityGroup) -> bool {
    d.owns(
        group
            .tags()
            .iter()
            .map(|t| (t.key().unwrap_or_default(), t.value().unwrap_or_default())),
    )
}

fn allow_all_egress() -> IpPermission {
    IpPermission::builder()
        .ip_protocol("-1")
        .ip_ranges(IpRange::builder().cidr_ip("0.0.0.0/0").build())
        .build()
}

fn allows_all_egress(group: &SecurityGroup) -> bool {
    group.ip_permissions_egress().iter().any(|p| {
        p.ip_protocol() == Some("-1")
            && p.ip_ranges()
                .iter()
                .any(|r| r.cidr_ip() == Some("0.0.0.0/0"))
    })
}

/// Resolves the subnets and creates or converges the worker security group (unless groups are
/// configured). Returns the outcome (if lew manages a group) and the network for the launcher.
pub async fn ensure(d: &Deployment, mode: Mode) -> Result<(Option<Outcome>, Network)> {
    let manage_group = d.cfg.network.security_groups.is_empty();
    let (found, groups) = futures::join!(subnets(d), async {
        if manage_group {
            groups_named(d).await
        } else {
            configured_groups(d).await
        }
    });
    let (vpc_id, subnets) = found?;
    let groups = groups?;
    if !manage_group {
        same_vpc(d, &vpc_id, &groups)?;
        let network = Network {
            vpc_id,
            subnets,
            security_groups: d.cfg.network.security_groups.clone(),
        };
        return Ok((None, network));
    }

    let existing = groups
        .into_iter()
        .find(|g| g.vpc_id() == Some(vpc_id.as_str()));
    let ec2 = &d.aws.ec2;
    let name = d.names.security_group.clone();
    let outcome = Outcome::new(KIND, &name);
    let network = |sg: String| Network {
        vpc_id: vpc_id.clone(),
        subnets: subnets.clone(),
        security_groups: vec![sg],
    };

    let Some(group) = existing else {
        if mode == Mode::Plan {
            return Ok((Some(outcome.created()), network(TO_BE_CREATED.into())));
        }
        let tags = TagSpecification::builder()
            .resource_type(ResourceType::SecurityGroup)
            .set_tags(Some(
                d.tags()
                    .into_iter()
                    .map(|(k, v)| Tag::builder().key(k).value(v).build())
                    .collect(),
            ))
            .build();
        let created = ec2
            .create_security_group()
            .group_name(&name)
            .description("lew worker tasks: outbound only")
            .vpc_id(&vpc_id)
            .tag_specifications(tags)
            .send()
            .await;
        let id = match created {
            Ok(out) => out.group_id.context("CreateSecurityGroup returned no id")?,
            // A concurrent setup made it first: use that one.
            Err(e) if e.code() == Some("InvalidGroup.Duplicate") => find_group(d, &vpc_id)
                .await?
                .and_then(|g| g.group_id)
                .context("the security group vanished right after it was created")?,
            Err(e) => {
                return Err(e).with_context(|| format!("cannot create security group {name}"));
            }
        };
        // A new group allows all egress and no ingress, which is exactly what lew wants.
        return Ok((Some(outcome.created()), network(id)));
    };

    let id = group.group_id().unwrap_or_default().to_string();
    if !owned(d, &group) {
        return Err(not_ours(KIND, &format!("{name} ({id})"), &d.cfg.app));
    }
    let mut changes = Vec::new();
    if !group.ip_permissions().is_empty() {
        changes.push(format!(
            "inbound rules: {} → none (workers accept no connections)",
            group.ip_permissions().len()
        ));
        if mode == Mode::Apply {
            ec2.revoke_security_group_ingress()
                .group_id(&id)
                .set_ip_permissions(Some(group.ip_permissions().to_vec()))
                .send()
                .await
                .with_context(|| format!("cannot remove the inbound rules of {name}"))?;
        }
    }
    if !allows_all_egress(&group) {
        changes.push("outbound rule: missing → all traffic".to_string());
        if mode == Mode::Apply {
            ec2.authorize_security_group_egress()
                .group_id(&id)
                .ip_permissions(allow_all_egress())
                .send()
                .await
                .with_context(|| format!("cannot allow outbound traffic in {name}"))?;
        }
    }
    Ok((Some(outcome.with_changes(changes)), network(id)))
}

/// Subnets from which tasks cannot reach ECR and S3: without a public IP they need a NAT route,
/// with one they need an internet gateway route.
pub async fn reachability_warnings(d: &Deployment, network: &Network) -> Result<Vec<String>> {
    let ec2 = &d.aws.ec2;
    let mut warnings = Vec::new();
    for subnet in &network.subnets {
        let mut tables = ec2
            .describe_route_tables()
            .filters(filter("association.subnet-id", subnet))
            .send()
            .await
            .context("cannot read the route tables")?
            .route_tables
            .unwrap_or_default();
        if tables.is_empty() {
            // A subnet without its own table uses the VPC's main route table.
            tables = ec2
                .describe_route_tables()
                .filters(filter("vpc-id", &network.vpc_id))
                .filters(filter("association.main", "true"))
                .send()
                .await
                .context("cannot read the route tables")?
                .route_tables
                .unwrap_or_default();
        }
        let default_routes: Vec<_> = tables
            .iter()
            .flat_map(|t| t.routes())
            .filter(|r| r.destination_cidr_block() == Some("0.0.0.0/0"))
            .collect();
        let internet = default_routes
            .iter()
            .any(|r| r.gateway_id().is_some_and(|g| g.starts_with("igw-")));
        let nat = default_routes.iter().any(|r| {
            r.nat_gateway_id().is_some()
                || r.instance_id().is_some()
                || r.network_interface_id().is_some()
        });
        if d.cfg.network.assign_public_ip && !internet && !nat {
            warnings.push(format!(
                "subnet {subnet} has no route to an internet gateway or NAT: tasks there cannot \
                 pull the worker image (unless the VPC has ECR, S3, SQS and Logs endpoints)"
            ));
        } else if !d.cfg.network.assign_public_ip && !nat {
            warnings.push(format!(
                "subnet {subnet} has no NAT route and network.assign_public_ip is false: tasks \
                 there cannot reach ECR or S3 (add a NAT gateway or VPC endpoints, or set \
                 assign_public_ip = true with a public subnet)"
            ));
        }
    }
    Ok(warnings)
}

/// Whether the security group with this id exists (EC2 models no typed "not found" error; its
/// documented code is what is matched).
pub async fn group_exists(d: &Deployment, id: &str) -> Result<bool> {
    match d
        .aws
        .ec2
        .describe_security_groups()
        .group_ids(id)
        .send()
        .await
    {
        Ok(out) => Ok(!out.security_groups().is_empty()),
        Err(e) if e.code() == Some("InvalidGroup.NotFound") => Ok(false),
        Err(e) => Err(e).with_context(|| format!("cannot look up security group {id}")),
    }
}

/// Deletes the worker security group if lew owns it. Network interfaces of tasks that just
/// stopped can hold it for a while, so a dependency error is retried for a bounded time.
pub async fn delete(d: &Deployment) -> Result<Removed> {
    // Looked up even when network.security_groups is configured now: lew may have made its
    // own group before that setting was added.
    let name = d.names.security_group.clone();
    let groups = d
        .aws
        .ec2
        .describe_security_groups()
        .filters(filter("group-name", &name))
        .send()
        .await
        .with_context(|| format!("cannot look up security group {name}"))?
        .security_groups
        .unwrap_or_default();
    let Some(group) = groups.iter().find(|g| owned(d, g)) else {
        let result = if groups.is_empty() {
            Removal::AlreadyGone
        } else {
            Removal::NotOwned
        };
        return Ok(Removed::new(KIND, name, result));
    };
    let id = group.group_id().unwrap_or_default().to_string();
    const ATTEMPTS: u32 = 20;
    for attempt in 1..=ATTEMPTS {
        match d.aws.ec2.delete_security_group().group_id(&id).send().await {
            Ok(_) => return Ok(Removed::new(KIND, name, Removal::Deleted)),
            Err(e) if e.code() == Some("InvalidGroup.NotFound") => {
                return Ok(Removed::new(KIND, name, Removal::AlreadyGone));
            }
            Err(e) if e.code() == Some("DependencyViolation") && attempt < ATTEMPTS => {
                d.progress.line(format!(
                    "security group {name}: still used by network interfaces of stopped tasks, \
                     waiting ({attempt}/{ATTEMPTS})"
                ));
                d.sleep(Duration::from_secs(10)).await;
            }
            Err(e) => {
                return Err(e).with_context(|| format!("cannot delete security group {name}"));
            }
        }
    }
    unreachable!("the last attempt returns")
}

#[cfg(test)]
mod tests {
    use aws_sdk_ec2::Client;
    use aws_sdk_ec2::operation::delete_security_group::{
        DeleteSecurityGroupError, DeleteSecurityGroupOutput,
    };
    use aws_sdk_ec2::operation::describe_security_groups::DescribeSecurityGroupsOutput;
    use aws_smithy_mocks::{Rule, mock};

    use super::*;
    use crate::resources::mock::{Mocks, lew_tags, meta};

    fn our_group() -> Rule {
        mock!(Client::describe_security_groups).then_output(|| {
            DescribeSecurityGroupsOutput::builder()
                .security_groups(
                    SecurityGroup::builder()
                        .group_id("sg-0123")
                        .group_name("lew-unit-worker")
                        .set_tags(Some(
                            lew_tags()
                                .into_iter()
                                .map(|(k, v)| Tag::builder().key(k).value(v).build())
                                .collect(),
                        ))
                        .build(),
                )
                .build()
        })
    }

    fn in_use() -> DeleteSecurityGroupError {
        DeleteSecurityGroupError::generic(meta(
            "DependencyViolation",
            "resource sg-0123 has a dependent object",
        ))
    }

    #[tokio::test]
    async fn a_group_held_by_stopped_tasks_is_deleted_once_they_let_go() {
        let delete_group = mock!(Client::delete_security_group)
            .match_requests(|r| r.group_id() == Some("sg-0123"))
            .sequence()
            .error(in_use)
            .times(2)
            .output(|| DeleteSecurityGroupOutput::builder().build())
            .build();
        let (d, sleep) = Mocks::new()
            .ec2(&[&our_group(), &delete_group])
            .deployment()
            .await;

        let removed = delete(&d).await.unwrap();

        assert_eq!(removed.result, Removal::Deleted);
        assert_eq!(delete_group.num_calls(), 3);
        assert_eq!(sleep.slept(), [Duration::from_secs(10); 2]);
    }

    #[tokio::test]
    async fn a_group_that_stays_in_use_is_an_error_after_a_bounded_wait() {
        let delete_group = mock!(Client::delete_security_group)
            .sequence()
            .error(in_use)
            .times(30)
            .build();
        let (d, sleep) = Mocks::new()
            .ec2(&[&our_group(), &delete_group])
            .deployment()
            .await;

        let err = delete(&d).await.unwrap_err();

        assert_eq!(delete_group.num_calls(), 20);
        assert_eq!(
            sleep.slept().iter().sum::<Duration>(),
            Duration::from_secs(190)
        );
        let text = crate::error::one_line(&err);
        assert!(
            text.contains("cannot delete security group lew-unit-worker")
                && text.contains("dependent object"),
            "{text}"
        );
    }

    #[tokio::test]
    async fn a_group_deleted_meanwhile_is_already_gone() {
        let delete_group = mock!(Client::delete_security_group).then_error(|| {
            DeleteSecurityGroupError::generic(meta(
                "InvalidGroup.NotFound",
                "The security group 'sg-0123' does not exist",
            ))
        });
        let (d, _) = Mocks::new()
            .ec2(&[&our_group(), &delete_group])
            .deployment()
            .await;
        assert_eq!(delete(&d).await.unwrap().result, Removal::AlreadyGone);
    }
}
