//! Addresses: the stable, human-readable name of every graph node.
//!
//! An address is a `/`-separated path, so it needs no shell quoting:
//!
//! | node | address |
//! |---|---|
//! | a seed (logical) | `seed/<seed>` |
//! | a datacenter (logical) | `seed/<seed>/datacenter/<dc>` |
//! | a seed-level object | `seed/<seed>/<kind>/<name>` |
//! | a user cluster's namespace | `cluster/<cluster>/namespace` |
//! | a user cluster's object | `cluster/<cluster>/<kind>/<name>` |
//!
//! `--target` and `--exclude` match whole segments: `cluster/abc` covers every object of
//! cluster `abc`, but not cluster `abcd`.

use crate::object::Kind;
use serde::{Deserialize, Serialize};
use std::fmt;

/// The address of one node. Ordered lexically, which keeps every listing deterministic.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Address(String);

impl Address {
    /// The logical node of a seed.
    pub fn seed(seed: &str) -> Self {
        Address(format!("seed/{seed}"))
    }

    /// The logical node of a datacenter.
    pub fn datacenter(seed: &str, datacenter: &str) -> Self {
        Address(format!("seed/{seed}/datacenter/{datacenter}"))
    }

    /// An object that belongs to the seed itself (namespace `kubermatic`).
    pub fn seed_object(seed: &str, kind: Kind, name: &str) -> Self {
        Address(format!("seed/{seed}/{}/{name}", kind.segment()))
    }

    /// The namespace `cluster-<name>` of a user cluster.
    pub fn cluster_namespace(cluster: &str) -> Self {
        Address(format!("cluster/{cluster}/namespace"))
    }

    /// An object in a user cluster's namespace.
    pub fn cluster_object(cluster: &str, kind: Kind, name: &str) -> Self {
        Address(format!("cluster/{cluster}/{}/{name}", kind.segment()))
    }

    /// Parses an address typed by a user; rejects empty segments.
    pub fn parse(text: &str) -> Result<Self, String> {
        let text = text.trim().trim_end_matches('/');
        if text.is_empty() || text.split('/').any(str::is_empty) {
            return Err(format!(
                "`{text}` is not an address: use segments separated by `/`, \
                 e.g. `cluster/<name>` or `seed/<name>/datacenter/<dc>`"
            ));
        }
        let first = text.split('/').next().unwrap_or_default();
        if first != "seed" && first != "cluster" {
            return Err(format!("`{text}` is not an address: it must start with `seed/` or `cluster/`"));
        }
        Ok(Address(text.to_string()))
    }

    /// True when `self` equals `prefix` or lies under it (whole segments only).
    pub fn starts_with(&self, prefix: &Address) -> bool {
        self.0 == prefix.0 || (self.0.starts_with(&prefix.0) && self.0.as_bytes().get(prefix.0.len()) == Some(&b'/'))
    }

    /// The cluster this address belongs to, if any.
    pub fn cluster(&self) -> Option<&str> {
        self.0.strip_prefix("cluster/").and_then(|rest| rest.split('/').next())
    }

    /// The address as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

// Ordering, equality and hashing are those of the text, so maps keyed by addresses can be
// searched by `&str` (prefix ranges in the state).
impl std::borrow::Borrow<str> for Address {
    fn borrow(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Address {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefix_matches_whole_segments_only() {
        let ca = Address::cluster_object("abc", Kind::Secret, "ca");
        assert!(ca.starts_with(&Address::parse("cluster/abc").unwrap()));
        assert!(ca.starts_with(&ca));
        assert!(!ca.starts_with(&Address::parse("cluster/ab").unwrap()));
        assert!(!Address::cluster_namespace("abcd").starts_with(&Address::parse("cluster/abc").unwrap()));
    }

    #[test]
    fn parse_rejects_what_cannot_be_an_address() {
        assert!(Address::parse("").is_err());
        assert!(Address::parse("cluster//x").is_err());
        assert!(Address::parse("pods/x").is_err());
        assert_eq!(Address::parse("cluster/abc/").unwrap().as_str(), "cluster/abc");
    }

    #[test]
    fn cluster_is_read_back_from_the_address() {
        assert_eq!(Address::cluster_object("abc", Kind::Secret, "ca").cluster(), Some("abc"));
        assert_eq!(Address::seed("eu").cluster(), None);
    }
}
