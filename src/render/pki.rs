//! The PKI Secrets of a user cluster (KKP `GetSecretReconcilers`), as certificate requests.

use super::meta::{self, object_labels};
use super::{Body, DesiredNode};
use crate::address::Address;
use crate::object::Kind;
use crate::object::ObjectRef;
use crate::pki::{CertKind, CertRequest, KeyAlgorithm, SecretLayout, Usage};
use crate::role::Role;
use crate::topology::{Cluster, ExposeStrategy};
use std::net::IpAddr;

/// Every PKI Secret of the cluster, CAs first.
pub fn secrets(cluster: &Cluster) -> Vec<DesiredNode> {
    let ca = meta::secret(cluster, "ca");
    let front_proxy_ca = meta::secret(cluster, "front-proxy-ca");
    let openvpn_ca = meta::secret(cluster, "openvpn-ca");
    let ns = cluster.namespace();
    let apiserver_ip: Option<IpAddr> = cluster.network.apiserver_ip();
    let localhost: IpAddr = [127, 0, 0, 1].into();

    let mut apiserver_tls =
        CertRequest::leaf("kube-apiserver", ca.clone(), vec![Usage::ServerAuth], SecretLayout::named("apiserver-tls", false));
    apiserver_tls.dns_names = vec![
        cluster.external_name.clone(),
        format!("kubernetes.default.svc.{}", cluster.network.dns_domain),
        "apiserver-external".into(),
        format!("apiserver-external.{ns}"),
        format!("apiserver-external.{ns}.svc"),
        format!("apiserver-external.{ns}.svc.cluster.local"),
    ];
    apiserver_tls.ip_addresses = apiserver_ip.into_iter().chain([localhost]).collect();
    if cluster.expose_strategy == ExposeStrategy::Tunneling {
        apiserver_tls.ip_addresses.extend(cluster.network.tunneling_agent_ip);
    }

    // KKP widens the etcd SANs to nine members when etcd-launcher may scale the ring.
    let etcd_members = if cluster.etcd.launcher { 9 } else { 3 };
    let mut etcd_tls =
        CertRequest::leaf("etcd", ca.clone(), vec![Usage::ServerAuth, Usage::ClientAuth], SecretLayout::named("etcd-tls", false));
    etcd_tls.dns_names = std::iter::once("localhost".to_string())
        .chain((0..etcd_members).flat_map(|i| [format!("etcd-{i}"), format!("etcd-{i}.etcd.{ns}.svc.cluster.local")]))
        .collect();
    etcd_tls.ip_addresses = vec![localhost];

    let client = |cn: &str, issuer: &Address, base: &str| {
        CertRequest::leaf(cn, issuer.clone(), vec![Usage::ClientAuth], SecretLayout::named(base, true))
    };
    let mut kubelet_client = client("kube-apiserver-kubelet-client", &ca, "kubelet-client");
    kubelet_client.organizations = vec!["system:masters".into()];

    let service_account_key = CertRequest {
        kind: CertKind::KeyPair,
        key: KeyAlgorithm::Rsa2048,
        common_name: String::new(),
        organizations: Vec::new(),
        dns_names: Vec::new(),
        ip_addresses: Vec::new(),
        usages: Vec::new(),
        validity_days: 0,
        issuer: None,
        layout: SecretLayout { cert: "sa.pub".into(), key: "sa.key".into(), ca: None },
    };

    let mut openvpn_ca_request = CertRequest::ca("CA", KeyAlgorithm::EcdsaP256);
    openvpn_ca_request.dns_names.clear();
    let ecdsa = |mut req: CertRequest| {
        req.key = KeyAlgorithm::EcdsaP256;
        req
    };
    let openvpn_server = ecdsa(CertRequest::leaf(
        "openvpn-server",
        openvpn_ca.clone(),
        vec![Usage::ServerAuth],
        SecretLayout { cert: "server.crt".into(), key: "server.key".into(), ca: None },
    ));
    let openvpn_client = ecdsa(CertRequest::leaf(
        "internal-client",
        openvpn_ca.clone(),
        vec![Usage::ClientAuth],
        SecretLayout { cert: "client.crt".into(), key: "client.key".into(), ca: Some("ca.crt".into()) },
    ));

    let requests = [
        ("ca", "apiserver", CertRequest::ca(&format!("root-ca.{}", cluster.external_name), KeyAlgorithm::Rsa2048)),
        ("front-proxy-ca", "apiserver", CertRequest::ca("front-proxy-ca", KeyAlgorithm::Rsa2048)),
        ("apiserver-tls", "apiserver", apiserver_tls),
        ("etcd-tls-certificate", "etcd", etcd_tls),
        ("apiserver-etcd-client-certificate", "apiserver", client("apiserver", &ca, "apiserver-etcd-client")),
        ("kubelet-client-certificates", "apiserver", kubelet_client),
        ("apiserver-proxy-client-certificate", "apiserver", client("apiserver-aggregator", &front_proxy_ca, "apiserver-proxy-client")),
        ("service-account-key", "apiserver", service_account_key),
        ("openvpn-ca", "openvpn-server", openvpn_ca_request),
        ("openvpn-server-certificates", "openvpn-server", openvpn_server),
        ("openvpn-client-certificates", "openvpn-server", openvpn_client),
        ("prometheus-apiserver-certificate", "prometheus", client("prometheus", &ca, "prometheus-client")),
    ];
    requests
        .into_iter()
        .map(|(name, component, mut request)| {
            if request.key == KeyAlgorithm::Rsa2048 {
                request.key = cluster.key_algorithm;
            }
            let mut deps = Vec::new();
            deps.extend(request.issuer.clone());
            // The serving certificate names the address the external Service publishes.
            if name == "apiserver-tls" {
                deps.push(meta::object(cluster, Kind::Service, "apiserver-external"));
            }
            let object = ObjectRef::namespaced(Kind::Secret, &ns, name);
            let role = match request.kind {
                CertKind::Ca => Role::CertificateAuthority,
                CertKind::Leaf => Role::Certificate,
                CertKind::KeyPair => Role::KeyPair,
            };
            meta::cluster_node(
                cluster,
                Kind::Secret,
                name,
                role,
                deps,
                Body::Secret { object, labels: object_labels(component, cluster), request },
            )
        })
        .collect()
}
