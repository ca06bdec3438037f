//! Renders a plan for people: a terminal view and a size-capped markdown view for pull-request
//! comments. Both open with the roll-ups ([`super::rollup`]: replace and destroy complete,
//! identical changes folded across clusters, a per-seed table), then list every action by seed
//! and cluster. Reads the [`Plan`] model only.

use super::diff::FieldChange;
use super::{Action, Notice, Plan, PlannedAction, Reason, Summary, rollup};
use serde_json::Value;
use std::fmt::Write;

/// GitHub holds at most this many characters in a comment; the markdown view stays below.
pub const MARKDOWN_LIMIT: usize = 65_536;

/// Characters kept free for the closing note of a shortened markdown view.
const FOOTER_ROOM: usize = 600;

/// Clusters named in a folded change before "and N more".
const LISTED_CLUSTERS: usize = 12;

/// How much of a plan a view shows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Detail {
    /// Only the roll-ups: replace and destroy (complete), folded changes, the per-seed table.
    Summary,
    /// The roll-ups, then every action grouped by seed and cluster.
    Full,
}

/// The closing summary line.
pub fn summary_line(s: &Summary) -> String {
    let plural = |n: usize, one: &str, many: &str| if n == 1 { format!("{n} {one}") } else { format!("{n} {many}") };
    let import = if s.import > 0 { format!("{} to import, ", s.import) } else { String::new() };
    format!(
        "Plan: {import}{} to add, {} to change, {} to replace, {} to destroy; across {} and {}.",
        s.add,
        s.change,
        s.replace,
        s.destroy,
        plural(s.seeds, "seed", "seeds"),
        plural(s.clusters, "cluster", "clusters")
    )
}

/// The terminal view: roll-ups, then every action.
pub fn human(plan: &Plan) -> String {
    human_view(plan, Detail::Full)
}

/// The terminal view at the given detail; a refreshed plan starts with what changed outside kkp.
pub fn human_view(plan: &Plan, detail: Detail) -> String {
    let mut out = drift_section(plan);
    for notice in &plan.notices {
        let _ = writeln!(out, "note: {}", notice_text(notice));
    }
    if !plan.notices.is_empty() {
        out.push('\n');
    }
    if plan.summary.is_empty() && plan.has_blocked() {
        let _ = writeln!(out, "No changes for the clusters that were planned; the clusters noted above were not planned.");
        return out;
    }
    if plan.summary.is_empty() {
        let _ = writeln!(out, "No changes. The seeds match the topology ({} nodes up to date).", plan.summary.unchanged);
        return out;
    }
    let legend = if plan.summary.import > 0 { ", <- import into the state" } else { "" };
    let _ = writeln!(out, "kkp will perform these actions (+ create, ~ update, -/+ replace, - destroy{legend}):");
    let risky: Vec<&PlannedAction> = plan.actions.iter().filter(|a| rollup::is_risky(a)).collect();
    if !risky.is_empty() {
        let _ = writeln!(out, "\n{}", risky_heading(risky.len()));
        for a in &risky {
            write_risky(&mut out, a, "  ");
        }
    }
    let folds = folds(plan);
    if !folds.is_empty() {
        let _ = writeln!(out, "\nChanges, identical ones folded across clusters:");
        for f in &folds {
            write_fold(&mut out, f, "  ");
        }
    }
    let _ = writeln!(out, "\nPer seed:");
    write_seed_table(&mut out, plan);
    if detail == Detail::Full {
        let _ = writeln!(out, "\nEvery action, by seed and cluster:");
        // A fleet's first plan lists hundreds of thousands of actions: groups are written on
        // every core.
        let listings = super::parallel::map(&groups(plan), |actions| {
            let mut listing = format!("\n{}\n", heading(&actions[0]));
            for a in *actions {
                write_action(&mut listing, a, "  ");
            }
            listing
        });
        listings.iter().for_each(|listing| out.push_str(listing));
    }
    let _ = writeln!(out, "\n{}", summary_line(&plan.summary));
    out
}

/// The pull-request view: roll-ups, then every action, below [`MARKDOWN_LIMIT`] characters.
pub fn markdown(plan: &Plan, digest: Option<&str>) -> String {
    markdown_view(plan, digest, Detail::Full)
}

/// The pull-request view at the given detail. Replace and destroy actions always show, one by
/// one while they fit and folded across clusters otherwise; what does not fit after them is
/// left out whole (never cut inside a section) and the closing note points to the full plan.
pub fn markdown_view(plan: &Plan, digest: Option<&str>, detail: Detail) -> String {
    let mut out = String::from("### kkp plan\n\n");
    if !plan.drift.is_empty() {
        let _ = writeln!(out, "```\n{}```\n", drift_section(plan));
    }
    let _ = writeln!(out, "**{}**\n", summary_line(&plan.summary));
    if let Some(d) = digest {
        let _ = writeln!(out, "Plan digest: `{d}` (apply with `kkp apply --expect-digest {d} PLANFILE`)\n");
    }
    for notice in &plan.notices {
        let _ = writeln!(out, "> **Note:** {}\n", notice_text(notice));
    }
    if plan.summary.is_empty() {
        out.push_str("No changes.\n");
        return out;
    }
    let mut table =
        String::from("#### Per seed\n\n| seed | clusters | add | change | replace | destroy |\n|---|---:|---:|---:|---:|---:|\n");
    for r in rollup::seed_table(plan) {
        let _ = writeln!(table, "| {} | {} | {} | {} | {} | {} |", r.seed, r.clusters, r.add, r.change, r.replace, r.destroy);
    }
    table.push('\n');
    let risky: Vec<&PlannedAction> = plan.actions.iter().filter(|a| rollup::is_risky(a)).collect();
    let budget = MARKDOWN_LIMIT - FOOTER_ROOM;
    let used = |parts: &[&str]| parts.iter().map(|p| p.chars().count()).sum::<usize>();
    let mut complete = true;
    let risky_section = if risky.is_empty() {
        String::new()
    } else {
        let mut one_by_one = format!("#### {}\n\n```diff\n", risky_heading(risky.len()));
        for a in &risky {
            write_risky(&mut one_by_one, a, "");
        }
        one_by_one.push_str("```\n\n");
        if used(&[&out, &one_by_one, &table]) <= budget {
            one_by_one
        } else {
            let folded = rollup::fold(risky.iter().copied(), fold_key);
            let mut section = format!("#### {}, folded across clusters\n\n```diff\n", risky_heading(risky.len()));
            for f in &folded {
                write_fold_listing(&mut section, f, "", usize::MAX);
            }
            section.push_str("```\n\n");
            if used(&[&out, &section, &table]) > budget {
                // Too many to name even folded: counts with the first clusters of each.
                complete = false;
                section = format!("#### {}, folded across clusters (lists shortened)\n\n```diff\n", risky_heading(risky.len()));
                for f in &folded {
                    write_fold_listing(&mut section, f, "", LISTED_CLUSTERS);
                }
                section.push_str("```\n\n");
            }
            section
        }
    };
    out.push_str(&risky_section);
    out.push_str(&table);
    let mut left_out = 0;
    let folds = folds(plan);
    if !folds.is_empty() {
        let mut section = String::from("#### Changes, identical ones folded across clusters\n\n```diff\n");
        for f in &folds {
            let mut entry = String::new();
            write_fold(&mut entry, f, "");
            if left_out == 0 && used(&[&out, &section, &entry, "```\n\n"]) <= budget {
                section.push_str(&entry);
            } else {
                left_out += 1;
            }
        }
        section.push_str("```\n\n");
        out.push_str(&section);
    }
    if detail == Detail::Full {
        for actions in groups(plan) {
            if left_out > 0 {
                left_out += 1;
                continue;
            }
            let heading = heading(&actions[0]);
            let mut section = String::new();
            let counts = counts(actions);
            let _ = writeln!(section, "<details><summary>{heading}: {counts}</summary>\n\n```diff");
            for a in actions {
                write_action(&mut section, a, "");
            }
            section.push_str("```\n</details>\n\n");
            if used(&[&out, &section]) > budget {
                left_out += 1;
            } else {
                out.push_str(&section);
            }
        }
    }
    if left_out > 0 || !complete {
        let _ = writeln!(
            out,
            "_{left_out} sections are left out to stay under GitHub's {MARKDOWN_LIMIT}-character limit{}. The whole plan: `kkp show PLANFILE` (or `--json`)._",
            if complete {
                "; every replace and destroy is shown above"
            } else {
                "; replace and destroy are folded with shortened cluster lists"
            }
        );
    }
    cut_to_limit(out)
}

/// Cuts `text` to [`MARKDOWN_LIMIT`] characters on a character boundary (only notices, which
/// come first, can make it that long).
fn cut_to_limit(mut text: String) -> String {
    if let Some((at, _)) = text.char_indices().nth(MARKDOWN_LIMIT - FOOTER_ROOM) {
        text.truncate(at);
        text.push_str("\n\n_Cut to stay under GitHub's comment limit. The whole plan: `kkp show PLANFILE`._\n");
    }
    text
}

fn risky_heading(n: usize) -> String {
    if n == 1 { "Replace and destroy: 1 action".to_string() } else { format!("Replace and destroy: {n} actions, all listed") }
}

/// One replace or destroy, on one line, with its class, risk and the cluster's readable name.
fn write_risky(out: &mut String, a: &PlannedAction, indent: &str) {
    let reasons: Vec<String> = a.reasons.iter().map(describe).collect();
    let name = a.review.human_readable_name.as_ref().map(|n| format!(" ({n:?})")).unwrap_or_default();
    // In markdown (no indent) the symbol starts the line, so GitHub colours `-` lines red.
    let symbol = if indent.is_empty() { format!("{:<3}", a.action.symbol()) } else { format!("{:>3}", a.action.symbol()) };
    let _ = writeln!(
        out,
        "{indent}{symbol} {}{name}  {}, {}  ({})",
        a.address,
        a.review.class.as_str(),
        a.review.risk.as_str(),
        reasons.join("; ")
    );
}

/// The non-risky actions folded by their description.
fn folds(plan: &Plan) -> Vec<rollup::Fold<'_>> {
    rollup::fold(plan.actions.iter().filter(|a| !rollup::is_risky(a)), fold_key)
}

/// An action's description with its cluster generalised: equal for identical changes.
fn fold_key(a: &PlannedAction) -> String {
    let reasons: Vec<String> = a.reasons.iter().map(describe).collect();
    let mut text = format!(
        "{:>3} {}  {}, {}  ({})\n",
        a.action.symbol(),
        rollup::generic_address(a),
        a.review.class.as_str(),
        a.review.risk.as_str(),
        reasons.join("; ")
    );
    if matches!(a.action, Action::Update | Action::Replace) {
        for c in &a.changes {
            write_change(&mut text, c, "      ");
        }
    }
    rollup::without_cluster_name(&text, a.cluster.as_deref())
}

fn write_fold(out: &mut String, fold: &rollup::Fold, indent: &str) {
    write_fold_listing(out, fold, indent, LISTED_CLUSTERS);
}

/// A folded change: its description, then the clusters it happens on (at most `listed` named).
fn write_fold_listing(out: &mut String, fold: &rollup::Fold, indent: &str, listed: usize) {
    let mut lines = fold.key.lines();
    if let Some(first) = lines.next() {
        let _ = writeln!(out, "{indent}{first}");
    }
    let clusters = fold.clusters();
    if !clusters.is_empty() {
        let shown: Vec<&str> = clusters.iter().take(listed).copied().collect();
        let more = clusters.len() - shown.len();
        let plural = if clusters.len() == 1 { "cluster" } else { "clusters" };
        let tail = if more > 0 { format!(" and {more} more") } else { String::new() };
        let _ = writeln!(out, "{indent}      on {} {plural}: {}{tail}", clusters.len(), shown.join(", "));
    }
    for line in lines {
        let _ = writeln!(out, "{indent}{line}");
    }
}

fn write_seed_table(out: &mut String, plan: &Plan) {
    let rows = rollup::seed_table(plan);
    let width = rows.iter().map(|r| r.seed.len()).max().unwrap_or(0).max(4);
    // The import column only for import plans, so other plans look as they always did.
    let imports = rows.iter().any(|r| r.import > 0);
    let import = |n: &dyn std::fmt::Display| if imports { format!("  {n:>6}") } else { String::new() };
    let _ = writeln!(
        out,
        "  {:<width$}  {:>8}{}  {:>5}  {:>6}  {:>7}  {:>7}",
        "seed",
        "clusters",
        import(&"import"),
        "add",
        "change",
        "replace",
        "destroy"
    );
    for r in rows {
        let _ = writeln!(
            out,
            "  {:<width$}  {:>8}{}  {:>5}  {:>6}  {:>7}  {:>7}",
            r.seed,
            r.clusters,
            import(&r.import),
            r.add,
            r.change,
            r.replace,
            r.destroy
        );
    }
}

fn counts(actions: &[PlannedAction]) -> String {
    let n = |k: Action| actions.iter().filter(|a| a.action == k).count();
    format!(
        "{} to add, {} to change, {} to replace, {} to destroy",
        n(Action::Create),
        n(Action::Update),
        n(Action::Replace),
        n(Action::Delete)
    )
}

/// Calls `f` once per group (a seed's own nodes, then each of its clusters) in plan order.
/// The plan's actions by seed and cluster (they come grouped).
fn groups(plan: &Plan) -> Vec<&[PlannedAction]> {
    plan.actions.chunk_by(|a, b| a.seed == b.seed && a.cluster == b.cluster).collect()
}

/// A group's heading, from its first action.
fn heading(a: &PlannedAction) -> String {
    match &a.cluster {
        Some(c) => match &a.review.human_readable_name {
            Some(name) => format!("seed {} · cluster {c} ({name:?})", a.seed),
            None => format!("seed {} · cluster {c}", a.seed),
        },
        None => format!("seed {}", a.seed),
    }
}

fn write_action(out: &mut String, a: &PlannedAction, indent: &str) {
    let reasons: Vec<String> = a.reasons.iter().map(describe).collect();
    let _ = writeln!(out, "{indent}{:>3} {}  ({})", a.action.symbol(), a.address, reasons.join("; "));
    if matches!(a.action, Action::Update | Action::Replace) {
        for c in &a.changes {
            write_change(out, c, &format!("{indent}      "));
        }
    }
}

/// A notice in words.
pub fn notice_text(notice: &Notice) -> String {
    match notice {
        Notice::Paused { cluster, reason: Some(reason) } => {
            format!("cluster {cluster} is paused (spec.pause: {reason}); kkp leaves it as it is")
        }
        Notice::Paused { cluster, reason: None } => format!("cluster {cluster} is paused (spec.pause); kkp leaves it as it is"),
        Notice::LegacyTunnel { cluster } => format!(
            "cluster {cluster} uses the legacy OpenVPN tunnel (konnectivityEnabled: false), which KKP deprecated in 2.24 and removed in 2.26; remove the field to move it to Konnectivity"
        ),
        Notice::SeedUnreadable { cluster, seed, error } => {
            format!("cluster {cluster} is not planned: its seed {seed} could not be read ({error})")
        }
        Notice::Import { group, verdict } => import_verdict(group, verdict).trim_end().to_string(),
        Notice::CertificateAuthorityChanged { cluster, address } => format!(
            "cluster {cluster} is blocked: {address} was changed outside kkp, and kkp never silently re-issues or overwrites it\n  fix: check who changed it; to keep the Secret that is there now (a deleted one is made anew) and re-issue what the old one signed, re-run with --accept {address}"
        ),
    }
}

/// An import verdict in words: `cluster NAME: adopted, no changes`, the changes the next
/// apply makes, or why it is not adopted and how to adopt it anyway.
pub fn import_verdict(group: &str, verdict: &super::import::Verdict) -> String {
    use super::import::Verdict;
    let mut out = String::new();
    match verdict {
        Verdict::AdoptedNoChanges => {
            let _ = writeln!(out, "{group}: adopted, no changes");
        }
        Verdict::AdoptedWithChanges { changes } => {
            let _ = writeln!(out, "{group}: adopted, {} changes on the next apply", changes.len());
            for pending in changes {
                let _ = writeln!(out, "    {} {}", pending.what, pending.address);
                for field in &pending.fields {
                    let show = |v: &Option<Value>| v.as_ref().map_or_else(|| "(none)".to_string(), Value::to_string);
                    let _ = writeln!(out, "        {}: {} -> {}", field.path, show(&field.before), show(&field.after));
                }
            }
        }
        Verdict::NotAdopted { reasons } => {
            let _ = writeln!(out, "{group}: not adopted");
            for reason in reasons {
                let _ = writeln!(out, "    {reason}");
            }
            if let Some(cluster) = group.strip_prefix("cluster ") {
                let _ = writeln!(out, "    (to adopt it anyway: --accept cluster/{cluster})");
            }
        }
    }
    out
}

/// A reason in words.
pub fn describe(reason: &Reason) -> String {
    let name = |address: &crate::address::Address| address.as_str().rsplit('/').next().unwrap_or_default().to_string();
    match reason {
        Reason::Missing => "does not exist yet".into(),
        Reason::NewCertificateAuthority { common_name } => format!("new CA {common_name:?}"),
        Reason::NewCertificate { common_name } => format!("new certificate {common_name:?}"),
        Reason::NewKeyPair => "new key pair".into(),
        Reason::NewSecret => "new Secret, made at apply".into(),
        Reason::NoCertificateRecorded => "the state holds no certificate for it".into(),
        Reason::RequestChanged => "the certificate request changed".into(),
        Reason::IssuerReissued { issuer } => format!("its issuer {issuer} is re-issued"),
        Reason::SignedByOtherIssuer { issuer } => format!("it was signed by another {issuer}"),
        Reason::Expiring { not_after, window_days } => {
            format!("certificate expires {} (inside the {window_days}-day renewal window)", date(*not_after))
        }
        Reason::Expired { not_after } => format!("certificate expired {}", date(*not_after)),
        Reason::LabelsChangeCertificateKept => "labels change; the certificate is kept".into(),
        Reason::MountsReissued { secrets } => {
            let names: Vec<String> = secrets.iter().map(name).collect();
            format!("mounts re-issued Secrets {} (fingerprints known after apply)", names.join(", "))
        }
        Reason::MovesSeed { from, to } => format!("moves from seed {from} to seed {to}"),
        Reason::ImmutableField { path } => format!("{path} cannot change in place"),
        Reason::FieldsChange { paths } => match paths.as_slice() {
            [] => "changes".into(),
            [one] => format!("{one} changes"),
            [a, b] => format!("{a} and {b} change"),
            [first, rest @ ..] => format!("{first} and {} more fields change", rest.len()),
        },
        Reason::DiffersFromApplied { applied } => {
            let short: String = applied.trim_start_matches("sha256:").chars().take(12).collect();
            format!("differs from what was applied ({short})")
        }
        Reason::ClusterRemoved { cluster } => format!("cluster {cluster} is no longer in the topology"),
        Reason::SeedRemoved { seed } => format!("seed {seed} is no longer in the topology"),
        Reason::NoLongerRendered => "no longer rendered".into(),
        Reason::DeletedOutsideKkp => "deleted outside kkp".into(),
        Reason::ChangedOutsideKkp { managers } if managers.is_empty() => "changed outside kkp; restored".into(),
        Reason::ChangedOutsideKkp { managers } => format!("changed outside kkp by {}; restored", managers.join(", ")),
        Reason::CertificateReplacedOutsideKkp => "its certificate was replaced outside kkp".into(),
        Reason::ImportExisting { adds_label: false } => "exists; recorded as it is".into(),
        Reason::ImportExisting { adds_label: true } => "exists; recorded as it is, kkp's ownership label added".into(),
    }
}

/// A unix time as a UTC date and time, e.g. `2027-01-04 09:30 UTC`.
fn date(unix: i64) -> String {
    let format = time::macros::format_description!("[year]-[month]-[day] [hour]:[minute] UTC");
    time::OffsetDateTime::from_unix_timestamp(unix).ok().and_then(|t| t.format(&format).ok()).unwrap_or_else(|| format!("@{unix}"))
}

fn write_change(out: &mut String, c: &FieldChange, indent: &str) {
    let long = |v: &Option<Value>| v.as_ref().and_then(Value::as_str).is_some_and(|s| s.contains('\n'));
    if long(&c.before) || long(&c.after) {
        let before = c.before.as_ref().and_then(Value::as_str).unwrap_or_default();
        let after = c.after.as_ref().and_then(Value::as_str).unwrap_or_default();
        let _ = writeln!(out, "{indent}~ {}:", c.path);
        let diff = similar::TextDiff::from_lines(before, after);
        for hunk in diff.unified_diff().context_radius(2).iter_hunks() {
            for change in hunk.iter_changes() {
                let sign = match change.tag() {
                    similar::ChangeTag::Delete => "-",
                    similar::ChangeTag::Insert => "+",
                    similar::ChangeTag::Equal => " ",
                };
                let _ = write!(out, "{indent}    {sign} {}", change.value());
                if change.missing_newline() {
                    out.push('\n');
                }
            }
        }
        return;
    }
    let show = |v: &Value| match v {
        Value::String(s) => format!("{s:?}"),
        other => other.to_string(),
    };
    match (&c.before, &c.after) {
        (Some(b), Some(a)) => {
            let _ = writeln!(out, "{indent}~ {}: {} -> {}", c.path, show(b), show(a));
        }
        (None, Some(a)) => {
            let _ = writeln!(out, "{indent}+ {}: {}", c.path, show(a));
        }
        (Some(b), None) => {
            let _ = writeln!(out, "{indent}- {}: {}", c.path, show(b));
        }
        (None, None) => {}
    }
}

/// The "Changed outside kkp" section a refreshed plan starts with (empty without drift).
pub fn drift_section(plan: &Plan) -> String {
    use super::drift::Drift;
    let mut out = String::new();
    if plan.drift.is_empty() {
        return out;
    }
    let _ = writeln!(out, "Changed outside kkp ({} objects):", plan.drift.len());
    for entry in &plan.drift {
        let blocked = if entry.blocks { " (blocks its cluster until accepted)" } else { "" };
        match &entry.drift {
            Drift::Deleted => {
                let _ = writeln!(out, "  - {} ({} on seed {}): deleted{blocked}", entry.address, entry.object, entry.seed);
            }
            Drift::Changed { changes, managers } => {
                let by =
                    if managers.is_empty() { "by hand or an unknown writer".to_string() } else { format!("by {}", managers.join(", ")) };
                let _ = writeln!(out, "  ~ {} ({} on seed {}): changed {by}", entry.address, entry.object, entry.seed);
                for c in changes {
                    write_change(&mut out, c, "      ");
                }
            }
            Drift::CertificateReplaced { recorded, live, not_after } => {
                let short = |f: &str| f.trim_start_matches("sha256:").chars().take(12).collect::<String>();
                let now = live.as_deref().map(short).unwrap_or_else(|| "unreadable".into());
                let until = not_after.map(|t| format!(", not after {}", date(t))).unwrap_or_default();
                let _ = writeln!(
                    out,
                    "  ! {} ({} on seed {}): certificate replaced: recorded {}, now {now}{until}{blocked}",
                    entry.address,
                    entry.object,
                    entry.seed,
                    short(recorded)
                );
            }
        }
    }
    out.push('\n');
    out
}

/// `kkp plan --why ADDR`: each action under the address and the inputs that caused it.
pub fn why(explained: &[super::why::Explained]) -> String {
    use super::why::Cause;
    let mut out = String::new();
    for e in explained {
        let reasons: Vec<String> = e.action.reasons.iter().map(describe).collect();
        let _ = writeln!(out, "{:>3} {}  ({})", e.action.action.symbol(), e.action.address, reasons.join("; "));
        for cause in &e.causes {
            let line = match cause {
                Cause::Version { cluster, from, to, at } => format!("{at}: cluster {cluster}: spec.version {from} -> {to}"),
                Cause::Datacenter { cluster, from, to, at } => {
                    format!("{at}: cluster {cluster}: spec.cloud.dc is served by seed {to}, not {from}")
                }
                Cause::Clock { not_after } => format!("no input: the certificate expires {} and is renewed", date(*not_after)),
                Cause::Cluster { cluster, at } => format!("{at}: the Cluster {cluster} (and the configuration and seed it inherits)"),
                Cause::Seed { seed, at } => format!("{at}: the Seed {seed} (and the configuration it inherits)"),
                Cause::Removed { what } => format!("no input: {what} is no longer in the topology"),
                Cause::State => "no input: the state records a body that differs from what kkp renders (changed outside kkp?)".to_string(),
            };
            let _ = writeln!(out, "      {line}");
        }
    }
    if explained.is_empty() {
        out.push_str("No action of the plan is at or under this address.\n");
    }
    out
}
