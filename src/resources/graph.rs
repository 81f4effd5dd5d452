//! The walk over every resource in dependency order, shared by `setup` (apply) and `status`
//! (plan): each resource starts as soon as what it needs is in place, and everything is read at
//! once, so the longest chain of calls that must wait for one another sets the time, not the
//! number of calls.
//!
//! The order: roles, bucket, cluster, repository, log groups, queues and network are
//! independent; the task definition needs the job queue's URL; the function needs the queue,
//! the network and its role; the trigger needs the function and the bucket.

use anyhow::Result;
use futures::future::join_all;

use super::network::Network;
use super::{
    Deployment, Failure, Mode, Outcome, bucket, cluster, file, function, logs, network, queue,
    registry, roles, task_definition, trigger,
};

/// Everything one walk over the resources found or did.
#[derive(Debug, Default)]
pub struct Converged {
    pub outcomes: Vec<Outcome>,
    pub failures: Vec<Failure>,
    pub network: Option<Network>,
    pub queue_url: Option<String>,
    /// The image the worker's task definition runs.
    pub worker_image: Option<String>,
}

/// A plan names a queue that does not exist yet like this in the task definition and function.
const PLANNED: &str = "(to be created)";

/// Converges (in [`Mode::Plan`]: inspects) every resource; see the module comment for the order.
pub async fn converge(d: &Deployment, mode: Mode) -> Converged {
    let step = d.progress.step(if mode == Mode::Apply {
        "setting up"
    } else {
        "reading the current state"
    });
    let walk = Walk { d, mode };
    let role_specs = roles::specs(d);
    let (launcher_spec, other_specs) = role_specs.split_first().expect("three roles");
    let (bucket_done, bucket_ready) = handoff::<()>("the bucket");
    let (role_done, role_ready) = handoff::<()>("the launcher's role");
    let (dlq_done, dlq_ready) = handoff::<()>("the dead-letter queue");
    let (url_done, url) = handoff::<String>("the job queue");
    let (net_done, network_ready) = handoff::<Network>("the network");
    let (function_done, function_ready) = handoff::<()>("the function");
    let label = |kind: &str, name: &str| format!("{kind} {name}");

    let bucket = walk.node(
        label(bucket::KIND, &d.names.bucket),
        bucket_done.after(bucket::ensure(d, mode), |_| ()),
    );
    let launcher_role = walk.node(
        label(roles::KIND, &launcher_spec.name),
        role_done.after(roles::ensure(d, launcher_spec, mode), |_| ()),
    );
    // The task role may need a grant for the bucket's default-encryption key.
    let other_roles = join_all(other_specs.iter().map(|spec| {
        walk.node(label(roles::KIND, &spec.name), async move {
            if spec.name == d.names.task_role {
                roles::ensure_task(d, mode).await
            } else {
                roles::ensure(d, spec, mode).await
            }
        })
    }));
    let dlq = walk.node(
        label(queue::KIND, &d.names.dlq),
        dlq_done.after(queue::ensure(d, queue::Which::DeadLetter, mode), |_| ()),
    );
    let jobs = walk.node(label(queue::KIND, &d.names.queue), async {
        let ensured = queue::ensure_with_url(d, queue::Which::Jobs, mode, dlq_ready.ready());
        let r = url_done
            .after(ensured, |(_, url)| url.clone().unwrap_or(PLANNED.into()))
            .await;
        r.map(|(outcome, _)| outcome)
    });
    // The network has an outcome only when lew manages the security group.
    let net = async {
        let r = net_done
            .after(network::ensure(d, mode), |(_, n)| n.clone())
            .await;
        if let Ok((Some(o), _)) = &r {
            walk.report(&Ok(o.clone()));
        }
        r
    };
    let task_def = async {
        let r = task_definition::ensure_when(d, url.clone().get(), mode).await;
        let image = r.as_ref().ok().map(|(_, image)| image.clone());
        let r = r.map(|(o, _)| o);
        walk.report(&r);
        (
            (label(task_definition::KIND, &d.names.task_family), r),
            image,
        )
    };
    // The function needs its role to exist (Lambda checks it), the queue's URL and the
    // network; it is read meanwhile. The trigger is read at once too, and changes things only
    // once the function is there.
    let function_and_trigger = async {
        let inputs = async {
            let (role, url, net) =
                futures::join!(role_ready.ready(), url.clone().get(), network_ready.get());
            role?;
            Ok((url?, net?))
        };
        let func = walk.node(
            label(function::KIND, &d.names.function),
            function_done.after(function::ensure_when(d, inputs, mode), |_| ()),
        );
        let (func, (permission, notification)) = futures::join!(
            func,
            trigger::ensure(d, mode, function_ready.ready(), bucket_ready.ready())
        );
        let function_ok = func.1.is_ok();
        let mut out = vec![func];
        // Without the function, the trigger's own lines would only repeat its failure.
        if function_ok {
            walk.report(&permission);
            out.push((trigger::PERMISSION_KIND.to_string(), permission));
            if let Some(notification) = notification {
                walk.report(&notification);
                out.push((trigger::NOTIFICATION_KIND.to_string(), notification));
            }
        }
        out
    };
    let singles = async {
        futures::join!(
            walk.node(
                label(cluster::KIND, &d.names.cluster),
                cluster::ensure(d, mode)
            ),
            walk.node(
                label(registry::KIND, &d.names.repository),
                registry::ensure(d, mode)
            ),
            walk.node(
                label(logs::KIND, &d.names.worker_log_group),
                logs::ensure(d, logs::Which::Worker, mode)
            ),
            walk.node(
                label(logs::KIND, &d.names.launcher_log_group),
                logs::ensure(d, logs::Which::Launcher, mode)
            ),
        )
    };

    let (
        bucket_r,
        launcher_role_r,
        others,
        (dlq_r, jobs_r),
        net_r,
        (task_def_r, image),
        function_rs,
        (cluster_r, ecr_r, worker_logs_r, launcher_logs_r),
    ) = futures::join!(
        bucket,
        launcher_role,
        other_roles,
        async { futures::join!(dlq, jobs) },
        net,
        task_def,
        function_and_trigger,
        singles
    );

    let mut done = Converged {
        queue_url: url.get().await.ok().filter(|u| u != PLANNED),
        worker_image: image,
        ..Converged::default()
    };
    // Reported in dependency order: roles, storage, queues, compute, network, function, trigger.
    let mut ordered = vec![launcher_role_r];
    ordered.extend(others);
    ordered.extend([
        bucket_r,
        dlq_r,
        jobs_r,
        cluster_r,
        ecr_r,
        worker_logs_r,
        launcher_logs_r,
    ]);
    match net_r {
        Ok((outcome, network)) => {
            if let Some(o) = outcome {
                ordered.push((label(network::KIND, &d.names.security_group), Ok(o)));
            }
            done.network = Some(network);
        }
        Err(e) => ordered.push(("network".to_string(), Err(e))),
    }
    ordered.push(task_def_r);
    ordered.extend(function_rs);
    for (what, r) in ordered {
        file(&mut done.outcomes, &mut done.failures, &what, r);
    }
    step.clear();
    done
}

/// One walk: applying (setup, which reports each resource as it finishes) or planning.
struct Walk<'a> {
    d: &'a Deployment,
    mode: Mode,
}

impl Walk<'_> {
    /// One resource: runs its ensure, reports it when it finishes, and keeps its label for
    /// the report.
    async fn node(
        &self,
        label: String,
        ensure: impl Future<Output = Result<Outcome>>,
    ) -> (String, Result<Outcome>) {
        let result = ensure.await;
        self.report(&result);
        (label, result)
    }

    /// Prints a finished resource's line as progress (setup only; plans and status just
    /// report at the end).
    fn report(&self, result: &Result<Outcome>) {
        if self.mode != Mode::Apply {
            return;
        }
        if let Ok(o) = result {
            let changes = if o.changes.is_empty() {
                String::new()
            } else {
                format!(" ({})", o.changes.join("; "))
            };
            self.d.progress.line(format!(
                "{} {}: {}{changes}",
                o.resource,
                o.name,
                o.verb(self.mode)
            ));
        }
    }
}

/// What one resource hands to those that wait for it (the queue's URL, the network, or just
/// "in place"), or why it could not: a failed resource fails its waiters instead of leaving
/// them waiting.
struct Handoff<T> {
    tx: tokio::sync::watch::Sender<Option<Result<T, String>>>,
    what: &'static str,
}

/// The waiting side of a [`Handoff`]; clonable, each clone waits for the same value.
#[derive(Clone)]
struct Waiter<T> {
    rx: tokio::sync::watch::Receiver<Option<Result<T, String>>>,
    what: &'static str,
}

fn handoff<T>(what: &'static str) -> (Handoff<T>, Waiter<T>) {
    let (tx, rx) = tokio::sync::watch::channel(None);
    (Handoff { tx, what }, Waiter { rx, what })
}

impl<T: Clone> Handoff<T> {
    /// Runs `work`, then hands on `value` of its result (or its failure) and returns the
    /// result.
    async fn after<R>(
        self,
        work: impl Future<Output = Result<R>>,
        value: impl FnOnce(&R) -> T,
    ) -> Result<R> {
        let result = work.await;
        let handed = match &result {
            Ok(r) => Ok(value(r)),
            Err(e) => Err(format!(
                "{} could not be set up: {}",
                self.what,
                crate::error::one_line(e)
            )),
        };
        let _ = self.tx.send(Some(handed));
        result
    }
}

impl<T: Clone> Waiter<T> {
    async fn get(mut self) -> Result<T> {
        let what = self.what;
        let got = self
            .rx
            .wait_for(Option::is_some)
            .await
            .map_err(|_| anyhow::anyhow!("{what} could not be set up"))?
            .clone();
        got.expect("waited for a value").map_err(anyhow::Error::msg)
    }

    /// Waits for the resource without needing its value.
    async fn ready(self) -> Result<()> {
        self.get().await.map(|_| ())
    }
}
