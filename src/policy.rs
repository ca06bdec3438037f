//! Policy: which changes may be applied without a person looking, which need review, which are
//! never applied. A policy file (`.kkp/policy.yaml` or `--policy FILE`) holds rules over an
//! action's class, risk, seed, cluster, cluster labels and address, each deciding `allow`,
//! `review` or `deny`. For each action the strictest matching rule wins and an action no rule
//! matches needs review; the plan's verdict is its strictest action's.
//!
//! Evaluation re-classifies the actions ([`crate::plan::classify`]) from their roles and
//! reasons rather than reading the class fields of a plan file, so apply's re-check cannot be
//! talked out of a `deny` by an edited plan.

use crate::address::Address;
use crate::plan::Plan;
use crate::plan::classify::{self, Class, Risk};
use serde::Deserialize;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// Where `kkp plan` and `kkp apply` look for a policy when no `--policy` is given.
pub const DEFAULT_PATH: &str = ".kkp/policy.yaml";

/// What a rule decides, least strict first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Decision {
    /// Apply without review.
    Allow,
    /// Apply only once a person approved this plan's digest.
    Review,
    /// Never apply.
    Deny,
}

impl Decision {
    /// The decision as policy files spell it.
    pub fn as_str(self) -> &'static str {
        match self {
            Decision::Allow => "allow",
            Decision::Review => "review",
            Decision::Deny => "deny",
        }
    }
}

/// A problem with a policy file, with its place.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The file cannot be read.
    #[error("cannot read the policy {}: {source}", path.display())]
    Read {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The file is not a valid policy.
    #[error("{}:{line}: {message}\n  fix: {fix}", path.display())]
    Invalid {
        /// The file.
        path: PathBuf,
        /// 1-based line.
        line: usize,
        /// What is wrong.
        message: String,
        /// How to fix it.
        fix: String,
    },
}

/// One value or a list of them, as YAML allows either.
#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
enum OneOrMany {
    One(String),
    Many(Vec<String>),
}

impl OneOrMany {
    fn into_vec(self) -> Vec<String> {
        match self {
            OneOrMany::One(one) => vec![one],
            OneOrMany::Many(many) => many,
        }
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawPolicy {
    #[serde(default)]
    rules: Vec<serde_saphyr::Spanned<RawRule>>,
    /// Read by the rollout (see [`crate::apply`]); kept here so the file has one schema.
    #[serde(default)]
    rollout: Option<serde_json::Value>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct RawRule {
    decision: Decision,
    #[serde(default)]
    description: Option<String>,
    #[serde(default)]
    class: Option<OneOrMany>,
    #[serde(default)]
    risk: Option<OneOrMany>,
    #[serde(default)]
    seed: Option<OneOrMany>,
    #[serde(default)]
    cluster: Option<OneOrMany>,
    #[serde(default)]
    cluster_labels: BTreeMap<String, String>,
    #[serde(default)]
    address: Option<OneOrMany>,
}

/// One rule. Every condition given must hold; a list holds when any entry does. Seed,
/// cluster and address entries are patterns where `*` matches any text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rule {
    /// What it decides.
    pub decision: Decision,
    /// Why, for output.
    pub description: Option<String>,
    /// Classes it covers (empty: any).
    pub classes: Vec<Class>,
    /// Risks it covers (empty: any).
    pub risks: Vec<Risk>,
    /// Seed patterns (empty: any).
    pub seeds: Vec<String>,
    /// Cluster name patterns (empty: any; a seed-level action has no cluster and never matches).
    pub clusters: Vec<String>,
    /// Labels the action's cluster must carry, all of them (empty: any).
    pub cluster_labels: BTreeMap<String, String>,
    /// Address patterns (empty: any).
    pub addresses: Vec<String>,
    /// Where the rule starts in its file.
    pub line: usize,
}

/// A loaded policy.
#[derive(Debug, Clone, PartialEq)]
pub struct Policy {
    /// The file it came from.
    pub path: PathBuf,
    /// The rules, in file order.
    pub rules: Vec<Rule>,
    /// The file's `rollout` section, as written (None: absent).
    pub rollout: Option<serde_json::Value>,
}

/// Reads and checks a policy file.
pub fn load(path: &Path) -> Result<Policy, Error> {
    let text = std::fs::read_to_string(path).map_err(|source| Error::Read { path: path.to_path_buf(), source })?;
    parse(path, &text)
}

/// Parses and checks a policy's text; `path` is for messages.
pub fn parse(path: &Path, text: &str) -> Result<Policy, Error> {
    let invalid = |line: usize, message: String, fix: &str| Error::Invalid { path: path.to_path_buf(), line, message, fix: fix.into() };
    let raw: RawPolicy = if text.trim().is_empty() {
        RawPolicy { rules: Vec::new(), rollout: None }
    } else {
        serde_saphyr::from_str(text).map_err(|e| {
            let line = e.location().map(|l| l.line() as usize).unwrap_or(1);
            let message = e.to_string().lines().next().unwrap_or_default().to_string();
            invalid(
                line,
                message,
                "a policy has `rules:` (a list of rules with `decision: allow|review|deny` and any of class, risk, seed, cluster, clusterLabels, address) and an optional `rollout:`",
            )
        })?
    };
    let mut rules = Vec::new();
    for (i, spanned) in raw.rules.into_iter().enumerate() {
        let line = spanned.referenced.line() as usize;
        let rule = spanned.value;
        let classes = rule
            .class
            .map(OneOrMany::into_vec)
            .unwrap_or_default()
            .into_iter()
            .map(|c| {
                Class::parse(&c).ok_or_else(|| {
                    let known: Vec<&str> = Class::ALL.iter().map(|c| c.as_str()).collect();
                    invalid(line, format!("rule {}: {c:?} is not a class", i + 1), &format!("use one of: {}", known.join(", ")))
                })
            })
            .collect::<Result<Vec<_>, _>>()?;
        let risks = rule
            .risk
            .map(OneOrMany::into_vec)
            .unwrap_or_default()
            .into_iter()
            .map(|r| {
                Risk::parse(&r).ok_or_else(|| {
                    invalid(line, format!("rule {}: {r:?} is not a risk", i + 1), "use one of: low, medium, high, data-loss")
                })
            })
            .collect::<Result<Vec<_>, _>>()?;
        let addresses = rule.address.map(OneOrMany::into_vec).unwrap_or_default();
        if let Some(bad) = addresses.iter().find(|a| a.is_empty() || a.starts_with('/')) {
            return Err(invalid(
                line,
                format!("rule {}: {bad:?} is not an address pattern", i + 1),
                "write addresses as `kkp graph` shows them, e.g. cluster/*/statefulset/etcd",
            ));
        }
        rules.push(Rule {
            decision: rule.decision,
            description: rule.description,
            classes,
            risks,
            seeds: rule.seed.map(OneOrMany::into_vec).unwrap_or_default(),
            clusters: rule.cluster.map(OneOrMany::into_vec).unwrap_or_default(),
            cluster_labels: rule.cluster_labels,
            addresses,
            line,
        });
    }
    Ok(Policy { path: path.to_path_buf(), rules, rollout: raw.rollout })
}

/// `*` matches any text (slashes included); everything else matches itself.
pub fn glob(pattern: &str, text: &str) -> bool {
    let mut parts = pattern.split('*');
    let first = parts.next().unwrap_or_default();
    let Some(mut rest) = text.strip_prefix(first) else { return false };
    let parts: Vec<&str> = parts.collect();
    let Some((last, middle)) = parts.split_last() else { return rest.is_empty() };
    for part in middle {
        match rest.find(part) {
            Some(at) => rest = &rest[at + part.len()..],
            None => return false,
        }
    }
    rest.len() >= last.len() && rest.ends_with(last)
}

/// What the policy says of one action.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ActionVerdict {
    /// The action's address.
    pub address: Address,
    /// Its class, as re-computed.
    pub class: Class,
    /// Its risk, as re-computed.
    pub risk: Risk,
    /// The decision.
    pub decision: Decision,
    /// The line of the rule that decided (None: no rule matched, so review).
    pub rule: Option<usize>,
}

/// What the policy says of a plan.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verdict {
    /// The strictest decision over all actions (Allow for an empty plan).
    pub decision: Decision,
    /// Each action's verdict, in plan order.
    pub actions: Vec<ActionVerdict>,
}

impl Verdict {
    /// The actions with `decision`.
    pub fn with(&self, decision: Decision) -> impl Iterator<Item = &ActionVerdict> {
        self.actions.iter().filter(move |a| a.decision == decision)
    }
}

/// Evaluates `policy` on `plan`, classifying its actions afresh.
pub fn evaluate(policy: &Policy, plan: &Plan) -> Verdict {
    let reviews = classify::classify_all(&plan.actions, &classify::Context::of_plan(plan));
    let no_labels = BTreeMap::new();
    let actions: Vec<ActionVerdict> = plan
        .actions
        .iter()
        .zip(reviews)
        .map(|(action, review)| {
            let labels = action.cluster.as_ref().and_then(|c| plan.cluster_labels.get(c)).unwrap_or(&no_labels);
            let matched = policy
                .rules
                .iter()
                .filter(|r| {
                    (r.classes.is_empty() || r.classes.contains(&review.class))
                        && (r.risks.is_empty() || r.risks.contains(&review.risk))
                        && (r.seeds.is_empty()
                            || r.seeds.iter().any(|p| glob(p, &action.seed) || action.prior_seed.as_ref().is_some_and(|s| glob(p, s))))
                        && (r.clusters.is_empty() || action.cluster.as_ref().is_some_and(|c| r.clusters.iter().any(|p| glob(p, c))))
                        && r.cluster_labels.iter().all(|(k, v)| labels.get(k) == Some(v))
                        && (r.addresses.is_empty() || r.addresses.iter().any(|p| glob(p, action.address.as_str())))
                })
                .max_by_key(|r| (r.decision, std::cmp::Reverse(r.line)));
            ActionVerdict {
                address: action.address.clone(),
                class: review.class,
                risk: review.risk,
                decision: matched.map_or(Decision::Review, |r| r.decision),
                rule: matched.map(|r| r.line),
            }
        })
        .collect();
    let decision = actions.iter().map(|a| a.decision).max().unwrap_or(Decision::Allow);
    Verdict { decision, actions }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn globs_match_any_text_for_a_star() {
        assert!(glob("cluster/*/statefulset/etcd", "cluster/abc/statefulset/etcd"));
        assert!(glob("seed-eu-*", "seed-eu-1"));
        assert!(glob("*", ""));
        assert!(glob("a*b*c", "aXbYc"));
        assert!(!glob("a*b*c", "aXbY"));
        assert!(!glob("seed-eu", "seed-eu-1"));
        assert!(glob("*etcd", "cluster/x/statefulset/etcd"));
        assert!(!glob("ab*ba", "aba"));
    }

    #[test]
    fn mistakes_in_a_policy_name_their_line() {
        let path = Path::new("policy.yaml");
        let unknown_class =
            "rules:\n  - decision: allow\n    class: cert-renewal\n  - decision: deny\n    class: [data-replace, cert-renew]\n";
        let err = parse(path, unknown_class).unwrap_err().to_string();
        assert!(err.starts_with("policy.yaml:4: rule 2: \"cert-renew\" is not a class"), "{err}");
        assert!(err.contains("cert-renewal"), "{err}");
        let unknown_field = "rules:\n  - decision: allow\n    clas: create\n";
        let err = parse(path, unknown_field).unwrap_err().to_string();
        assert!(err.starts_with("policy.yaml:3:"), "{err}");
        assert!(err.contains("clas"), "{err}");
        let bad_decision = "rules:\n  - decision: maybe\n";
        let err = parse(path, bad_decision).unwrap_err().to_string();
        assert!(err.starts_with("policy.yaml:2:"), "{err}");
        let policy = parse(path, "rules:\n  - decision: review\n    risk: [high, data-loss]\n    seed: eu-*\n").unwrap();
        assert_eq!(policy.rules[0].risks, vec![Risk::High, Risk::DataLoss]);
        assert_eq!(policy.rules[0].seeds, vec!["eu-*".to_string()]);
        assert_eq!(policy.rules[0].line, 2);
    }
}
