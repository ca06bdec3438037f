//! The Secrets of a user cluster's control plane (KKP `GetSecretReconcilers`, the cluster
//! credentials controller and the monitoring controller's client certificate): CAs, leaves,
//! kubeconfigs, tokens and copied credentials as requests whose content apply makes, and the
//! authentication configuration as a plain Secret; the cloud provider's Secrets come from
//! [`super::cloud_config`].

use super::meta::{self, object_labels};
use super::{Body, DesiredNode, manifest};
use crate::address::Address;
use crate::object::Kind;
use crate::object::ObjectRef;
use crate::pki::{CertKind, CertRequest, Content, KeyAlgorithm, SecretLayout, TokenUser, Usage};
use crate::role::Role;
use crate::topology::{Cluster, ExposeStrategy, Tunnel};
use k8s_openapi::ByteString;
use k8s_openapi::api::core::v1::Secret;
use std::collections::BTreeMap;
use std::net::IpAddr;

/// One Secret whose content apply makes, before it becomes a node.
struct Planned {
    name: &'static str,
    /// KKP component whose labels the Secret carries.
    component: &'static str,
    request: CertRequest,
    /// Dependencies besides the issuer and the Secret the content is made from.
    deps: Vec<Address>,
}

/// A Secret with no dependencies besides its issuer and source.
fn issued(name: &'static str, component: &'static str, request: CertRequest) -> Planned {
    Planned { name, component, request, deps: Vec::new() }
}

/// The in-cluster apiserver URL of KKP's internal kubeconfigs (`status.address.internalURL`).
pub fn internal_server(cluster: &Cluster) -> String {
    format!("https://apiserver-external.{}.svc.cluster.local.", cluster.namespace())
}

/// The cluster's external URL (`status.address.url`): the external name and the port the
/// apiserver-external Service publishes (the apiserver's own port when tunneled).
pub fn external_url(cluster: &Cluster) -> String {
    let port = match cluster.expose_strategy {
        ExposeStrategy::Tunneling => super::apiserver::SECURE_PORT,
        _ => 443,
    };
    format!("https://{}:{port}", cluster.external_name)
}

/// A kubeconfig Secret with a client certificate signed by `ca` (KKP's
/// `GetInternalKubeconfigReconciler`).
fn internal_kubeconfig(cluster: &Cluster, ca: &Address, common_name: &str, organizations: &[&str]) -> CertRequest {
    let mut request = CertRequest::leaf(common_name, ca.clone(), vec![Usage::ClientAuth], SecretLayout::named("kubeconfig", false));
    request.organizations = organizations.iter().map(|o| o.to_string()).collect();
    request.content = Some(Content::Kubeconfig { server: internal_server(cluster), cluster: cluster.name.clone() });
    request
}

/// A webhook serving certificate as `triple.NewServerKeyPair` makes it: CN the Service's FQDN
/// with a trailing dot, which is also a SAN with the Service's short names.
fn webhook_serving(cluster: &Cluster, ca: &Address, service: &str, cert: &str, key: &str) -> CertRequest {
    let ns = cluster.namespace();
    let fqdn = format!("{service}.{ns}.svc.cluster.local.");
    let layout = SecretLayout { cert: cert.into(), key: key.into(), ca: Some("ca.crt".into()), tls_copy: false };
    let mut request = CertRequest::leaf(&fqdn, ca.clone(), vec![Usage::ServerAuth], layout);
    request.dns_names =
        vec![fqdn.clone(), service.into(), format!("{service}.{ns}"), format!("{service}.{ns}.svc"), format!("{service}.{ns}.svc.")];
    request
}

/// Every Secret of the cluster's control plane, CAs first.
pub fn secrets(cluster: &Cluster) -> Vec<DesiredNode> {
    let ca = meta::secret(cluster, "ca");
    let front_proxy_ca = meta::secret(cluster, "front-proxy-ca");
    let tokens = meta::secret(cluster, "tokens");
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

    let service_account_key = CertRequest::key_pair("sa.pub", "sa.key");

    let kubeconfig = |cn: &str| internal_kubeconfig(cluster, &ca, cn, &[]);
    let token_kubeconfig = |user| {
        CertRequest::generated(
            Content::TokenKubeconfig { server: external_url(cluster), cluster: cluster.name.clone(), tokens: tokens.clone(), user },
            Some(ca.clone()),
        )
    };

    let mut secrets = vec![
        issued("ca", "apiserver", CertRequest::ca(&format!("root-ca.{}", cluster.external_name), KeyAlgorithm::Rsa2048)),
        issued("front-proxy-ca", "apiserver", CertRequest::ca("front-proxy-ca", KeyAlgorithm::Rsa2048)),
        Planned {
            deps: vec![meta::object(cluster, Kind::Service, "apiserver-external")],
            ..issued("apiserver-tls", "apiserver", apiserver_tls)
        },
        issued("etcd-tls-certificate", "etcd", etcd_tls),
        issued("apiserver-etcd-client-certificate", "apiserver", client("apiserver", &ca, "apiserver-etcd-client")),
        issued("kubelet-client-certificates", "apiserver", kubelet_client),
        issued(
            "apiserver-proxy-client-certificate",
            "apiserver",
            client("apiserver-aggregator", &front_proxy_ca, "apiserver-proxy-client"),
        ),
        issued("service-account-key", "apiserver", service_account_key),
        issued("prometheus-apiserver-certificate", "prometheus", client("prometheus", &ca, "prometheus-client")),
        issued(
            "usercluster-webhook-serving-cert",
            "usercluster-webhook",
            webhook_serving(cluster, &ca, "usercluster-webhook", "serving.crt", "serving.key"),
        ),
        issued(
            "operating-system-manager-webhook-serving-cert",
            "operating-system-manager-webhook",
            webhook_serving(cluster, &ca, "operating-system-manager-webhook", "tls.crt", "tls.key"),
        ),
        issued("scheduler-kubeconfig", "scheduler", kubeconfig("system:kube-scheduler")),
        issued("machinecontroller-kubeconfig", "machine-controller", kubeconfig("machine-controller")),
        issued("operatingsystemmanager-kubeconfig", "operating-system-manager", kubeconfig("operating-system-manager")),
        issued("controllermanager-kubeconfig", "controller-manager", kubeconfig("system:kube-controller-manager")),
        issued("kube-state-metrics-kubeconfig", "kube-state-metrics", kubeconfig("kube-state-metrics")),
        issued(
            "internal-admin-kubeconfig",
            "usercluster-controller",
            internal_kubeconfig(cluster, &ca, "kubermatic-controllers", &["system:masters"]),
        ),
        issued("vcloud-csi-kubeconfig", "csi", kubeconfig("kubermatic:vcloud-csi")),
        issued(
            "operatingsystemmanager-webhook-kubeconfig",
            "operating-system-manager-webhook",
            kubeconfig("operating-system-manager-webhook"),
        ),
        issued("tokens", "apiserver", CertRequest::generated(Content::TokenUsers, None)),
        issued("viewer-token", "apiserver", CertRequest::generated(Content::ViewerToken { tokens: tokens.clone() }, None)),
        issued("admin-kubeconfig", "apiserver", token_kubeconfig(TokenUser::Admin)),
        issued("viewer-kubeconfig", "apiserver", token_kubeconfig(TokenUser::Viewer)),
    ];
    if cluster.provider != "edge" {
        secrets.push(issued(
            "machinecontroller-webhook-serving-cert",
            "machine-controller-webhook",
            webhook_serving(cluster, &ca, "machine-controller-webhook", "cert.pem", "key.pem"),
        ));
    }
    if cluster.kubernetes_dashboard {
        secrets.push(issued("kubernetes-dashboard-kubeconfig", "kubernetes-dashboard", kubeconfig("kubermatic:kubernetes-dashboard")));
    }
    match cluster.tunnel {
        Tunnel::Konnectivity => {
            let mut proxy_tls = CertRequest::leaf(
                "konnectivity-proxy",
                ca.clone(),
                vec![Usage::ServerAuth],
                SecretLayout::named("konnectivityproxy-tls", false),
            );
            proxy_tls.dns_names = vec![cluster.external_name.clone(), format!("konnectivity-server.{}", cluster.external_name)];
            proxy_tls.ip_addresses = apiserver_ip.into_iter().chain([localhost]).collect();
            secrets.push(issued("konnectivityproxy-tls", "konnectivity-server", proxy_tls));
            secrets.push(issued("konnectivity-kubeconfig", "konnectivity-server", kubeconfig("system:konnectivity-server")));
        }
        Tunnel::OpenVpn => {
            let openvpn_ca = meta::secret(cluster, "openvpn-ca");
            let mut openvpn_ca_request = CertRequest::ca("CA", KeyAlgorithm::EcdsaP256);
            openvpn_ca_request.dns_names.clear();
            let ecdsa = |mut req: CertRequest| {
                req.key = KeyAlgorithm::EcdsaP256;
                req
            };
            let pair = |base: &str, ca_copy: bool| SecretLayout {
                cert: format!("{base}.crt"),
                key: format!("{base}.key"),
                ca: ca_copy.then(|| "ca.crt".into()),
                tls_copy: false,
            };
            let openvpn_server =
                ecdsa(CertRequest::leaf("openvpn-server", openvpn_ca.clone(), vec![Usage::ServerAuth], pair("server", false)));
            let openvpn_client =
                ecdsa(CertRequest::leaf("internal-client", openvpn_ca.clone(), vec![Usage::ClientAuth], pair("client", true)));
            let metrics_dns = "metrics-server.kube-system.svc";
            let mut metrics_serving = CertRequest::leaf(
                metrics_dns,
                ca.clone(),
                vec![Usage::ServerAuth],
                SecretLayout { cert: "serving.crt".into(), key: "serving.key".into(), ca: None, tls_copy: true },
            );
            metrics_serving.dns_names = vec![metrics_dns.into()];
            secrets.extend([
                issued("openvpn-ca", "openvpn-server", openvpn_ca_request),
                issued("openvpn-server-certificates", "openvpn-server", openvpn_server),
                issued("openvpn-client-certificates", "openvpn-server", openvpn_client),
                issued("metrics-server-serving-cert", "metrics-server", metrics_serving),
                issued("metrics-server", "metrics-server", kubeconfig("metrics-server")),
                issued("kubeletdnatcontroller-kubeconfig", "openvpn-server", kubeconfig("kubermatic:kubeletdnat-controller")),
            ]);
        }
    }
    if cluster.features.get("externalCloudProvider").copied().unwrap_or(false) {
        secrets.push(issued(
            "cloud-controller-manager-kubeconfig",
            "cloud-controller-manager",
            kubeconfig("system:cloud-controller-manager"),
        ));
    }
    if let Some(credentials) = &cluster.cloud.credentials {
        secrets.push(issued(
            "cloud-credentials",
            "apiserver",
            CertRequest::generated(Content::Copy { namespace: credentials.namespace.clone(), name: credentials.name.clone() }, None),
        ));
    }

    let mut nodes: Vec<DesiredNode> = secrets
        .into_iter()
        .map(|Planned { name, component, mut request, deps: extra }| {
            if request.key == KeyAlgorithm::Rsa2048 {
                request.key = cluster.key_algorithm;
            }
            let mut deps: Vec<Address> = request.issuer.iter().cloned().collect();
            if let Some(Content::TokenKubeconfig { tokens, .. } | Content::ViewerToken { tokens }) = &request.content {
                deps.push(tokens.clone());
            }
            deps.extend(extra);
            let object = ObjectRef::namespaced(Kind::Secret, &ns, name);
            let role = role_of(&request);
            meta::cluster_node(
                cluster,
                Kind::Secret,
                name,
                role,
                deps,
                Body::Secret { object, labels: object_labels(component, cluster), request },
            )
        })
        .collect();
    nodes.extend(super::cloud_config::secrets(cluster));
    nodes.extend(authentication_configuration(cluster));
    nodes
}

/// A Secret KKP renders whose content holds nothing secret, rendered like any object.
pub(super) fn plain_secret(
    cluster: &Cluster,
    name: &str,
    labels: BTreeMap<String, String>,
    data: BTreeMap<String, Vec<u8>>,
) -> DesiredNode {
    let mut labels = labels;
    labels.insert(meta::MANAGED_BY.0.into(), meta::MANAGED_BY.1.into());
    let secret = Secret {
        metadata: k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta {
            name: Some(name.into()),
            namespace: Some(cluster.namespace()),
            labels: Some(labels),
            ..Default::default()
        },
        data: Some(data.into_iter().map(|(k, v)| (k, ByteString(v))).collect()),
        type_: Some("Opaque".into()),
        ..Default::default()
    };
    meta::cluster_node(
        cluster,
        Kind::Secret,
        name,
        Role::Config,
        Vec::new(),
        Body::Object { manifest: manifest(&secret), fingerprints: Vec::new() },
    )
}

/// `apiserver-authentication-configuration` (key `authentication-configuration.yaml`) when
/// OIDC is on: KKP's default JWT authenticator for its own issuer (username from `email`,
/// groups from `groups` prefixed `oidc:`), `v1beta1` before Kubernetes 1.34.
fn authentication_configuration(cluster: &Cluster) -> Option<DesiredNode> {
    let oidc = cluster.oidc.as_ref()?;
    let api_version =
        if cluster.version < semver::Version::new(1, 34, 0) { "apiserver.config.k8s.io/v1beta1" } else { "apiserver.config.k8s.io/v1" };
    let config = serde_json::json!({
        "apiVersion": api_version,
        "kind": "AuthenticationConfiguration",
        "jwt": [{
            "issuer": {"url": oidc.issuer_url, "audiences": [oidc.client_id]},
            "claimMappings": {
                "username": {"claim": "email", "prefix": ""},
                "groups": {"claim": "groups", "prefix": "oidc:"},
                "uid": {},
            },
        }],
    });
    let yaml = serde_saphyr::to_string(&config).expect("JSON values serialise to YAML");
    let data = BTreeMap::from([("authentication-configuration.yaml".to_string(), yaml.into_bytes())]);
    Some(plain_secret(cluster, "apiserver-authentication-configuration", BTreeMap::new(), data))
}

/// The role a request's Secret plays.
fn role_of(request: &CertRequest) -> Role {
    match (&request.content, request.kind) {
        (Some(Content::Kubeconfig { .. } | Content::TokenKubeconfig { .. }), _) => Role::Kubeconfig,
        (Some(Content::TokenUsers | Content::ViewerToken { .. }), _) => Role::Tokens,
        (Some(Content::Copy { .. } | Content::Cloud { .. }), _) => Role::Credentials,
        (None, CertKind::Ca) => Role::CertificateAuthority,
        (None, CertKind::KeyPair) => Role::KeyPair,
        (None, _) => Role::Certificate,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::topology::Cluster;
    use std::collections::BTreeSet;
    use std::path::PathBuf;

    fn fixture() -> Cluster {
        let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("testdata/kkp-fixtures/topology.yaml");
        crate::topology::load(&[path]).expect("the KKP fixture loads").clusters.into_values().next().expect("one cluster")
    }

    fn requests(cluster: &Cluster) -> BTreeMap<String, (Role, CertRequest)> {
        secrets(cluster)
            .into_iter()
            .filter_map(|n| match n.body {
                Body::Secret { object, request, .. } => Some((object.name, (n.role, request))),
                _ => None,
            })
            .collect()
    }

    fn names(cluster: &Cluster) -> BTreeSet<String> {
        secrets(cluster).into_iter().map(|n| n.body.object().unwrap().name).collect()
    }

    #[test]
    fn konnectivity_clusters_get_kkps_secrets_and_no_openvpn_pki() {
        let cluster = fixture();
        let expected = [
            "admin-kubeconfig",
            "apiserver-authentication-configuration",
            "apiserver-etcd-client-certificate",
            "apiserver-proxy-client-certificate",
            "apiserver-tls",
            "ca",
            "cloud-config",
            "cloud-credentials",
            "controllermanager-kubeconfig",
            "etcd-tls-certificate",
            "front-proxy-ca",
            "internal-admin-kubeconfig",
            "konnectivity-kubeconfig",
            "konnectivityproxy-tls",
            "kube-state-metrics-kubeconfig",
            "kubelet-client-certificates",
            "kubernetes-dashboard-kubeconfig",
            "machinecontroller-kubeconfig",
            "machinecontroller-webhook-serving-cert",
            "operating-system-manager-webhook-serving-cert",
            "operatingsystemmanager-kubeconfig",
            "operatingsystemmanager-webhook-kubeconfig",
            "prometheus-apiserver-certificate",
            "scheduler-kubeconfig",
            "service-account-key",
            "tokens",
            "usercluster-webhook-serving-cert",
            "vcloud-csi-kubeconfig",
            "viewer-kubeconfig",
            "viewer-token",
        ];
        assert_eq!(names(&cluster), expected.iter().map(|s| s.to_string()).collect());
    }

    #[test]
    fn every_secret_kkps_golden_workloads_mount_is_rendered() {
        let cluster = fixture();
        let rendered = names(&cluster);
        let golden = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("testdata/kkp-fixtures/golden");
        let mut mounted = BTreeSet::new();
        for entry in std::fs::read_dir(golden).unwrap() {
            let text = std::fs::read_to_string(entry.unwrap().path()).unwrap();
            mounted.extend(text.lines().filter_map(|l| l.trim().strip_prefix("secretName: ")).map(str::to_string));
        }
        let missing: Vec<_> = mounted.difference(&rendered).collect();
        assert!(missing.is_empty(), "mounted by KKP but not rendered: {missing:?}");
    }

    #[test]
    fn the_openvpn_tunnel_swaps_konnectivity_for_kkps_openvpn_secrets() {
        let mut cluster = fixture();
        cluster.tunnel = Tunnel::OpenVpn;
        cluster.kubernetes_dashboard = false;
        cluster.features.insert("externalCloudProvider".into(), true);
        let names = names(&cluster);
        for present in [
            "openvpn-ca",
            "openvpn-server-certificates",
            "openvpn-client-certificates",
            "metrics-server",
            "metrics-server-serving-cert",
            "kubeletdnatcontroller-kubeconfig",
            "cloud-controller-manager-kubeconfig",
        ] {
            assert!(names.contains(present), "{present} missing");
        }
        for absent in ["konnectivityproxy-tls", "konnectivity-kubeconfig", "kubernetes-dashboard-kubeconfig"] {
            assert!(!names.contains(absent), "{absent} rendered");
        }
        let requests = requests(&cluster);
        let (_, server) = &requests["openvpn-server-certificates"];
        assert_eq!((server.common_name.as_str(), server.key), ("openvpn-server", KeyAlgorithm::EcdsaP256));
        assert_eq!(server.issuer.as_ref().unwrap().as_str(), "cluster/de-test-01/secret/openvpn-ca");
        let (_, metrics) = &requests["metrics-server-serving-cert"];
        assert_eq!(metrics.dns_names, ["metrics-server.kube-system.svc"]);
        assert!(metrics.layout.tls_copy && metrics.layout.cert == "serving.crt");
        let (_, dnat) = &requests["kubeletdnatcontroller-kubeconfig"];
        assert_eq!(dnat.common_name, "kubermatic:kubeletdnat-controller");
    }

    #[test]
    fn kubeconfigs_carry_kkps_users_and_the_internal_server() {
        let cluster = fixture();
        let requests = requests(&cluster);
        let server = "https://apiserver-external.cluster-de-test-01.svc.cluster.local.";
        for (secret, cn, orgs) in [
            ("scheduler-kubeconfig", "system:kube-scheduler", &[][..]),
            ("controllermanager-kubeconfig", "system:kube-controller-manager", &[]),
            ("machinecontroller-kubeconfig", "machine-controller", &[]),
            ("operatingsystemmanager-kubeconfig", "operating-system-manager", &[]),
            ("operatingsystemmanager-webhook-kubeconfig", "operating-system-manager-webhook", &[]),
            ("kube-state-metrics-kubeconfig", "kube-state-metrics", &[]),
            ("kubernetes-dashboard-kubeconfig", "kubermatic:kubernetes-dashboard", &[]),
            ("internal-admin-kubeconfig", "kubermatic-controllers", &["system:masters"][..]),
            ("konnectivity-kubeconfig", "system:konnectivity-server", &[]),
        ] {
            let (role, request) = &requests[secret];
            assert_eq!(*role, Role::Kubeconfig, "{secret}");
            assert_eq!(request.kind, CertKind::Leaf, "{secret} renews like a leaf");
            assert_eq!(request.common_name, cn, "{secret}");
            assert_eq!(request.organizations, orgs, "{secret}");
            assert_eq!(request.usages, [Usage::ClientAuth], "{secret}");
            assert_eq!(request.issuer.as_ref().unwrap().as_str(), "cluster/de-test-01/secret/ca", "{secret}");
            assert_eq!(request.content, Some(Content::Kubeconfig { server: server.into(), cluster: "de-test-01".into() }), "{secret}");
        }
        let (role, admin) = &requests["admin-kubeconfig"];
        assert_eq!(*role, Role::Kubeconfig);
        let Some(Content::TokenKubeconfig { server, user, tokens, .. }) = &admin.content else { panic!("admin-kubeconfig uses a token") };
        assert_eq!((server.as_str(), *user), ("https://de-test-01.test-seed.dev.kubermatic.io:443", TokenUser::Admin));
        assert_eq!(tokens.as_str(), "cluster/de-test-01/secret/tokens");
        assert_eq!(requests["tokens"].0, Role::Tokens);
        assert_eq!(requests["viewer-token"].0, Role::Tokens);
        assert_eq!(requests["cloud-credentials"].0, Role::Credentials);
        assert_eq!(
            requests["cloud-credentials"].1.content,
            Some(Content::Copy { namespace: "kubermatic".into(), name: "credential-aws-de-test-01".into() })
        );
        // Token users and what reads them depend on the tokens Secret.
        let node = secrets(&cluster).into_iter().find(|n| n.address.as_str() == "cluster/de-test-01/secret/viewer-kubeconfig").unwrap();
        assert!(node.deps.iter().any(|d| d.as_str() == "cluster/de-test-01/secret/tokens"));
        assert!(node.deps.iter().any(|d| d.as_str() == "cluster/de-test-01/secret/ca"));
    }

    #[test]
    fn serving_certificates_name_their_services() {
        let cluster = fixture();
        let requests = requests(&cluster);
        let ns = "cluster-de-test-01";
        for (secret, service, cert, key) in [
            ("machinecontroller-webhook-serving-cert", "machine-controller-webhook", "cert.pem", "key.pem"),
            ("operating-system-manager-webhook-serving-cert", "operating-system-manager-webhook", "tls.crt", "tls.key"),
            ("usercluster-webhook-serving-cert", "usercluster-webhook", "serving.crt", "serving.key"),
        ] {
            let (role, request) = &requests[secret];
            assert_eq!(*role, Role::Certificate);
            let fqdn = format!("{service}.{ns}.svc.cluster.local.");
            assert_eq!(request.common_name, fqdn);
            let sans: BTreeSet<&str> = request.dns_names.iter().map(String::as_str).collect();
            let want =
                [fqdn.clone(), service.into(), format!("{service}.{ns}"), format!("{service}.{ns}.svc"), format!("{service}.{ns}.svc.")];
            assert_eq!(sans, want.iter().map(String::as_str).collect());
            assert_eq!((request.layout.cert.as_str(), request.layout.key.as_str()), (cert, key));
            assert_eq!(request.layout.ca.as_deref(), Some("ca.crt"));
            assert_eq!(request.usages, [Usage::ServerAuth]);
        }
        let (_, proxy) = &requests["konnectivityproxy-tls"];
        assert_eq!(proxy.common_name, "konnectivity-proxy");
        assert_eq!(
            proxy.dns_names,
            ["de-test-01.test-seed.dev.kubermatic.io", "konnectivity-server.de-test-01.test-seed.dev.kubermatic.io"]
        );
        assert_eq!(proxy.ip_addresses, ["10.240.16.1".parse::<IpAddr>().unwrap(), [127, 0, 0, 1].into()]);
        assert_eq!(proxy.layout, SecretLayout::named("konnectivityproxy-tls", false));
    }

    #[test]
    fn oidc_clusters_get_kkps_default_authentication_configuration() {
        let mut cluster = fixture();
        let node = authentication_configuration(&cluster).expect("the fixture turns OIDC on");
        let Body::Object { manifest, .. } = &node.body else { panic!("a plain Secret") };
        use base64::Engine;
        let encoded = manifest["data"]["authentication-configuration.yaml"].as_str().unwrap();
        let text = String::from_utf8(base64::engine::general_purpose::STANDARD.decode(encoded).unwrap()).unwrap();
        let config: serde_json::Value = serde_saphyr::from_str(&text).unwrap();
        assert_eq!(config["apiVersion"], "apiserver.config.k8s.io/v1beta1", "Kubernetes 1.33 reads v1beta1");
        assert_eq!(config["jwt"][0]["issuer"]["url"], "https://dev.kubermatic.io/dex");
        assert_eq!(config["jwt"][0]["issuer"]["audiences"][0], "kubermaticIssuer");
        assert_eq!(config["jwt"][0]["claimMappings"]["groups"]["prefix"], "oidc:");
        assert_eq!(config["jwt"][0]["claimMappings"]["username"]["prefix"], "");
        cluster.version = semver::Version::new(1, 34, 0);
        let Body::Object { manifest, .. } = authentication_configuration(&cluster).unwrap().body else { unreachable!() };
        let text = base64::engine::general_purpose::STANDARD
            .decode(manifest["data"]["authentication-configuration.yaml"].as_str().unwrap())
            .unwrap();
        assert!(String::from_utf8(text).unwrap().contains("apiserver.config.k8s.io/v1\n"));
        cluster.oidc = None;
        assert!(authentication_configuration(&cluster).is_none());
    }

    /// Plans the KKP fixture against its own simulated apply after `edit`, keeping only the
    /// Secret actions (other components are not this module's concern).
    fn secret_actions_after(edit: impl Fn(&mut crate::state::State)) -> BTreeMap<String, crate::plan::Action> {
        const NOW: i64 = 1_790_000_000;
        let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("testdata/kkp-fixtures/topology.yaml");
        let topology = crate::topology::load(&[path]).unwrap();
        // Re-issuing a CA needs the operator's consent, as on the command line.
        let allow_destroy = vec![Address::cluster_object("de-test-01", Kind::Secret, "ca")];
        let options = crate::plan::Options { now: NOW, allow_destroy, ..Default::default() };
        let first = crate::plan::create(&topology, None, &|_| None, &options).unwrap();
        let mut state = crate::state::State::new("lineage".into());
        crate::apply::simulate::record(&first, &mut state, NOW, &mut |_, _| {});
        edit(&mut state);
        state.clusters.clear();
        let plan = crate::plan::create(&topology, Some(&state), &|_| None, &options).unwrap();
        plan.actions
            .iter()
            .filter(|a| a.address.as_str().contains("/secret/"))
            .map(|a| (a.address.as_str().to_string(), a.action))
            .collect()
    }

    #[test]
    fn a_new_ca_reissues_every_kubeconfig_and_leaf_it_signed_but_keeps_tokens_and_credentials() {
        use crate::plan::Action;
        assert!(secret_actions_after(|_| {}).is_empty(), "an applied cluster plans no Secret changes");
        let replaced = secret_actions_after(|state| {
            let ca = Address::cluster_object("de-test-01", Kind::Secret, "ca");
            state.nodes.get_mut(&ca).unwrap().certificate.as_mut().unwrap().request_digest = "sha256:another-ca".into();
        });
        for secret in [
            "ca",
            "apiserver-tls",
            "scheduler-kubeconfig",
            "internal-admin-kubeconfig",
            "konnectivity-kubeconfig",
            "admin-kubeconfig",
            "viewer-kubeconfig",
            "usercluster-webhook-serving-cert",
            "konnectivityproxy-tls",
        ] {
            assert_eq!(replaced.get(&format!("cluster/de-test-01/secret/{secret}")), Some(&Action::Replace), "{secret}");
        }
        for kept in
            ["tokens", "viewer-token", "cloud-credentials", "front-proxy-ca", "apiserver-proxy-client-certificate", "service-account-key"]
        {
            assert!(!replaced.contains_key(&format!("cluster/de-test-01/secret/{kept}")), "{kept} is not signed by ca");
        }
    }

    #[test]
    fn a_kubeconfig_inside_the_renewal_window_is_renewed_alone() {
        let renewed = secret_actions_after(|state| {
            let at = Address::cluster_object("de-test-01", Kind::Secret, "scheduler-kubeconfig");
            state.nodes.get_mut(&at).unwrap().certificate.as_mut().unwrap().not_after = Some(1_790_000_000 + 10 * 86_400);
        });
        assert_eq!(renewed, BTreeMap::from([("cluster/de-test-01/secret/scheduler-kubeconfig".to_string(), crate::plan::Action::Replace)]));
    }
}
