//! The S3 bucket scenes are uploaded to and renders written to.
//!
//! lew's bucket blocks all public access, encrypts with SSE-S3 by default, has a policy
//! statement that denies any request not made over TLS, and lifecycle rules that remove the
//! parts of multipart uploads left incomplete for a day under its two prefixes (an interrupted
//! `lew render`, a worker killed mid-upload). The policy, the lifecycle rules and the tags are
//! merged with what is already there, so statements, rules and tags others added survive.
//!
//! A bucket that exists without lew's tag (for example one named in lew.toml) is used as it is:
//! lew adds only its event notification (see `trigger`) and never deletes it.

use std::collections::HashMap;
use std::fmt;

use anyhow::{Context as _, Result, bail};
use aws_sdk_s3::error::{ProvideErrorMetadata as _, SdkError};
use aws_sdk_s3::operation::create_bucket::CreateBucketError;
use aws_sdk_s3::operation::head_bucket::HeadBucketError;
use aws_sdk_s3::types::{
    AbortIncompleteMultipartUpload, BucketLifecycleConfiguration, BucketLocationConstraint,
    CreateBucketConfiguration, Delete, ExpirationStatus, LifecycleRule, LifecycleRuleFilter,
    ObjectIdentifier, ObjectOwnership, PublicAccessBlockConfiguration, ServerSideEncryption,
    ServerSideEncryptionByDefault, ServerSideEncryptionConfiguration, ServerSideEncryptionRule,
    Tag, Tagging, TransitionDefaultMinimumObjectSize,
};
use serde_json::{Value, json};

use super::{Deployment, Mode, Outcome, Removal, Removed, canonical_statement};
use crate::error::UsageError;

/// What this resource is called in reports.
pub const KIND: &str = "s3 bucket";

/// The `Sid` of lew's statement in the bucket policy.
pub const TLS_SID: &str = "LewDenyInsecureTransport";

/// Whether the bucket exists and whether lew owns it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Presence {
    Missing,
    Owned,
    /// Exists in this account but was not created by lew for this app.
    External,
}

pub async fn presence(d: &Deployment) -> Result<Presence> {
    if !exists(d).await? {
        return Ok(Presence::Missing);
    }
    Ok(ownership(d, &tags(d).await?))
}

/// Whose the bucket is. A bucket with lew's own derived name (`lew-<app>-<account>-<region>`)
/// and no `lew:app` tag at all was left by a setup interrupted right after CreateBucket: lew's,
/// to be tagged and converged (and deleted by `teardown --delete-data`).
fn ownership(d: &Deployment, tags: &[Tag]) -> Presence {
    let derived_name = d.cfg.bucket.name.is_none();
    let untagged = !tags.iter().any(|t| t.key() == super::APP_TAG);
    if d.owns(tags.iter().map(|t| (t.key(), t.value()))) || (derived_name && untagged) {
        Presence::Owned
    } else {
        Presence::External
    }
}

/// Whether the bucket exists (in this account: another account's is an error naming the fix).
async fn exists(d: &Deployment) -> Result<bool> {
    let name = &d.names.bucket;
    match d.aws.s3.head_bucket().bucket(name).send().await {
        Ok(_) => Ok(true),
        Err(SdkError::ServiceError(e)) if matches!(e.err(), HeadBucketError::NotFound(_)) => {
            Ok(false)
        }
        Err(SdkError::ServiceError(e)) if e.raw().status().as_u16() == 403 => bail!(
            "the S3 bucket name {name} is taken by another AWS account; set `bucket.name` in \
             lew.toml to a name of your own"
        ),
        Err(e) => Err(e).with_context(|| format!("cannot look up S3 bucket {name}")),
    }
}

async fn tags(d: &Deployment) -> Result<Vec<Tag>> {
    let name = &d.names.bucket;
    match d.aws.s3.get_bucket_tagging().bucket(name).send().await {
        Ok(out) => Ok(out.tag_set),
        Err(e) if e.code() == Some("NoSuchTagSet") => Ok(Vec::new()),
        Err(e) => Err(e).with_context(|| format!("cannot read the tags of S3 bucket {name}")),
    }
}

/// The customer managed KMS key a bucket encrypts new objects with by default (SSE-KMS), which
/// the worker's role must be allowed to use: GetObject needs `kms:Decrypt`, PutObject
/// `kms:GenerateDataKey`, or every job ends in the dead-letter queue.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KmsKey {
    /// A key of this account, by ARN.
    Key(String),
    /// A key of this account known by an alias (`alias/name`): granted through the
    /// `kms:ResourceAliases` condition, as an IAM policy cannot name a key by its alias.
    Alias(String),
}

impl fmt::Display for KmsKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            KmsKey::Key(arn) => f.write_str(arn),
            KmsKey::Alias(alias) => f.write_str(alias),
        }
    }
}

/// What the bucket's default encryption asks of the worker's role: `None` for SSE-S3, for the
/// AWS managed key `aws/s3` (its key policy lets every principal of the account use it through
/// S3), and for a bucket lew owns (lew sets SSE-S3 on it); the key for SSE-KMS with a key of
/// this account; a configuration error naming the key for a key of another account, whose use
/// lew cannot grant.
pub async fn default_kms_key(d: &Deployment) -> Result<Option<KmsKey>> {
    if d.cfg.bucket.name.is_none() {
        return Ok(None); // lew's own bucket, with lew's encryption
    }
    let name = &d.names.bucket;
    let (encryption, tags) = futures::join!(
        d.aws.s3.get_bucket_encryption().bucket(name).send(),
        tags(d)
    );
    let rules = match encryption {
        Ok(out) => out
            .server_side_encryption_configuration
            .map(|c| c.rules)
            .unwrap_or_default(),
        Err(e)
            if matches!(
                e.code(),
                Some("ServerSideEncryptionConfigurationNotFoundError" | "NoSuchBucket")
            ) =>
        {
            return Ok(None);
        }
        Err(e) => {
            return Err(e).with_context(|| format!("cannot read the default encryption of {name}"));
        }
    };
    if tags.is_ok_and(|t| ownership(d, &t) == Presence::Owned) {
        return Ok(None);
    }
    let key = rules.iter().find_map(|r| {
        let by = r.apply_server_side_encryption_by_default()?;
        let kms = matches!(
            by.sse_algorithm(),
            ServerSideEncryption::AwsKms | ServerSideEncryption::AwsKmsDsse
        );
        kms.then(|| by.kms_master_key_id().unwrap_or_default().to_string())
    });
    match key {
        None => Ok(None),
        Some(id) => kms_key(d, &id),
    }
}

/// The key a bucket's `KMSMasterKeyID` names (a key id, key ARN, alias or alias ARN).
fn kms_key(d: &Deployment, id: &str) -> Result<Option<KmsKey>> {
    let (account, resource) = match id.strip_prefix("arn:") {
        Some(arn) => {
            let parts: Vec<&str> = arn.splitn(5, ':').collect();
            match parts.as_slice() {
                [_, "kms", _, account, resource] => (account.to_string(), resource.to_string()),
                _ => bail!(
                    "bucket {}: default encryption names {id:?}, not a KMS key",
                    d.names.bucket
                ),
            }
        }
        None if id.starts_with("alias/") => (d.aws.account.clone(), id.to_string()),
        None if id.is_empty() => return Ok(None), // the AWS managed key aws/s3
        None => (d.aws.account.clone(), format!("key/{id}")),
    };
    if account != d.aws.account {
        return Err(UsageError::new(format!(
            "bucket {} encrypts new objects by default with KMS key {id} of account {account} \
             (SSE-KMS); lew cannot let the worker's role use another account's key, so every \
             job would fail. Use a bucket encrypted with SSE-S3 or with a key of account {}, or \
             set another `bucket.name` in lew.toml",
            d.names.bucket, d.aws.account
        ))
        .into());
    }
    Ok(match resource.as_str() {
        "alias/aws/s3" => None,
        alias if alias.starts_with("alias/") => Some(KmsKey::Alias(alias.to_string())),
        key => Some(KmsKey::Key(d.aws.arn("kms", key))),
    })
}

/// lew's bucket policy statement: refuse every request that does not use TLS.
pub fn tls_statement(d: &Deployment) -> Value {
    let arn = d.bucket_arn();
    json!({
        "Sid": TLS_SID,
        "Effect": "Deny",
        "Principal": "*",
        "Action": "s3:*",
        "Resource": [arn.clone(), format!("{arn}/*")],
        "Condition": {"Bool": {"aws:SecureTransport": "false"}},
    })
}

/// Creates the bucket or converges public access block, encryption, policy and tags.
pub async fn ensure(d: &Deployment, mode: Mode) -> Result<Outcome> {
    let name = d.names.bucket.clone();
    let outcome = Outcome::new(KIND, &name);
    let Some(have) = read(d).await? else {
        if mode == Mode::Apply {
            create(d).await?;
            converge(d, &Settings::default()).await?;
        }
        return Ok(outcome.created());
    };
    match ownership(d, &have.tags) {
        Presence::Missing => unreachable!("the bucket exists"),
        Presence::External => Ok(outcome
            .note("not created by lew: used as it is (only lew's event notification is added)")),
        Presence::Owned => {
            let changes = have.differences(d);
            if mode == Mode::Apply && !changes.is_empty() {
                converge(d, &have).await?;
            }
            Ok(outcome.with_changes(changes))
        }
    }
}

async fn create(d: &Deployment) -> Result<()> {
    let name = &d.names.bucket;
    let mut req = d
        .aws
        .s3
        .create_bucket()
        .bucket(name)
        .object_ownership(ObjectOwnership::BucketOwnerEnforced);
    // us-east-1 is the one region that must not be named as a location constraint.
    if d.aws.region != "us-east-1" {
        req = req.create_bucket_configuration(
            CreateBucketConfiguration::builder()
                .location_constraint(BucketLocationConstraint::from(d.aws.region.as_str()))
                .build(),
        );
    }
    match req.send().await {
        Ok(_) => Ok(()),
        Err(SdkError::ServiceError(e))
            if matches!(e.err(), CreateBucketError::BucketAlreadyOwnedByYou(_)) =>
        {
            Ok(())
        }
        Err(SdkError::ServiceError(e))
            if matches!(e.err(), CreateBucketError::BucketAlreadyExists(_)) =>
        {
            bail!(
                "the S3 bucket name {name} is taken by another AWS account; set `bucket.name` \
                 in lew.toml to a name of your own"
            )
        }
        Err(e) => Err(e).with_context(|| format!("cannot create S3 bucket {name}")),
    }
}

/// The bucket's settings as S3 reports them.
#[derive(Debug, Default)]
struct Settings {
    public_access_blocked: bool,
    sse_s3: bool,
    policy: Option<String>,
    tags: Vec<Tag>,
    lifecycle: Lifecycle,
}

impl Settings {
    fn tls_statement_ok(&self, d: &Deployment) -> bool {
        let want = canonical_statement(&tls_statement(d));
        self.policy
            .as_deref()
            .and_then(|p| serde_json::from_str::<Value>(p).ok())
            .and_then(|p| p.get("Statement").cloned())
            .map(|s| match s {
                Value::Array(items) => items,
                one => vec![one],
            })
            .is_some_and(|items| items.iter().any(|s| canonical_statement(s) == want))
    }

    fn tags_ok(&self, d: &Deployment) -> bool {
        d.tags()
            .iter()
            .all(|(k, v)| self.tags.iter().any(|t| t.key() == *k && t.value() == v))
    }

    fn differences(&self, d: &Deployment) -> Vec<String> {
        let mut changes = Vec::new();
        if !self.public_access_blocked {
            changes.push("public access block: off → all four settings on".to_string());
        }
        if !self.sse_s3 {
            changes.push("default encryption: not SSE-S3 → SSE-S3 (AES256)".to_string());
        }
        if !self.tls_statement_ok(d) {
            changes.push(format!(
                "bucket policy: statement {TLS_SID} missing or changed"
            ));
        }
        if !self.tags_ok(d) {
            changes.push("tags: lew:app / lew:version missing or old".to_string());
        }
        changes.extend(self.lifecycle.differences(d));
        changes
    }
}

/// Reads the five settings at the same time; `None` when there is no such bucket (each read
/// says so, which spares a HeadBucket first).
async fn read(d: &Deployment) -> Result<Option<Settings>> {
    let s3 = &d.aws.s3;
    let name = &d.names.bucket;
    let (pab, encryption, policy, tags, lifecycle) = futures::join!(
        s3.get_public_access_block().bucket(name).send(),
        s3.get_bucket_encryption().bucket(name).send(),
        s3.get_bucket_policy().bucket(name).send(),
        s3.get_bucket_tagging().bucket(name).send(),
        read_lifecycle(d),
    );
    let tags = match tags {
        Ok(out) => out.tag_set,
        Err(e) if e.code() == Some("NoSuchBucket") => return Ok(None),
        Err(e) if e.code() == Some("NoSuchTagSet") => Vec::new(),
        Err(SdkError::ServiceError(e)) if e.raw().status().as_u16() == 403 => bail!(
            "the S3 bucket {name} cannot be read with these credentials: another AWS account \
             may own the name (then set `bucket.name` in lew.toml to a name of your own)"
        ),
        Err(e) => {
            return Err(e).with_context(|| format!("cannot read the tags of S3 bucket {name}"));
        }
    };
    let public_access_blocked = match pab {
        Ok(out) => out.public_access_block_configuration.is_some_and(|c| {
            c.block_public_acls == Some(true)
                && c.ignore_public_acls == Some(true)
                && c.block_public_policy == Some(true)
                && c.restrict_public_buckets == Some(true)
        }),
        Err(e) if e.code() == Some("NoSuchPublicAccessBlockConfiguration") => false,
        Err(e) if e.code() == Some("NoSuchBucket") => return Ok(None),
        Err(e) => {
            return Err(e)
                .with_context(|| format!("cannot read the public access block of {name}"));
        }
    };
    let sse_s3 = match encryption {
        Ok(out) => out.server_side_encryption_configuration.is_some_and(|c| {
            c.rules().iter().any(|r| {
                r.apply_server_side_encryption_by_default()
                    .is_some_and(|by| by.sse_algorithm() == &ServerSideEncryption::Aes256)
            })
        }),
        Err(e) if e.code() == Some("ServerSideEncryptionConfigurationNotFoundError") => false,
        Err(e) if e.code() == Some("NoSuchBucket") => return Ok(None),
        Err(e) => return Err(e).with_context(|| format!("cannot read the encryption of {name}")),
    };
    let policy = match policy {
        Ok(out) => out.policy,
        Err(e) if e.code() == Some("NoSuchBucketPolicy") => None,
        Err(e) if e.code() == Some("NoSuchBucket") => return Ok(None),
        Err(e) => return Err(e).with_context(|| format!("cannot read the policy of {name}")),
    };
    let Some(lifecycle) = lifecycle? else {
        return Ok(None);
    };
    Ok(Some(Settings {
        public_access_blocked,
        sse_s3,
        policy,
        tags,
        lifecycle,
    }))
}

/// Applies whatever differs from lew's settings.
async fn converge(d: &Deployment, have: &Settings) -> Result<()> {
    let s3 = &d.aws.s3;
    let name = &d.names.bucket;
    // Tags first: they are what marks the bucket as lew's, should setup be interrupted.
    if !have.tags_ok(d) {
        // PutBucketTagging replaces the whole set: keep the tags others added.
        let mut tags: Vec<Tag> = have
            .tags
            .iter()
            .filter(|t| !d.tags().iter().any(|(k, _)| t.key() == *k))
            .cloned()
            .collect();
        for (k, v) in d.tags() {
            tags.push(Tag::builder().key(k).value(v).build()?);
        }
        s3.put_bucket_tagging()
            .bucket(name)
            .tagging(Tagging::builder().set_tag_set(Some(tags)).build()?)
            .send()
            .await
            .with_context(|| format!("cannot tag S3 bucket {name}"))?;
    }
    if !have.public_access_blocked {
        s3.put_public_access_block()
            .bucket(name)
            .public_access_block_configuration(
                PublicAccessBlockConfiguration::builder()
                    .block_public_acls(true)
                    .ignore_public_acls(true)
                    .block_public_policy(true)
                    .restrict_public_buckets(true)
                    .build(),
            )
            .send()
            .await
            .with_context(|| format!("cannot block public access to {name}"))?;
    }
    if !have.sse_s3 {
        let by_default = ServerSideEncryptionByDefault::builder()
            .sse_algorithm(ServerSideEncryption::Aes256)
            .build()?;
        let rule = ServerSideEncryptionRule::builder()
            .apply_server_side_encryption_by_default(by_default)
            .build();
        s3.put_bucket_encryption()
            .bucket(name)
            .server_side_encryption_configuration(
                ServerSideEncryptionConfiguration::builder()
                    .rules(rule)
                    .build()?,
            )
            .send()
            .await
            .with_context(|| format!("cannot set default encryption on {name}"))?;
    }
    if !have.tls_statement_ok(d) {
        let policy = merged_policy(have.policy.as_deref(), tls_statement(d));
        s3.put_bucket_policy()
            .bucket(name)
            .policy(policy.to_string())
            .send()
            .await
            .with_context(|| format!("cannot put the bucket policy of {name}"))?;
    }
    if !have.lifecycle.differences(d).is_empty() {
        put_lifecycle(d, &have.lifecycle).await?;
    }
    Ok(())
}

/// The existing policy with lew's statement added or replaced; other statements are kept.
pub fn merged_policy(existing: Option<&str>, statement: Value) -> Value {
    let mut policy = existing
        .and_then(|p| serde_json::from_str::<Value>(p).ok())
        .filter(Value::is_object)
        .unwrap_or_else(|| json!({"Version": "2012-10-17"}));
    let mut statements = match policy.get("Statement").cloned() {
        Some(Value::Array(items)) => items,
        Some(one @ Value::Object(_)) => vec![one],
        _ => Vec::new(),
    };
    let sid = statement.get("Sid").cloned();
    statements.retain(|s| s.get("Sid") != sid.as_ref());
    statements.push(statement);
    policy["Statement"] = Value::Array(statements);
    policy
}

/// One object as a listing shows it.
#[derive(Debug, Clone)]
pub struct Listed {
    pub key: String,
    pub last_modified: Option<aws_sdk_s3::primitives::DateTime>,
}

/// The objects under `prefix` (after `start_after`, if given), reading at most `max_pages`
/// pages of 1000 keys, if given. A missing bucket is an error.
pub async fn list(
    d: &Deployment,
    prefix: &str,
    start_after: Option<String>,
    max_pages: Option<usize>,
) -> Result<Vec<Listed>> {
    let mut pages = d
        .aws
        .s3
        .list_objects_v2()
        .bucket(&d.names.bucket)
        .prefix(prefix)
        .set_start_after(start_after)
        .into_paginator()
        .send();
    let mut found = Vec::new();
    let mut read = 0;
    while max_pages.is_none_or(|max| read < max)
        && let Some(page) = pages.next().await
    {
        read += 1;
        let page = page.with_context(|| format!("cannot list s3://{}/{prefix}", d.names.bucket))?;
        found.extend(page.contents().iter().map(|o| Listed {
            key: o.key().unwrap_or_default().to_string(),
            last_modified: o.last_modified().copied(),
        }));
    }
    Ok(found)
}

/// An object's body and its user metadata (`x-amz-meta-*`, without the prefix).
pub async fn read_object(d: &Deployment, key: &str) -> Result<(Vec<u8>, HashMap<String, String>)> {
    let bucket = &d.names.bucket;
    let out = d
        .aws
        .s3
        .get_object()
        .bucket(bucket)
        .key(key)
        .send()
        .await
        .with_context(|| format!("cannot read s3://{bucket}/{key}"))?;
    let metadata = out.metadata().cloned().unwrap_or_default();
    let bytes = out
        .body
        .collect()
        .await
        .with_context(|| format!("cannot read s3://{bucket}/{key}"))?
        .into_bytes();
    Ok((bytes.into(), metadata))
}

/// An object's body as text (invalid UTF-8 replaced).
pub async fn read_text(d: &Deployment, key: &str) -> Result<String> {
    let (bytes, _) = read_object(d, key).await?;
    Ok(String::from_utf8_lossy(&bytes).into_owned())
}

/// Empties (every version and delete marker) and deletes the bucket, if it is lew's.
pub async fn delete(d: &Deployment, delete_data: bool) -> Result<Removed> {
    let name = d.names.bucket.clone();
    match presence(d).await? {
        Presence::Missing => return Ok(Removed::new(KIND, name, Removal::AlreadyGone)),
        Presence::External => return Ok(Removed::new(KIND, name, Removal::NotOwned)),
        Presence::Owned if !delete_data => {
            return Ok(Removed::new(KIND, name, Removal::Kept)
                .note("kept with its scenes and renders; --delete-data deletes it"));
        }
        Presence::Owned => {}
    }
    let s3 = &d.aws.s3;
    let mut deleted = 0usize;
    // ListObjectVersions has no SDK paginator: follow its markers by hand.
    let (mut key_marker, mut version_marker) = (None::<String>, None::<String>);
    loop {
        let page = s3
            .list_object_versions()
            .bucket(&name)
            .set_key_marker(key_marker.take())
            .set_version_id_marker(version_marker.take())
            .send()
            .await
            .with_context(|| format!("cannot list the objects in {name}"))?;
        let mut ids = Vec::new();
        for v in page.versions() {
            if let Some(key) = v.key() {
                ids.push(
                    ObjectIdentifier::builder()
                        .key(key)
                        .set_version_id(v.version_id().map(str::to_string))
                        .build()?,
                );
            }
        }
        for m in page.delete_markers() {
            if let Some(key) = m.key() {
                ids.push(
                    ObjectIdentifier::builder()
                        .key(key)
                        .set_version_id(m.version_id().map(str::to_string))
                        .build()?,
                );
            }
        }
        // One page holds at most 1000 entries, DeleteObjects' limit.
        if !ids.is_empty() {
            deleted += ids.len();
            let out = s3
                .delete_objects()
                .bucket(&name)
                .delete(
                    Delete::builder()
                        .set_objects(Some(ids))
                        .quiet(true)
                        .build()?,
                )
                .send()
                .await
                .with_context(|| format!("cannot delete objects in {name}"))?;
            if let Some(err) = out.errors().first() {
                bail!(
                    "cannot delete {} in {name}: {}",
                    err.key().unwrap_or("an object"),
                    err.message().unwrap_or("unknown error")
                );
            }
        }
        if page.is_truncated() != Some(true) {
            break;
        }
        key_marker = page.next_key_marker;
        version_marker = page.next_version_id_marker;
    }
    match s3.delete_bucket().bucket(&name).send().await {
        Ok(_) => {}
        Err(e) if e.code() == Some("NoSuchBucket") => {}
        Err(e) => return Err(e).with_context(|| format!("cannot delete S3 bucket {name}")),
    }
    Ok(Removed::new(KIND, name, Removal::Deleted)
        .note(format!("{deleted} object versions deleted")))
}

// --- lifecycle: incomplete multipart uploads -------------------------------------------------

/// Days after which S3 removes the parts of a multipart upload that was never completed.
pub const ABORT_INCOMPLETE_DAYS: i32 = 1;

/// lew's lifecycle rules: one per prefix lew writes under, by Id.
pub fn lifecycle_rules(d: &Deployment) -> Vec<LifecycleRule> {
    let b = &d.cfg.bucket;
    [
        ("lew-abort-incomplete-uploads-input", &b.input_prefix),
        ("lew-abort-incomplete-uploads-output", &b.output_prefix),
    ]
    .into_iter()
    .map(|(id, prefix)| {
        LifecycleRule::builder()
            .id(id)
            .filter(LifecycleRuleFilter::builder().prefix(prefix).build())
            .status(ExpirationStatus::Enabled)
            .abort_incomplete_multipart_upload(
                AbortIncompleteMultipartUpload::builder()
                    .days_after_initiation(ABORT_INCOMPLETE_DAYS)
                    .build(),
            )
            .build()
            .expect("id, filter and status set")
    })
    .collect()
}

/// The bucket's lifecycle configuration: every rule (lew's and anyone's) and the one setting
/// that goes with them.
#[derive(Debug, Default)]
struct Lifecycle {
    rules: Vec<LifecycleRule>,
    transition_minimum_size: Option<TransitionDefaultMinimumObjectSize>,
}

impl Lifecycle {
    /// lew's rules that are missing or not as lew wants them.
    fn differences(&self, d: &Deployment) -> Vec<String> {
        lifecycle_rules(d)
            .iter()
            .filter(|want| !self.rules.iter().any(|have| same_rule(have, want)))
            .map(|want| {
                format!(
                    "lifecycle rule {}: missing or changed (abort uploads under {:?} left \
                     incomplete for {ABORT_INCOMPLETE_DAYS} day)",
                    want.id().unwrap_or_default(),
                    want.filter()
                        .and_then(LifecycleRuleFilter::prefix)
                        .unwrap_or_default()
                )
            })
            .collect()
    }

    /// Every rule of others as it is, and lew's as lew wants them.
    fn merged(&self, d: &Deployment) -> Vec<LifecycleRule> {
        let ours = lifecycle_rules(d);
        let mut rules: Vec<LifecycleRule> = self
            .rules
            .iter()
            .filter(|r| !ours.iter().any(|o| o.id() == r.id()))
            .cloned()
            .collect();
        rules.extend(ours);
        rules
    }
}

/// Whether a rule is lew's rule as lew wants it (Id, prefix filter, enabled, 1 day, nothing
/// else).
fn same_rule(have: &LifecycleRule, want: &LifecycleRule) -> bool {
    let filter = |r: &LifecycleRule| {
        r.filter().map(|f| {
            (
                f.prefix().map(str::to_string),
                f.tag().is_some(),
                f.and().is_some(),
            )
        })
    };
    let days = |r: &LifecycleRule| {
        r.abort_incomplete_multipart_upload()
            .and_then(|a| a.days_after_initiation())
    };
    have.id() == want.id()
        && have.status() == want.status()
        && filter(have) == filter(want)
        && days(have) == days(want)
        && have.expiration().is_none()
        && have.transitions().is_empty()
        && have.noncurrent_version_transitions().is_empty()
        && have.noncurrent_version_expiration().is_none()
}

/// The lifecycle configuration (empty when there is none), or `None` without the bucket.
async fn read_lifecycle(d: &Deployment) -> Result<Option<Lifecycle>> {
    let name = &d.names.bucket;
    match d
        .aws
        .s3
        .get_bucket_lifecycle_configuration()
        .bucket(name)
        .send()
        .await
    {
        Ok(out) => Ok(Some(Lifecycle {
            transition_minimum_size: out.transition_default_minimum_object_size().cloned(),
            rules: out.rules.unwrap_or_default(),
        })),
        Err(e) if e.code() == Some("NoSuchLifecycleConfiguration") => {
            Ok(Some(Lifecycle::default()))
        }
        Err(e) if e.code() == Some("NoSuchBucket") => Ok(None),
        Err(e) => Err(e).with_context(|| format!("cannot read the lifecycle rules of {name}")),
    }
}

/// Writes the configuration with lew's rules added or replaced. PutBucketLifecycleConfiguration
/// replaces the whole configuration, so every other rule (and the transition setting) is
/// written back as it was read.
async fn put_lifecycle(d: &Deployment, have: &Lifecycle) -> Result<()> {
    let name = &d.names.bucket;
    d.aws
        .s3
        .put_bucket_lifecycle_configuration()
        .bucket(name)
        .lifecycle_configuration(
            BucketLifecycleConfiguration::builder()
                .set_rules(Some(have.merged(d)))
                .build()?,
        )
        .set_transition_default_minimum_object_size(have.transition_minimum_size.clone())
        .send()
        .await
        .with_context(|| format!("cannot put the lifecycle rules of {name}"))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::{exit_code, one_line};
    use crate::resources::mock::Mocks;

    #[tokio::test]
    async fn the_key_a_bucket_s_default_encryption_names() {
        let (d, _) = Mocks::new().deployment().await;
        let arn = "arn:aws:kms:eu-west-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab";
        let key = |id: &str| kms_key(&d, id).unwrap();
        assert_eq!(
            key("1234abcd-12ab-34cd-56ef-1234567890ab"),
            Some(KmsKey::Key(arn.into()))
        );
        assert_eq!(key(arn), Some(KmsKey::Key(arn.into())));
        assert_eq!(
            key("alias/media"),
            Some(KmsKey::Alias("alias/media".into()))
        );
        assert_eq!(
            key("arn:aws:kms:eu-west-1:123456789012:alias/media"),
            Some(KmsKey::Alias("alias/media".into()))
        );
        // The AWS managed key needs no grant: its key policy lets the account use it via S3.
        assert_eq!(key("alias/aws/s3"), None);
        assert_eq!(key("arn:aws:kms:eu-west-1:123456789012:alias/aws/s3"), None);
        assert_eq!(key(""), None);
    }

    #[tokio::test]
    async fn a_key_of_another_account_is_refused_naming_it() {
        let (d, _) = Mocks::new()
            .config("[bucket]\nname = \"shared-media\"\n")
            .deployment()
            .await;
        let other = "arn:aws:kms:eu-west-1:210987654321:key/1234abcd-12ab-34cd-56ef-1234567890ab";
        let err = kms_key(&d, other).unwrap_err();
        let text = one_line(&err);
        assert!(
            text.contains(other) && text.contains("210987654321") && text.contains("shared-media"),
            "{text}"
        );
        assert_eq!(exit_code(&err), 2);
        assert!(kms_key(&d, "arn:aws:s3:::not-a-key").is_err());
    }
}
