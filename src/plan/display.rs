//! Renders a plan for people: a terminal view grouped by seed and cluster, and a size-capped
//! markdown view for pull-request comments. Reads the [`Plan`] model only.

use super::diff::FieldChange;
use super::{Action, Notice, Plan, PlannedAction, Reason, Summary};
use serde_json::Value;
use std::fmt::Write;

/// Markdown output is cut beyond this size (GitHub comments hold 65,536 characters).
pub const MARKDOWN_LIMIT: usize = 60_000;

/// The closing summary line.
pub fn summary_line(s: &Summary) -> String {
    let plural = |n: usize, one: &str, many: &str| if n == 1 { format!("{n} {one}") } else { format!("{n} {many}") };
    format!(
        "Plan: {} to add, {} to change, {} to replace, {} to destroy; across {} and {}.",
        s.add,
        s.change,
        s.replace,
        s.destroy,
        plural(s.seeds, "seed", "seeds"),
        plural(s.clusters, "cluster", "clusters")
    )
}

/// The terminal view.
pub fn human(plan: &Plan) -> String {
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
    let _ = writeln!(out, "kkp will perform these actions (+ create, ~ update, -/+ replace, - destroy):");
    for_each_group(plan, |heading, actions| {
        let _ = writeln!(out, "\n{heading}");
        for a in actions {
            write_action(&mut out, a, "  ");
        }
    });
    let _ = writeln!(out, "\n{}", summary_line(&plan.summary));
    out
}

/// The pull-request view, at most [`MARKDOWN_LIMIT`] characters.
pub fn markdown(plan: &Plan, digest: Option<&str>) -> String {
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
    let mut truncated = false;
    for_each_group(plan, |heading, actions| {
        if truncated {
            return;
        }
        let mut section = String::new();
        let counts = counts(actions);
        let _ = writeln!(section, "<details><summary>{heading}: {counts}</summary>\n\n```diff");
        for a in actions {
            write_action(&mut section, a, "");
        }
        section.push_str("```\n</details>\n\n");
        if out.len() + section.len() > MARKDOWN_LIMIT - 200 {
            truncated = true;
        } else {
            out.push_str(&section);
        }
    });
    if truncated {
        let _ = writeln!(out, "_Output truncated at {MARKDOWN_LIMIT} characters; run `kkp show PLANFILE` for the whole plan._");
    }
    out
}

fn counts(actions: &[&PlannedAction]) -> String {
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
fn for_each_group(plan: &Plan, mut f: impl FnMut(String, &[&PlannedAction])) {
    let mut group: Vec<&PlannedAction> = Vec::new();
    let key = |a: &PlannedAction| (a.seed.clone(), a.cluster.clone());
    let heading = |a: &PlannedAction| match &a.cluster {
        Some(c) => format!("seed {} · cluster {c}", a.seed),
        None => format!("seed {}", a.seed),
    };
    for a in &plan.actions {
        if let Some(first) = group.first()
            && key(first) != key(a)
        {
            f(heading(first), &group);
            group.clear();
        }
        group.push(a);
    }
    if let Some(first) = group.first() {
        f(heading(first), &group);
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
        Notice::CertificateAuthorityChanged { cluster, address } => format!(
            "cluster {cluster} is blocked: {address} was changed outside kkp, and kkp never silently re-issues or overwrites it\n  fix: check who changed it; to keep the Secret that is there now (a deleted one is made anew) and re-issue what the old one signed, re-run with --accept {address}"
        ),
    }
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
    use crate::refresh::drift::Drift;
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
