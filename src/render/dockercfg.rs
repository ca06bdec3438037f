//! Secret `dockercfg`, the image pull Secret every control-plane pod names. KKP copies it from
//! `KubermaticConfiguration.spec.imagePullSecret`; kkp carries no registry credentials, so it
//! holds an empty Docker config: pods pull public images, and the Secret they name exists.

use super::component::{IMAGE_PULL_SECRET, metadata};
use super::{Body, DesiredNode, manifest, meta};
use crate::object::Kind;
use crate::role::Role;
use crate::topology::Cluster;
use k8s_openapi::ByteString;
use k8s_openapi::api::core::v1::Secret;
use std::collections::BTreeMap;

/// The empty Docker config (`{"auths":{}}`), as a `kubernetes.io/dockerconfigjson` Secret.
pub fn render(cluster: &Cluster) -> Vec<DesiredNode> {
    let secret = Secret {
        metadata: metadata(IMAGE_PULL_SECRET, cluster),
        type_: Some("kubernetes.io/dockerconfigjson".into()),
        data: Some(BTreeMap::from([(".dockerconfigjson".to_string(), ByteString(br#"{"auths":{}}"#.to_vec()))])),
        ..Default::default()
    };
    vec![meta::cluster_node(
        cluster,
        Kind::Secret,
        IMAGE_PULL_SECRET,
        Role::Config,
        Vec::new(),
        Body::Object { manifest: manifest(&secret), fingerprints: Vec::new() },
    )]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_pull_secret_is_an_empty_docker_config() {
        let topology = crate::topology::load(&[std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("examples/quickstart")]).unwrap();
        let nodes = render(topology.clusters.values().next().unwrap());
        let Body::Object { manifest, .. } = &nodes[0].body else { panic!("an object") };
        assert_eq!(manifest["type"], "kubernetes.io/dockerconfigjson");
        assert_eq!(manifest["data"][".dockerconfigjson"], "eyJhdXRocyI6e319");
        assert_eq!(manifest["metadata"]["name"], "dockercfg");
    }
}
