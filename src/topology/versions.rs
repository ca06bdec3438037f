//! KKP's Kubernetes version rules (`KubermaticConfiguration.spec.versions`): which versions
//! clusters may run, the default, and which updates are allowed, with KKP's defaults
//! (`pkg/defaulting/configuration.go`) and KKP's constraint matching for update rules
//! (`1.32.*`, `>= 1.29.0`, ...).

use semver::Version;
use serde::Serialize;

/// The version rules in force: the configuration's `spec.versions`, each part defaulted to
/// KKP's when empty.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Versions {
    /// `versions`: the versions clusters may run.
    pub versions: Vec<Version>,
    /// `default`: the version of a cluster that names none.
    pub default: Version,
    /// `updates`: the allowed update edges.
    pub updates: Vec<Update>,
    /// `providerIncompatibilities`.
    pub provider_incompatibilities: Vec<Incompatibility>,
}

/// One allowed update edge (`spec.versions.updates[]`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Update {
    /// Constraint the current version must match, e.g. `1.33.*`.
    pub from: String,
    /// Constraint the new version must match (a plain version when automatic).
    pub to: String,
    /// KKP moves matching control planes to `to` by itself.
    pub automatic: bool,
    /// KKP also moves the nodes (implies `automatic`).
    pub automatic_node_update: bool,
}

/// A version a provider cannot run under a condition (`spec.versions.providerIncompatibilities[]`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Incompatibility {
    /// Provider name; empty for every provider.
    pub provider: String,
    /// Constraint of the incompatible versions.
    pub version: String,
    /// `always`, `externalCloudProvider` or `inTreeProvider`.
    pub condition: String,
    /// `CREATE`, `UPGRADE` or `SUPPORT`.
    pub operation: String,
}

/// KKP's default versions at the KKP commit kkp follows.
const DEFAULT_VERSIONS: &[&str] = &[
    "1.33.0", "1.33.2", "1.33.3", "1.33.5", "1.33.6", "1.33.7", "1.33.8", "1.33.9", "1.33.10", "1.33.11", "1.33.12", "1.33.13", "1.34.1",
    "1.34.2", "1.34.3", "1.34.4", "1.34.5", "1.34.6", "1.34.7", "1.34.8", "1.34.9", "1.34.10", "1.34.11", "1.35.0", "1.35.1", "1.35.2",
    "1.35.3", "1.35.4", "1.35.5", "1.35.6", "1.35.7", "1.35.8", "1.36.3", "1.36.4",
];
const DEFAULT_VERSION: &str = "1.35.8";
/// KKP's default update rules: any patch within a minor, and on to the next minor.
const DEFAULT_UPDATES: &[(&str, &str)] = &[
    ("1.32.*", "1.33.*"),
    ("1.33.*", "1.33.*"),
    ("1.33.*", "1.34.*"),
    ("1.34.*", "1.34.*"),
    ("1.34.*", "1.35.*"),
    ("1.35.*", "1.35.*"),
    ("1.35.*", "1.36.*"),
    ("1.36.*", "1.36.*"),
];

/// Providers for which KKP runs a cloud-controller-manager (`cloudcontroller.HasCCM`), whose
/// clusters are in-tree or external for the incompatibility conditions.
const PROVIDERS_WITH_CCM: &[&str] = &["aws", "azure", "openstack", "hetzner", "gcp", "anexia", "vsphere", "kubevirt", "digitalocean"];

impl Default for Versions {
    fn default() -> Self {
        Versions {
            versions: DEFAULT_VERSIONS.iter().map(|v| Version::parse(v).expect("constant version")).collect(),
            default: Version::parse(DEFAULT_VERSION).expect("constant version"),
            updates: Self::default_updates(),
            provider_incompatibilities: Self::default_incompatibilities(),
        }
    }
}

impl Versions {
    /// KKP's default update rules.
    pub fn default_updates() -> Vec<Update> {
        DEFAULT_UPDATES
            .iter()
            .map(|(from, to)| Update { from: (*from).into(), to: (*to).into(), automatic: false, automatic_node_update: false })
            .collect()
    }

    /// KKP's default incompatibility: no update to 1.29 or later with in-tree cloud providers
    /// (removed from Kubernetes).
    pub fn default_incompatibilities() -> Vec<Incompatibility> {
        vec![Incompatibility {
            provider: String::new(),
            version: ">= 1.29.0".into(),
            condition: "inTreeProvider".into(),
            operation: "UPGRADE".into(),
        }]
    }

    /// Whether `version` is in the supported list.
    pub fn is_listed(&self, version: &Version) -> bool {
        self.versions.iter().any(|v| same(v, version))
    }

    /// The version KKP moves a control plane at `from` to by itself, if an automatic rule
    /// matches (KKP's `AutomaticControlplaneUpdate`).
    pub fn automatic_update(&self, from: &Version) -> Result<Option<Version>, String> {
        let mut targets = Vec::new();
        for update in self.updates.iter().filter(|u| u.automatic || u.automatic_node_update) {
            if matches(&update.from, from)? {
                let to = parse_version(&update.to).map_err(|e| format!("automatic update to {:?}: {e}", update.to))?;
                targets.push(to);
            }
        }
        match targets.as_slice() {
            [] => Ok(None),
            [one] => Ok(Some(one.clone())),
            many => Err(format!(
                "more than one automatic update applies to {from}: {}",
                many.iter().map(Version::to_string).collect::<Vec<_>>().join(", ")
            )),
        }
    }

    /// Whether a control plane at `from` may be moved to `to`: `to` must be a supported
    /// version and an update rule must match both (KKP's `GetPossibleUpdates`); a downgrade is
    /// never allowed. Staying at the same version is always allowed.
    pub fn upgrade_allowed(&self, from: &Version, to: &Version) -> Result<(), String> {
        if same(from, to) {
            return Ok(());
        }
        if key(to) < key(from) {
            return Err(format!("{from} -> {to} is a downgrade; KKP never moves a control plane to an older version"));
        }
        if !self.is_listed(to) {
            return Err(format!("{to} is not a supported version (supported: {})", self.list()));
        }
        for update in &self.updates {
            if matches(&update.from, from)? && matches(&update.to, to)? {
                return Ok(());
            }
        }
        let reachable = self.updates_from(from)?;
        Err(if reachable.is_empty() {
            format!("no update rule allows {from} -> {to}; no rule leads anywhere from {from}")
        } else {
            format!(
                "no update rule allows {from} -> {to}; from {from} KKP allows: {}",
                reachable.iter().map(Version::to_string).collect::<Vec<_>>().join(", ")
            )
        })
    }

    /// The supported versions newer than `from` that an update rule allows from it.
    pub fn updates_from(&self, from: &Version) -> Result<Vec<Version>, String> {
        let mut out = Vec::new();
        for update in &self.updates {
            if !matches(&update.from, from)? {
                continue;
            }
            for v in &self.versions {
                if key(v) > key(from) && matches(&update.to, v)? && !out.iter().any(|o| same(o, v)) {
                    out.push(v.clone());
                }
            }
        }
        out.sort_by_key(key);
        Ok(out)
    }

    /// The first incompatibility that forbids `operation` (`CREATE`, `UPGRADE`) to `version` for
    /// a cluster of `provider` with `external_ccm` (KKP's `checkProviderCompatibility`; providers
    /// without a cloud-controller-manager match only `always` conditions).
    pub fn incompatibility(&self, provider: &str, external_ccm: bool, version: &Version, operation: &str) -> Option<&Incompatibility> {
        let condition =
            PROVIDERS_WITH_CCM.contains(&provider).then_some(if external_ccm { "externalCloudProvider" } else { "inTreeProvider" });
        self.provider_incompatibilities.iter().find(|i| {
            (i.provider.is_empty() || i.provider == provider)
                && i.operation == operation
                && (i.condition == "always" || Some(i.condition.as_str()) == condition)
                && matches(&i.version, version).unwrap_or(false)
        })
    }

    /// The supported versions, grouped by minor: `1.33.{0,2,3}, 1.34.{1,2}`.
    pub fn list(&self) -> String {
        let mut sorted: Vec<&Version> = self.versions.iter().collect();
        sorted.sort_by_key(|v| key(v));
        let mut groups: Vec<((u64, u64), Vec<u64>)> = Vec::new();
        for v in sorted {
            match groups.last_mut() {
                Some((minor, patches)) if *minor == (v.major, v.minor) => patches.push(v.patch),
                _ => groups.push(((v.major, v.minor), vec![v.patch])),
            }
        }
        groups
            .iter()
            .map(|((major, minor), patches)| match patches.as_slice() {
                [one] => format!("{major}.{minor}.{one}"),
                many => format!("{major}.{minor}.{{{}}}", many.iter().map(u64::to_string).collect::<Vec<_>>().join(",")),
            })
            .collect::<Vec<_>>()
            .join(", ")
    }

    /// Problems KKP's configuration webhook rejects: a default that is not listed, a constraint
    /// that does not parse, an automatic rule pointing at a version that is not listed or is
    /// itself updated automatically, and gaps between minor versions.
    pub fn problems(&self) -> Vec<(&'static str, String)> {
        let mut out = Vec::new();
        if !self.is_listed(&self.default) {
            out.push(("default", format!("default version {} is not in the list of supported versions ({})", self.default, self.list())));
        }
        let probe = Version::new(0, 0, 0);
        for update in &self.updates {
            for constraint in [&update.from, &update.to] {
                if let Err(e) = matches(constraint, &probe) {
                    out.push(("updates", e));
                }
            }
            if update.automatic || update.automatic_node_update {
                let valid = parse_version(&update.to)
                    .ok()
                    .is_some_and(|to| self.is_listed(&to) && self.automatic_update(&to).is_ok_and(|next| next.is_none()));
                if !valid {
                    out.push((
                        "updates",
                        format!(
                            "automatic update {} -> {} points to a version that is not listed or that another automatic rule updates again",
                            update.from, update.to
                        ),
                    ));
                }
            }
        }
        for incompatibility in &self.provider_incompatibilities {
            if let Err(e) = matches(&incompatibility.version, &probe) {
                out.push(("providerIncompatibilities", e));
            }
        }
        let mut minors: Vec<(u64, u64)> = self.versions.iter().map(|v| (v.major, v.minor)).collect();
        minors.sort();
        minors.dedup();
        let missing: Vec<String> = minors
            .windows(2)
            .filter(|w| w[0].0 == w[1].0)
            .flat_map(|w| (w[0].1 + 1..w[1].1).map(move |minor| format!("{}.{minor}", w[0].0)))
            .collect();
        if !missing.is_empty() {
            out.push(("versions", format!("no versions for the minor releases {} are listed; KKP allows no gaps", missing.join(", "))));
        }
        out
    }
}

fn key(v: &Version) -> (u64, u64, u64) {
    (v.major, v.minor, v.patch)
}

fn same(a: &Version, b: &Version) -> bool {
    key(a) == key(b)
}

/// Parses a version as KKP writes them (`1.33.0` or `v1.33.0`).
pub fn parse_version(text: &str) -> Result<Version, semver::Error> {
    Version::parse(text.trim().trim_start_matches('v'))
}

/// Whether `version` satisfies a constraint in KKP's syntax (Masterminds semver): `||` between
/// alternatives, `,` or spaces between terms that must all hold, operators `= != > >= < <= ~ ^`,
/// and `x`, `X`, `*` or missing parts as wildcards (`1.32.*`, `1.32`).
pub fn matches(constraint: &str, version: &Version) -> Result<bool, String> {
    let v = key(version);
    let mut any = false;
    for alternative in constraint.split("||") {
        let terms = terms(alternative);
        if terms.is_empty() {
            return Err(format!("constraint {constraint:?} is empty"));
        }
        let mut all = true;
        for term in terms {
            all &= term_matches(&term, v).map_err(|e| format!("constraint {constraint:?}: {e}"))?;
        }
        any |= all;
    }
    Ok(any)
}

/// Splits an alternative into terms, joining an operator written apart from its version.
fn terms(alternative: &str) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    let mut pending_operator = String::new();
    for word in alternative.split([',', ' ', '\t']).filter(|w| !w.is_empty()) {
        if word.chars().all(|c| "=!<>~^".contains(c)) {
            pending_operator.push_str(word);
        } else {
            out.push(format!("{}{word}", std::mem::take(&mut pending_operator)));
        }
    }
    out
}

fn term_matches(term: &str, v: (u64, u64, u64)) -> Result<bool, String> {
    let split = term.find(|c: char| !"=!<>~^".contains(c)).unwrap_or(term.len());
    let (operator, version) = term.split_at(split);
    let version = version.trim_start_matches('v');
    let mut parts: Vec<Option<u64>> = Vec::new();
    for part in version.split('.') {
        parts.push(match part {
            "x" | "X" | "*" => None,
            digits => Some(digits.parse().map_err(|_| format!("{term:?} is not a version constraint"))?),
        });
    }
    if parts.is_empty() || parts.len() > 3 {
        return Err(format!("{term:?} is not a version constraint"));
    }
    // The concrete leading parts; everything after the first wildcard is a wildcard too.
    let concrete: Vec<u64> = parts.iter().map_while(|p| *p).collect();
    let lower = (concrete.first().copied().unwrap_or(0), concrete.get(1).copied().unwrap_or(0), concrete.get(2).copied().unwrap_or(0));
    // The first version past the wildcard range (None: no upper bound, as for `*`).
    let upper = match concrete.len() {
        0 => None,
        1 => Some((lower.0 + 1, 0, 0)),
        2 => Some((lower.0, lower.1 + 1, 0)),
        _ => None,
    };
    let exact = concrete.len() == 3;
    let in_range = |v| if exact { v == lower } else { v >= lower && upper.is_none_or(|u| v < u) };
    Ok(match operator {
        "" | "=" => in_range(v),
        "!=" => !in_range(v),
        ">" if exact => v > lower,
        ">" => upper.is_some_and(|u| v >= u),
        ">=" => v >= lower,
        "<" => v < lower,
        "<=" if exact => v <= lower,
        "<=" => upper.is_none_or(|u| v < u),
        "~" | "~>" => {
            let upper = if concrete.len() <= 1 { (lower.0 + 1, 0, 0) } else { (lower.0, lower.1 + 1, 0) };
            v >= lower && v < upper
        }
        "^" => {
            let upper = if lower.0 > 0 || concrete.len() <= 1 { (lower.0 + 1, 0, 0) } else { (0, lower.1 + 1, 0) };
            v >= lower && v < upper
        }
        other => return Err(format!("unknown operator {other:?} in {term:?}")),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v(text: &str) -> Version {
        parse_version(text).unwrap()
    }

    #[test]
    fn constraints_follow_kkps_syntax() {
        assert!(matches("1.32.*", &v("1.32.9")).unwrap());
        assert!(!matches("1.32.*", &v("1.33.0")).unwrap());
        assert!(matches("1.32.x", &v("1.32.0")).unwrap());
        assert!(matches("1.32", &v("1.32.4")).unwrap());
        assert!(matches("1.33.5", &v("1.33.5")).unwrap());
        assert!(!matches("1.33.5", &v("1.33.6")).unwrap());
        assert!(matches(">= 1.29.0", &v("1.34.1")).unwrap());
        assert!(!matches(">= 1.29.0", &v("1.28.9")).unwrap());
        assert!(matches(">=1.30, <1.32", &v("1.31.7")).unwrap());
        assert!(!matches(">=1.30 <1.32", &v("1.32.0")).unwrap());
        assert!(matches("1.30.* || 1.33.*", &v("1.33.1")).unwrap());
        assert!(matches("~1.33.2", &v("1.33.9")).unwrap());
        assert!(!matches("~1.33.2", &v("1.34.0")).unwrap());
        assert!(matches("*", &v("1.36.4")).unwrap());
        assert!(matches("foo", &v("1.0.0")).is_err());
    }

    #[test]
    fn defaults_are_kkps() {
        let versions = Versions::default();
        assert_eq!(versions.default, v("1.35.8"));
        assert!(versions.is_listed(&v("1.33.0")) && versions.is_listed(&v("1.36.4")));
        assert!(!versions.is_listed(&v("1.32.9")) && !versions.is_listed(&v("1.33.1")));
        assert!(versions.problems().is_empty(), "{:?}", versions.problems());
        assert_eq!(
            versions.list(),
            "1.33.{0,2,3,5,6,7,8,9,10,11,12,13}, 1.34.{1,2,3,4,5,6,7,8,9,10,11}, 1.35.{0,1,2,3,4,5,6,7,8}, 1.36.{3,4}"
        );
    }

    #[test]
    fn patch_and_next_minor_updates_are_allowed() {
        let versions = Versions::default();
        assert_eq!(versions.upgrade_allowed(&v("1.33.2"), &v("1.33.13")), Ok(()));
        assert_eq!(versions.upgrade_allowed(&v("1.33.13"), &v("1.34.1")), Ok(()));
        assert_eq!(versions.upgrade_allowed(&v("1.35.8"), &v("1.36.4")), Ok(()));
        // KKP's rule `1.32.* -> 1.33.*` lets clusters still on 1.32 move on.
        assert_eq!(versions.upgrade_allowed(&v("1.32.9"), &v("1.33.0")), Ok(()));
        assert_eq!(versions.upgrade_allowed(&v("1.34.2"), &v("1.34.2")), Ok(()));
    }

    #[test]
    fn skipping_a_minor_is_refused_with_the_allowed_targets() {
        let err = Versions::default().upgrade_allowed(&v("1.33.13"), &v("1.35.0")).unwrap_err();
        assert!(err.starts_with("no update rule allows 1.33.13 -> 1.35.0; from 1.33.13 KKP allows: 1.34.1,"), "{err}");
        assert!(err.ends_with("1.34.11"), "{err}");
    }

    #[test]
    fn downgrades_are_never_allowed() {
        let versions = Versions::default();
        // Even though `1.34.* -> 1.34.*` matches both.
        let err = versions.upgrade_allowed(&v("1.34.5"), &v("1.34.2")).unwrap_err();
        assert!(err.contains("downgrade"), "{err}");
        assert!(versions.upgrade_allowed(&v("1.35.0"), &v("1.34.11")).unwrap_err().contains("downgrade"));
    }

    #[test]
    fn targets_must_be_supported() {
        let err = Versions::default().upgrade_allowed(&v("1.33.0"), &v("1.33.1")).unwrap_err();
        assert!(err.starts_with("1.33.1 is not a supported version"), "{err}");
    }

    #[test]
    fn configured_rules_replace_kkps() {
        let versions = Versions {
            versions: vec![v("1.34.1"), v("1.34.2"), v("1.35.0")],
            default: v("1.34.2"),
            updates: vec![Update {
                from: ">= 1.34.0, < 1.35.0".into(),
                to: "1.35.0".into(),
                automatic: true,
                automatic_node_update: false,
            }],
            provider_incompatibilities: vec![],
        };
        assert_eq!(versions.upgrade_allowed(&v("1.34.1"), &v("1.35.0")), Ok(()));
        assert!(versions.upgrade_allowed(&v("1.34.1"), &v("1.34.2")).is_err());
        assert_eq!(versions.automatic_update(&v("1.34.2")), Ok(Some(v("1.35.0"))));
        assert_eq!(versions.automatic_update(&v("1.35.0")), Ok(None));
        assert!(versions.problems().is_empty());
    }

    #[test]
    fn configuration_problems_are_found() {
        let versions = Versions {
            versions: vec![v("1.33.1"), v("1.35.0")],
            default: v("1.34.0"),
            updates: vec![Update { from: "1.33.*".into(), to: "1.34.0".into(), automatic: true, automatic_node_update: false }],
            provider_incompatibilities: vec![],
        };
        let fields: Vec<&str> = versions.problems().iter().map(|(field, _)| *field).collect();
        assert_eq!(fields, ["default", "updates", "versions"]);
    }

    #[test]
    fn in_tree_providers_cannot_be_upgraded_past_1_29() {
        let versions = Versions::default();
        assert!(versions.incompatibility("aws", false, &v("1.34.1"), "UPGRADE").is_some());
        assert!(versions.incompatibility("aws", true, &v("1.34.1"), "UPGRADE").is_none());
        assert!(versions.incompatibility("aws", false, &v("1.34.1"), "CREATE").is_none());
        // No cloud-controller-manager, so neither condition applies.
        assert!(versions.incompatibility("edge", false, &v("1.34.1"), "UPGRADE").is_none());
    }
}
