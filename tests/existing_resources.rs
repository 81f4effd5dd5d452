//! Resources the user already has and names in lew.toml: subnets and security groups, and a
//! bucket lew did not create. lew uses them as they are, creates nothing in their place, and
//! never deletes them.

use aws_sdk_ec2::types::{Filter, ResourceType, Tag, TagSpecification};
use aws_sdk_s3::types::{
    Event, FilterRule, FilterRuleName, NotificationConfiguration, NotificationConfigurationFilter,
    QueueConfiguration, S3KeyFilter,
};
use lew::aws::Aws;
use serde_json::Value;

use crate::support::read::{
    filter_rules, function_env, function_policy, lambda_notifications, notifications,
    security_groups_named,
};
use crate::support::{App, REGION, actions, foreign};

/// A new VPC (not the default one) with two subnets and a security group of the user's.
async fn user_network(aws: &Aws, name: &str) -> (String, Vec<String>, String) {
    let vpc = aws
        .ec2
        .create_vpc()
        .cidr_block("10.42.0.0/16")
        .tag_specifications(
            TagSpecification::builder()
                .resource_type(ResourceType::Vpc)
                .tags(Tag::builder().key("Name").value(name).build())
                .build(),
        )
        .send()
        .await
        .unwrap()
        .vpc
        .unwrap()
        .vpc_id
        .unwrap();
    let mut subnets = Vec::new();
    for (cidr, az) in [("10.42.1.0/24", "a"), ("10.42.2.0/24", "b")] {
        let subnet = aws
            .ec2
            .create_subnet()
            .vpc_id(&vpc)
            .cidr_block(cidr)
            .availability_zone(format!("{REGION}{az}"))
            .send()
            .await
            .unwrap()
            .subnet
            .unwrap()
            .subnet_id
            .unwrap();
        subnets.push(subnet);
    }
    let sg = aws
        .ec2
        .create_security_group()
        .group_name(name)
        .description("the user's own group")
        .vpc_id(&vpc)
        .send()
        .await
        .unwrap()
        .group_id
        .unwrap();
    (vpc, subnets, sg)
}

fn toml_list(items: &[String]) -> String {
    let quoted: Vec<String> = items.iter().map(|i| format!("\"{i}\"")).collect();
    format!("[{}]", quoted.join(", "))
}

#[tokio::test]
async fn configured_subnets_and_security_groups_are_used_and_no_group_is_made() {
    let app = App::new("");
    let aws = app.aws().await;
    let mine = format!("{}-mine", app.prefix());
    let (_, subnets, sg) = user_network(&aws, &mine).await;
    app.write_config(&format!(
        "[network]\nsubnets = {}\nsecurity_groups = [\"{sg}\"]\nassign_public_ip = false\n",
        toml_list(&subnets)
    ));

    let report = app.lew().args(["--output", "json", "setup"]).ok().json();
    let acts = actions(&report);
    assert!(
        !acts.iter().any(|(r, _, _)| r == "security group"),
        "{acts:?}"
    );
    assert!(
        security_groups_named(&aws, &format!("{}-worker", app.prefix()))
            .await
            .is_empty()
    );
    let env = function_env(&aws, &format!("{}-launcher", app.prefix())).await;
    assert_eq!(env["LEW_SUBNETS"], subnets.join(","));
    assert_eq!(env["LEW_SECURITY_GROUPS"], sg);
    assert_eq!(env["LEW_ASSIGN_PUBLIC_IP"], "DISABLED");

    // Without a public IP the tasks need a NAT route, which this VPC lacks: status says so.
    let status = app.lew().args(["--output", "json", "status"]).ok().json();
    // One warning naming every subnet, not one per subnet.
    let warnings: Vec<&str> = status["warnings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|w| w.as_str().unwrap())
        .filter(|w| w.contains("no NAT route"))
        .collect();
    assert_eq!(warnings.len(), 1, "{warnings:?}");
    assert!(
        warnings[0].starts_with(&format!("subnets {} have no NAT route", subnets.join(", "))),
        "{warnings:?}"
    );

    // Teardown leaves the user's group alone.
    let report = app
        .lew()
        .args(["--output", "json", "teardown", "--yes"])
        .ok()
        .json();
    assert_eq!(report["leftovers"], serde_json::json!([]), "{report}");
    assert_eq!(security_groups_named(&aws, &mine).await, [sg]);
}

#[tokio::test]
async fn configured_subnets_must_exist_and_share_one_vpc() {
    let app = App::new("");
    let aws = app.aws().await;
    let (_, subnets, _) = user_network(&aws, &format!("{}-mine", app.prefix())).await;
    let default_subnet = aws
        .ec2
        .describe_subnets()
        .filters(
            Filter::builder()
                .name("default-for-az")
                .values("true")
                .build(),
        )
        .send()
        .await
        .unwrap()
        .subnets()[0]
        .subnet_id()
        .unwrap()
        .to_string();

    app.write_config(&format!(
        "[network]\nsubnets = {}\n",
        toml_list(&[subnets[0].clone(), default_subnet])
    ));
    // A configuration the account cannot take: exit 2, like every configuration error.
    let run = app.lew().arg("setup").code(2);
    assert!(
        run.stdout.contains("must all be in one VPC"),
        "{}",
        run.stdout
    );

    app.write_config("[network]\nsubnets = [\"subnet-0123456789abcdef0\"]\n");
    let run = app.lew().arg("setup").code(2);
    assert!(
        run.stdout.contains("names a subnet that does not exist"),
        "{}",
        run.stdout
    );
}

#[tokio::test]
async fn a_configured_bucket_lew_did_not_create_is_used_and_never_deleted() {
    let app = App::new("");
    let aws = app.aws().await;
    let bucket = format!("data-{}", app.name);
    foreign::bucket(&aws, &bucket).await;
    aws.s3
        .put_object()
        .bucket(&bucket)
        .key("notes/readme.txt")
        .body(b"keep me".to_vec().into())
        .send()
        .await
        .unwrap();
    // The bucket already notifies a queue of the user's (one S3 may send to: S3 tests every
    // destination whenever the configuration is written).
    let queue = format!("{}-others", app.prefix());
    let queue_arn = crate::support::foreign::queue_s3_may_send_to(&aws, &queue, &bucket).await;
    aws.s3
        .put_bucket_notification_configuration()
        .bucket(&bucket)
        .notification_configuration(
            NotificationConfiguration::builder()
                .queue_configurations(
                    QueueConfiguration::builder()
                        .id("others-queue")
                        .queue_arn(&queue_arn)
                        .events(Event::S3ObjectCreated)
                        .filter(
                            NotificationConfigurationFilter::builder()
                                .key(
                                    S3KeyFilter::builder()
                                        .filter_rules(
                                            FilterRule::builder()
                                                .name(FilterRuleName::Prefix)
                                                .value("incoming/")
                                                .build(),
                                        )
                                        .build(),
                                )
                                .build(),
                        )
                        .build()
                        .unwrap(),
                )
                .build(),
        )
        .send()
        .await
        .unwrap();
    app.write_config(&format!("[bucket]\nname = \"{bucket}\"\n"));

    let report = app.lew().args(["--output", "json", "setup"]).ok().json();
    let b = report["resources"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["resource"] == "s3 bucket")
        .unwrap();
    assert_eq!(b["name"], bucket.as_str());
    assert_eq!(b["action"], "unchanged", "{b}");
    assert!(
        b["note"].as_str().unwrap().contains("not created by lew"),
        "{b}"
    );
    // Used as it is: neither tagged nor given lew's policy.
    let tags = aws.s3.get_bucket_tagging().bucket(&bucket).send().await;
    assert!(
        tags.map_or(true, |t| t.tag_set().iter().all(|t| t.key() != "lew:app")),
        "the user's bucket was tagged"
    );
    assert!(
        aws.s3
            .get_bucket_policy()
            .bucket(&bucket)
            .send()
            .await
            .is_err(),
        "the user's bucket got a policy"
    );

    // Wired to this bucket: the permission's source, lew's notification entry beside the
    // user's, and the task role's access.
    let function = format!("{}-launcher", app.prefix());
    let statement = function_policy(&aws, &function)
        .await
        .into_iter()
        .find(|s| s["Principal"]["Service"] == "s3.amazonaws.com")
        .unwrap();
    assert_eq!(
        statement["Condition"]["ArnLike"]["AWS:SourceArn"],
        format!("arn:aws:s3:::{bucket}")
    );
    let lambdas = lambda_notifications(&aws, &bucket).await;
    let id = format!("{}-launcher", app.prefix());
    assert_eq!(
        filter_rules(&lambdas[&id]),
        [
            ("prefix".to_string(), "scenes/".to_string()),
            ("suffix".to_string(), ".zip".to_string())
        ]
    );
    let kept = notifications(&aws, &bucket).await;
    assert_eq!(kept.queue_configurations().len(), 1, "{kept:?}");
    assert_eq!(kept.queue_configurations()[0].queue_arn(), queue_arn);
    let task_policy: Value = serde_json::from_str(&lew::resources::percent_decode(
        &aws.iam
            .get_role_policy()
            .role_name(format!("{}-task", app.prefix()))
            .policy_name("lew")
            .send()
            .await
            .unwrap()
            .policy_document,
    ))
    .unwrap();
    assert!(
        task_policy
            .to_string()
            .contains(&format!("arn:aws:s3:::{bucket}/scenes/*")),
        "{task_policy}"
    );

    // Even --delete-data keeps the bucket and its objects; only lew's entry goes.
    let report = app
        .lew()
        .args(["--output", "json", "teardown", "--yes", "--delete-data"])
        .ok()
        .json();
    let b = report["resources"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["resource"] == "s3 bucket")
        .unwrap();
    assert_eq!(b["result"], "not_owned", "{report}");
    aws.s3
        .head_object()
        .bucket(&bucket)
        .key("notes/readme.txt")
        .send()
        .await
        .expect("the user's object is still there");
    assert!(lambda_notifications(&aws, &bucket).await.is_empty());
    let kept = notifications(&aws, &bucket).await;
    assert_eq!(kept.queue_configurations().len(), 1, "{kept:?}");
    assert_eq!(kept.queue_configurations()[0].id(), Some("others-queue"));
}
