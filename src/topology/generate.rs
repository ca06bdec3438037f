//! Synthetic topologies of any size, in KKP's YAML, for benchmarks and load tests
//! (`cargo run --example generate -- SEEDS CLUSTERS`).

use std::fmt::Write;

/// Cloud providers the generated datacenters rotate through.
const PROVIDERS: [(&str, &str); 4] = [
    ("aws", "region: eu-central-1"),
    ("gcp", "region: europe-west3"),
    ("digitalocean", "region: fra1"),
    ("hetzner", "datacenter: fsn1-dc14"),
];

/// What to generate.
#[derive(Debug, Clone)]
pub struct Spec {
    /// Seeds (`seed-000`...), each with four datacenters.
    pub seeds: usize,
    /// User clusters, spread round-robin over all datacenters.
    pub clusters: usize,
    /// Kubernetes version of every cluster.
    pub version: String,
    /// Every n-th cluster gets `changed_version` instead (None: none does).
    pub changed_every: Option<usize>,
    /// The version of the changed clusters.
    pub changed_version: String,
}

impl Default for Spec {
    fn default() -> Self {
        Spec { seeds: 1, clusters: 1, version: "1.34.2".into(), changed_every: None, changed_version: "1.35.0".into() }
    }
}

/// The topology as one multi-document YAML text.
pub fn generate(spec: &Spec) -> String {
    let mut out = String::with_capacity(400 * spec.clusters + 1000 * spec.seeds);
    out.push_str("apiVersion: kubermatic.k8c.io/v1\nkind: KubermaticConfiguration\nmetadata:\n  name: kubermatic\n  namespace: kubermatic\nspec:\n  ingress:\n    domain: kkp.example.com\n");
    let mut datacenters = Vec::new();
    for s in 0..spec.seeds {
        let _ = write!(
            out,
            "---\napiVersion: kubermatic.k8c.io/v1\nkind: Seed\nmetadata:\n  name: seed-{s:03}\n  namespace: kubermatic\nspec:\n  datacenters:\n"
        );
        for (d, (provider, settings)) in PROVIDERS.iter().enumerate() {
            let name = format!("dc-{s:03}-{d}");
            let _ = write!(out, "    {name}:\n      spec:\n        {provider}:\n          {settings}\n");
            datacenters.push(name);
        }
    }
    for c in 0..spec.clusters {
        let dc = &datacenters[c % datacenters.len().max(1)];
        let changed = spec.changed_every.is_some_and(|n| n > 0 && c % n == 0);
        let version = if changed { &spec.changed_version } else { &spec.version };
        let size = if c % 7 == 0 { 5 } else { 3 };
        let _ = write!(
            out,
            "---\napiVersion: kubermatic.k8c.io/v1\nkind: Cluster\nmetadata:\n  name: c{c:06}\nspec:\n  humanReadableName: cluster {c}\n  version: {version}\n  cloud:\n    dc: {dc}\n  componentsOverride:\n    etcd:\n      clusterSize: {size}\n"
        );
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_topologies_load() {
        let text = generate(&Spec { seeds: 3, clusters: 40, changed_every: Some(10), ..Spec::default() });
        let topology = super::super::load_str(std::path::Path::new("generated.yaml"), &text).unwrap();
        assert_eq!(topology.seeds.len(), 3);
        assert_eq!(topology.clusters.len(), 40);
        assert_eq!(topology.clusters.values().filter(|c| c.version.to_string() == "1.35.0").count(), 4);
        assert_eq!(topology.seeds["seed-002"].datacenters.len(), 4);
    }
}
