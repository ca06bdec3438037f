//! `kkp apply [PLANFILE] [-f PATH...] [--dir DIR] [--auto-approve] [--expect-digest D] [--policy FILE] [--waves W] [--refresh|--refresh-only]
//! [--parallelism N]`

use super::plan::{PlanFlags, plan_options};
use super::progress::Progress;
use super::{StateArgs, TopologyArgs};
use kkp::apply::eta::Estimate;
use kkp::apply::readyz::Readyz;
use kkp::apply::{Event, Outcome, Settings, Source, retry};
use kkp::plan::Plan;
use kkp::policy::Decision;
use std::collections::BTreeSet;
use std::io::{BufRead, IsTerminal, Write};
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

#[derive(Debug, clap::Args)]
pub struct Args {
    /// A plan saved with `kkp plan -o` (or an import saved with `kkp import -o`); applied
    /// exactly, without a new plan.
    planfile: Option<PathBuf>,
    /// Topology to plan from. With PLANFILE it is not planned again; it only supplies the
    /// Secrets among its documents (Seeds' kubeconfigs, cloud credentials to copy).
    #[arg(short = 'f', long = "filename", value_name = "PATH", required_unless_present = "planfile")]
    files: Vec<PathBuf>,
    #[command(flatten)]
    state: StateArgs,
    #[command(flatten)]
    flags: PlanFlags,
    #[command(flatten)]
    target: super::targets::TargetArgs,
    /// Apply without asking for confirmation.
    #[arg(long)]
    auto_approve: bool,
    /// Refuse the plan file unless its digest is this one (as reviewed).
    #[arg(long, value_name = "DIGEST", requires = "planfile")]
    expect_digest: Option<String>,
    /// Nodes applied at once across all seeds.
    #[arg(long, default_value_t = 10)]
    parallelism: usize,
    /// Nodes applied at once on one seed.
    #[arg(long, default_value_t = 10)]
    per_seed: usize,
    /// Print progress as NDJSON events: `estimate` (the expected duration; one per wave too),
    /// `started`, `finished`, `failed`, `skipped`, and last `summary` (docs/cli.md).
    #[arg(long)]
    json: bool,
    /// Write nothing to the seeds: read them and record what they hold into the state
    /// (deleted objects forgotten, fields and certificates changed outside kkp kept as they
    /// are), after confirmation.
    #[arg(long, conflicts_with = "planfile")]
    refresh_only: bool,
    #[command(flatten)]
    policy: super::policy::PolicyArgs,
    /// Apply clusters in waves, each healthy before the next: `[NAME=]SELECTOR,...` where a
    /// selector is N% (of the plan's clusters, cumulative), KEY:VALUE labels joined by & or
    /// cluster names joined by +; e.g. `canary=c1+c2,25%,100%`. Default: the policy file's
    /// `rollout.waves`. A wave stops the rollout if an action fails, a cluster's apiserver
    /// answers /readyz not ready (asked through the seed's service proxy within
    /// --ready-timeout; "not checked" with the reason where the proxy cannot reach it, and on
    /// --dir), or the check fails; re-running continues with the clusters still to do. Each
    /// wave prints its expected duration.
    #[arg(long, value_name = "WAVES")]
    waves: Option<String>,
    /// Command run (with `sh -c`) after each wave; non-zero stops the rollout. It gets
    /// KKP_WAVE and KKP_WAVE_CLUSTERS (space-separated). Default: the policy's `rollout.check`.
    #[arg(long, value_name = "COMMAND")]
    wave_check: Option<String>,
}

pub async fn run(args: Args) -> anyhow::Result<ExitCode> {
    let policy = args.policy.load()?;
    let backend = super::state::open(&args.state).await?;
    if args.refresh_only {
        return refresh_only(backend, &args).await;
    }
    // A saved plan is checked before anything is locked or read.
    let source = match &args.planfile {
        Some(_) if !args.flags.is_empty() => {
            anyhow::bail!(
                "--target, --exclude, --allow-destroy and --allow-downgrade shape a new plan; a saved plan is applied as it is\n  fix: pass them to `kkp plan -o PLANFILE` instead"
            )
        }
        Some(path) => {
            let plan = read_plan(path, args.expect_digest.as_deref())?;
            // The policy is checked again here, so a pipeline that skipped `kkp plan --policy`
            // still cannot apply what it denies; review is satisfied only by the digest a
            // person approved.
            if let Some(policy) = &policy {
                let verdict = super::policy::check(policy, &plan);
                match verdict.decision {
                    Decision::Deny => {
                        eprintln!("error: the policy denies this plan; nothing was applied");
                        return Ok(super::policy::exit_code(Decision::Deny));
                    }
                    Decision::Review if args.expect_digest.is_none() => {
                        eprintln!(
                            "error: the policy needs a person to review this plan; nothing was applied\n  fix: once the plan is approved, apply it with --expect-digest DIGEST (the digest `kkp show {}` prints)",
                            path.display()
                        );
                        return Ok(super::policy::exit_code(Decision::Review));
                    }
                    _ => {}
                }
            }
            Source::Saved(plan)
        }
        None => {
            let topology = super::plan::load_topology(&TopologyArgs { files: args.files.clone() })?;
            Source::Topology { topology, options: plan_options(&args.flags)? }
        }
    };
    let targets = args.target.factory(&args.files)?;
    // Objects on the target with no state: planning from nothing would overwrite them all.
    // An import plan is what adopts them. While another apply holds the lock, its objects
    // may be out before its first records: the lock, taken below, refuses this apply instead.
    let busy = backend.holder().await?.is_some_and(|holder| holder.alive);
    let imports = matches!(&source, Source::Saved(plan) if plan.actions.iter().all(|a| a.action == kkp::plan::Action::Import));
    if !args.state.new_state
        && !busy
        && !imports
        && let Some(object) = args.target.seeds.existing_object()
        && backend.load().await?.state.is_none()
    {
        anyhow::bail!(
            "{}: there is no state, but {} already holds objects (e.g. {}): a plan from nothing would create every object again over them\n  fix: restore the state (e.g. from its .backup), or pass --new-state to start a new state on purpose",
            backend.describe(),
            args.target.seeds.describe(),
            object.display()
        );
    }
    if !args.state.new_state
        && !busy
        && args.target.seeds.is_kube()
        && let Source::Topology { topology, .. } = &source
        && backend.load().await?.state.is_none()
        && let Some((seed, namespace)) = namespace_kkp_applied(&targets, topology).await
    {
        anyhow::bail!(
            "{}: there is no state, but seed {seed} already holds namespace {namespace} that kkp applied: a plan from nothing would create every object again over what runs there\n  fix: restore the state (e.g. from its .backup), adopt what runs with `kkp import`, or pass --new-state to start a new state on purpose",
            backend.describe()
        );
    }
    let rollout = policy.as_ref().and_then(|p| p.rollout.clone()).unwrap_or(serde_json::Value::Null);
    let from_policy = |key: &str| rollout.get(key).and_then(|v| v.as_str()).map(str::to_string);
    let waves = match args.waves.clone().or_else(|| from_policy("waves")) {
        Some(spec) => kkp::apply::waves::parse(&spec).map_err(|e| anyhow::anyhow!("--waves {spec}: {e}"))?,
        None => Vec::new(),
    };
    let wave_check = args.wave_check.clone().or_else(|| from_policy("check"));
    let settings = Settings {
        parallelism: args.parallelism.max(1),
        per_seed: args.per_seed.max(1),
        now: super::now(),
        retry: retry::Policy::default(),
        ready_timeout: std::time::Duration::from_secs(args.target.ready_timeout),
        take_over: args.target.force_conflicts,
        topology_secrets: Arc::new(super::targets::topology_secrets(&args.files)?),
        waves,
    };
    let cancel = Arc::new(AtomicBool::new(false));
    let flag = cancel.clone();
    tokio::spawn(async move {
        if tokio::signal::ctrl_c().await.is_ok() {
            flag.store(true, Ordering::SeqCst);
            eprintln!("\nInterrupted: finishing the actions in flight, starting no new ones, saving the state.");
        }
    });
    let view = Arc::new(Terminal {
        json: args.json,
        auto_approve: args.auto_approve,
        progress: Mutex::new(None),
        blocked: AtomicBool::new(false),
        policy: if args.planfile.is_some() { None } else { policy },
        refused: Mutex::new(None),
        wave_check,
    });
    let outcome = kkp::apply::apply(backend, source, &targets, settings, view.clone(), cancel).await?;
    let blocked = view.blocked.load(Ordering::SeqCst);
    if blocked {
        eprintln!("error: some clusters were not planned (see the notes above); nothing was applied to them");
    }
    let json = args.json;
    Ok(match outcome {
        Outcome::NoChanges if blocked => ExitCode::from(1),
        Outcome::NoChanges => {
            if json {
                super::output::outln!("{}", serde_json::json!({"event": "summary", "result": "no-changes"}));
            } else {
                super::output::outln!("No changes to apply.");
            }
            ExitCode::SUCCESS
        }
        Outcome::Declined => match *view.refused.lock().expect("refusal lock") {
            Some(decision) => {
                eprintln!("Apply refused by the policy.");
                super::policy::exit_code(decision)
            }
            None => {
                eprintln!("Apply cancelled.");
                ExitCode::from(1)
            }
        },
        Outcome::Applied { report, serial, interrupted } => {
            if json {
                super::output::outln!("{}", summary_json(&report, serial, interrupted));
            } else {
                print_summary(&report, serial, interrupted);
            }
            match (interrupted, report.is_complete()) {
                (true, _) => ExitCode::from(130),
                (false, true) if blocked => ExitCode::from(1),
                (false, true) => ExitCode::SUCCESS,
                (false, false) => ExitCode::from(1),
            }
        }
    })
}

/// The summary as the last NDJSON event of `apply --json`.
fn summary_json(report: &kkp::apply::Report, serial: u64, interrupted: bool) -> serde_json::Value {
    serde_json::json!({
        "event": "summary",
        "result": if report.is_complete() { "complete" } else if interrupted { "interrupted" } else { "incomplete" },
        "applied": report.applied.len(),
        "failed": report.failed.iter().map(|(a, e)| serde_json::json!({"address": a, "error": e})).collect::<Vec<_>>(),
        "skipped": report.skipped.len(),
        "not_started": report.cancelled.len(),
        "serial": serial,
    })
}

/// The `estimate` NDJSON event of `apply --json`: before the apply (`wave` null) and each wave.
fn estimate_json(estimate: &Estimate, wave: Option<&str>) -> serde_json::Value {
    match estimate {
        Estimate::Expected(e) => serde_json::json!({
            "event": "estimate",
            "wave": wave,
            "expected_ms": e.total.as_millis() as u64,
            "critical_path_ms": e.critical_path.as_millis() as u64,
            "work_ms": e.work.as_millis() as u64,
            "from_applies": e.applies,
            "untimed_actions": e.untimed,
        }),
        Estimate::Unknown(why) => serde_json::json!({"event": "estimate", "wave": wave, "expected_ms": null, "reason": why}),
    }
}

/// Up to this many skipped nodes are listed one by one.
const FEW: usize = 20;

/// The human summary: every failure, but what did not run only as one line per cluster (or
/// seed), so a large fleet's interrupted apply does not flood the terminal.
fn print_summary(report: &kkp::apply::Report, serial: u64, interrupted: bool) {
    use std::collections::BTreeMap;
    super::output::outln!(
        "\nApply {}: {} applied, {} failed, {} skipped, {} not started. State serial {serial}.",
        if report.is_complete() { "complete" } else { "incomplete" },
        report.applied.len(),
        report.failed.len(),
        report.skipped.len(),
        report.cancelled.len(),
    );
    for (address, error) in &report.failed {
        super::output::outln!("  failed  {address}: {error}");
    }
    let group = |a: &kkp::address::Address| match a.cluster() {
        Some(cluster) => format!("cluster {cluster}"),
        None => format!("seed {}", a.as_str().split('/').nth(1).unwrap_or_default()),
    };
    if report.skipped.len() <= FEW {
        for (address, because) in &report.skipped {
            super::output::outln!("  skipped {address} (depends on failed {because})");
        }
    } else {
        let mut skipped: BTreeMap<String, (usize, &kkp::address::Address)> = BTreeMap::new();
        for (address, because) in &report.skipped {
            skipped.entry(group(address)).or_insert((0, because)).0 += 1;
        }
        for (owner, (count, because)) in skipped {
            super::output::outln!("  skipped {count} nodes of {owner} (depending on failed {because})");
        }
    }
    let mut not_started: BTreeMap<String, usize> = BTreeMap::new();
    for address in &report.cancelled {
        *not_started.entry(group(address)).or_default() += 1;
    }
    for (owner, count) in not_started {
        super::output::outln!("  not started: {count} of {owner}");
    }
    if interrupted {
        super::output::outln!("Interrupted. The state records everything applied; run the same command again to finish.");
    } else if !report.is_complete() {
        super::output::outln!("Fix the failures above and run the same command again; what was applied is not redone.");
    }
}

/// Reads a saved plan and checks it is the one reviewed.
fn read_plan(path: &std::path::Path, expected: Option<&str>) -> anyhow::Result<Plan> {
    let bytes = std::fs::read(path).map_err(|e| anyhow::anyhow!("cannot read {}: {e}", path.display()))?;
    let (plan, digest) = kkp::plan::file::from_bytes(path, &bytes)?;
    if let Some(expected) = expected
        && expected != digest
    {
        anyhow::bail!(
            "{}: the plan's digest is {digest}, not the expected {expected}\n  fix: apply the plan that was reviewed",
            path.display()
        );
    }
    Ok(plan)
}

/// The terminal view of an apply: the plan, a confirmation prompt, progress, summaries.
struct Terminal {
    json: bool,
    auto_approve: bool,
    progress: Mutex<Option<Progress>>,
    /// The plan left clusters out (a CA changed outside kkp, a seed unreadable).
    blocked: AtomicBool,
    /// The policy to check a fresh plan against before asking.
    policy: Option<kkp::policy::Policy>,
    /// Set when the policy refused the plan (deny, or review without a person to approve).
    refused: Mutex<Option<Decision>>,
    /// `--wave-check`.
    wave_check: Option<String>,
}

impl kkp::apply::View for Terminal {
    fn recovered(&self, records: usize, serial: u64) {
        eprintln!("Recovered {records} records of an interrupted apply into the state (serial {serial}).");
    }

    fn planned(&self, plan: &Plan) {
        self.blocked.store(plan.has_blocked(), Ordering::SeqCst);
        // `--json` keeps stdout pure NDJSON: the plan for a person goes to stderr.
        if self.json {
            eprint!("{}", kkp::plan::display::human(plan));
        } else {
            super::output::print_human(&kkp::plan::display::human(plan));
        }
    }

    fn approve(&self, plan: &Plan) -> Result<bool, String> {
        if let Some(policy) = &self.policy {
            let decision = super::policy::check(policy, plan).decision;
            // Review is a person answering the prompt; --auto-approve has nobody to ask.
            if decision == Decision::Deny || (decision == Decision::Review && self.auto_approve) {
                *self.refused.lock().expect("refusal lock") = Some(decision);
                return Ok(false);
            }
        }
        if self.auto_approve {
            return Ok(true);
        }
        confirm()
    }

    fn starting(&self, plan: &Plan, settings: &Settings, target: &str) {
        eprintln!(
            "Applying {} actions to {target} (parallelism {}, {} per seed).",
            plan.actions.len(),
            settings.parallelism,
            settings.per_seed
        );
        *self.progress.lock().expect("progress lock") = Some(Progress::new(plan.actions.len(), self.json));
    }

    fn event(&self, event: Event) {
        if let Some(progress) = self.progress.lock().expect("progress lock").as_ref() {
            progress.event(event);
        }
    }

    fn finished(&self) {
        if let Some(progress) = self.progress.lock().expect("progress lock").take() {
            progress.finish();
        }
    }

    fn estimated(&self, estimate: &Estimate, wave: Option<&str>) {
        if self.json {
            super::output::outln!("{}", estimate_json(estimate, wave));
            return;
        }
        let line = match estimate {
            Estimate::Expected(e) => {
                let untimed = match e.untimed {
                    0 => String::new(),
                    n => format!("; {n} actions of steps not timed before counted at the average"),
                };
                let applies = if e.applies == 1 { "1 earlier apply".to_string() } else { format!("{} earlier applies", e.applies) };
                format!("{} (from timings of {applies}{untimed})", kkp::apply::eta::approx(e.total))
            }
            Estimate::Unknown(why) => format!("unknown ({why})"),
        };
        match wave {
            // Beside the plan, before the confirmation.
            None => super::output::outln!("\nExpected duration: {line}"),
            Some(wave) => eprintln!("  wave {wave} expected: {line}"),
        }
    }

    fn wave_starting(&self, name: &str, clusters: &BTreeSet<String>, actions: usize) {
        eprintln!("Wave {name}: {} clusters, {actions} actions ({}).", clusters.len(), listed(clusters));
    }

    fn wave_readyz(&self, _name: &str, checked: &[(String, Readyz)]) {
        let ready: BTreeSet<String> = checked.iter().filter(|(_, r)| *r == Readyz::Ready).map(|(c, _)| c.clone()).collect();
        if !ready.is_empty() {
            eprintln!("  apiserver /readyz ready: {}", listed(&ready));
        }
        // One line per reason: a directory target, or a seed without the proxy, says it once.
        let mut not_checked: std::collections::BTreeMap<&str, BTreeSet<String>> = std::collections::BTreeMap::new();
        for (cluster, found) in checked {
            match found {
                Readyz::NotChecked(why) => {
                    not_checked.entry(why).or_default().insert(cluster.clone());
                }
                Readyz::NotReady(said) => eprintln!("  apiserver /readyz NOT READY: {cluster}: {said}"),
                Readyz::Ready => {}
            }
        }
        for (why, clusters) in not_checked {
            eprintln!("  apiserver /readyz not checked for {}: {why}", listed(&clusters));
        }
    }

    fn wave_healthy(&self, name: &str, clusters: &BTreeSet<String>) -> Result<(), String> {
        let Some(check) = &self.wave_check else { return Ok(()) };
        let names: Vec<&str> = clusters.iter().map(String::as_str).collect();
        // The check is the person's command; the runtime keeps other tasks going meanwhile.
        let out = tokio::task::block_in_place(|| {
            std::process::Command::new("sh").args(["-c", check]).env("KKP_WAVE", name).env("KKP_WAVE_CLUSTERS", names.join(" ")).output()
        })
        .map_err(|e| format!("the wave check `{check}` cannot run: {e}"))?;
        if out.status.success() {
            return Ok(());
        }
        let said = String::from_utf8_lossy(&out.stderr).trim().lines().last().unwrap_or_default().to_string();
        Err(format!(
            "the wave check `{check}` failed ({}){}",
            out.status,
            if said.is_empty() { String::new() } else { format!(": {said}") }
        ))
    }

    fn wave_rechecking(&self, name: &str, clusters: &BTreeSet<String>, last_why: &str) {
        eprintln!("Wave {name} ({}) stopped the last rollout ({last_why}); checking it again before going on.", listed(clusters));
    }

    fn wave_stopped(&self, name: &str, clusters: &BTreeSet<String>, why: &str) {
        eprintln!(
            "Rollout stopped after wave {name} ({}): {why}.\n  The state records every node applied so far; run the same `kkp apply -f ... --waves ...` again to continue with the clusters still to do (a wave found unhealthy is checked again first).",
            listed(clusters)
        );
    }
}

/// Cluster names for a message, shortened past ten.
fn listed(clusters: &BTreeSet<String>) -> String {
    let shown: Vec<&str> = clusters.iter().take(10).map(String::as_str).collect();
    match clusters.len().saturating_sub(shown.len()) {
        0 => shown.join(", "),
        more => format!("{} and {more} more", shown.join(", ")),
    }
}

/// Asks for `yes` on a terminal; refuses without one instead of hanging.
pub fn confirm() -> Result<bool, String> {
    if !std::io::stdin().is_terminal() {
        return Err("apply needs confirmation, but stdin is not a terminal\n  fix: review the plan and pass --auto-approve, or save it with `kkp plan -o PLANFILE` and run `kkp apply PLANFILE`".into());
    }
    eprint!("\nDo you want to apply these actions? Only 'yes' will be accepted: ");
    std::io::stderr().flush().map_err(|e| e.to_string())?;
    let mut answer = String::new();
    std::io::stdin().lock().read_line(&mut answer).map_err(|e| e.to_string())?;
    Ok(answer.trim() == "yes")
}

/// `kkp apply --refresh-only`: record what the seeds hold.
async fn refresh_only(backend: Arc<dyn kkp::state::backend::Backend>, args: &Args) -> anyhow::Result<ExitCode> {
    if !args.flags.is_empty() {
        anyhow::bail!(
            "--refresh-only records what the seeds hold; it takes no plan flags\n  fix: drop --target, --exclude, --allow-destroy, --allow-downgrade, --refresh and --accept"
        );
    }
    // Without a target flag, each seed is read where the state says it was applied.
    let recorded = backend.load().await?.state;
    let factory = args.target.seeds.factory_for(&args.files, recorded.as_ref())?;
    let auto_approve = args.auto_approve;
    let approve = move |drift: &[kkp::refresh::drift::DriftEntry], unreadable: &std::collections::BTreeMap<String, String>| {
        let plan = Plan { drift: drift.to_vec(), ..empty_plan() };
        print!("{}", kkp::plan::display::drift_section(&plan));
        for (seed, error) in unreadable {
            println!("note: seed {seed} could not be read and is left as recorded: {error}");
        }
        println!("The state will record the seeds as they are; nothing is written to them.");
        if auto_approve { Ok(true) } else { confirm() }
    };
    let outcome = kkp::refresh::record_truth(backend, &factory, args.parallelism.max(1), &approve).await?;
    let unreadable_exit = |unreadable: &std::collections::BTreeMap<String, String>| {
        for (seed, error) in unreadable {
            eprintln!("error: seed {seed} could not be read: {error}");
        }
        if unreadable.is_empty() { ExitCode::SUCCESS } else { ExitCode::from(1) }
    };
    Ok(match outcome {
        kkp::refresh::TruthOutcome::NoState => {
            println!("No state yet: nothing to refresh.");
            ExitCode::SUCCESS
        }
        kkp::refresh::TruthOutcome::NoDrift { unreadable } => {
            println!("No changes outside kkp. The state already matches the seeds.");
            unreadable_exit(&unreadable)
        }
        kkp::refresh::TruthOutcome::Declined => {
            println!("Apply cancelled.");
            ExitCode::from(1)
        }
        kkp::refresh::TruthOutcome::Recorded { nodes, serial, unreadable } => {
            println!("Recorded {nodes} nodes as the seeds hold them. State serial {serial}.");
            unreadable_exit(&unreadable)
        }
    })
}

/// A plan with nothing in it, to render a drift section alone.
fn empty_plan() -> Plan {
    Plan::default()
}

/// A namespace carrying kkp's label on one of the topology's seeds, if any: what a lost state
/// leaves behind on API servers. Seeds that cannot be reached are left to the apply to report.
async fn namespace_kkp_applied(targets: &super::targets::Factory, topology: &kkp::topology::Topology) -> Option<(String, String)> {
    use kkp::apply::TargetFactory;
    let seeds: BTreeSet<String> = topology.seeds.keys().cloned().collect();
    let reached = targets.targets(&seeds).await.ok()?;
    let (key, value) = kkp::render::MANAGED_BY;
    let label = std::collections::BTreeMap::from([(key.to_string(), value.to_string())]);
    for (seed, target) in reached {
        // Names and labels suffice: a metadata-only list.
        let found = target.list_metadata(kkp::object::Kind::Namespace, None, &label).await.unwrap_or_default();
        if let Some(name) = found.first().and_then(|ns| ns.pointer("/metadata/name")).and_then(serde_json::Value::as_str) {
            return Some((seed, name.to_string()));
        }
    }
    None
}
