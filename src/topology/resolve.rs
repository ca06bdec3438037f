//! Validation (KKP's webhook rules) and defaulting (KKP's defaulting code) of parsed documents.

use super::documents::{Document, Source};
use super::features;
use super::kkp::{self, ComponentSettings, Header};
use super::schema;
use super::versions;
use super::*;
use serde::Deserialize;
use serde::de::DeserializeOwned;

const KKP_API_VERSION: &str = "kubermatic.k8c.io/v1";
const DEFAULT_APISERVER_REPLICAS: i32 = 2;
const DEFAULT_ETCD_CLUSTER_SIZE: i32 = 3;
const MIN_ETCD_CLUSTER_SIZE: i32 = 3;
const MAX_ETCD_CLUSTER_SIZE: i32 = 9;
const DEFAULT_ETCD_DISK_SIZE: &str = "5Gi";
const DEFAULT_ETCD_STORAGE_CLASS: &str = "kubermatic-fast";
const DEFAULT_NODE_PORT_RANGE: &str = "30000-32767";
const DEFAULT_NODE_ACCESS_NETWORK: &str = "10.254.0.0/16";
const DEFAULT_TUNNELING_AGENT_IP: &str = "100.64.30.10";
/// `cluster-` + name must stay a DNS-1123 label (63 characters).
const MAX_CLUSTER_NAME: usize = 63 - "cluster-".len();

/// A document parsed into its KKP type, with the paths serde skipped.
struct Parsed<'a, T> {
    doc: &'a Document,
    value: T,
}

#[derive(Default)]
struct Collected<'a> {
    seeds: Vec<Parsed<'a, kkp::SeedDoc>>,
    clusters: Vec<Parsed<'a, kkp::ClusterDoc>>,
    configurations: Vec<Parsed<'a, kkp::ConfigurationDoc>>,
    secrets: Vec<Parsed<'a, kkp::SecretDoc>>,
    config_maps: Vec<Parsed<'a, kkp::ConfigMapDoc>>,
}

struct Resolver {
    diagnostics: Vec<Diagnostic>,
    notes: Vec<Note>,
}

impl Resolver {
    fn error(&mut self, source: Source, subject: impl Into<String>, message: impl Into<String>, fix: impl Into<String>) {
        self.diagnostics.push(Diagnostic { source, subject: subject.into(), message: message.into(), fix: fix.into() });
    }

    fn note(&mut self, source: Source, message: impl Into<String>) {
        self.notes.push(Note { source, message: message.into() });
    }

    /// Parses one document of KKP kind `kind` as `T`. A field KKP does not have is an error
    /// naming the closest KKP field; a KKP field kkp does not model is a note.
    /// `tree` is the document read as a tree, if it reads as one.
    fn parse<T: DeserializeOwned>(&mut self, doc: &Document, kind: &'static str, tree: Option<&serde_json::Value>) -> Option<T> {
        let mut skipped = Vec::new();
        // The YAML is read once into a tree, which the field check walks and the typed parse
        // reads. Only when that fails (a YAML scalar serde_json reads differently, or a real
        // error) is the text parsed straight into the type, which also gives the error's line.
        let from_tree = tree.and_then(|tree| serde_ignored::deserialize(tree, |path| skipped.push(path.to_string())).ok());
        let result = match from_tree {
            Some(value) => Ok(value),
            None => {
                skipped.clear();
                serde_saphyr::with_deserializer_from_str(&doc.text, |de| {
                    serde_ignored::deserialize(de, |path| skipped.push(path.to_string()))
                })
            }
        };
        match result {
            Ok(value) => {
                if let Some(tree) = tree {
                    self.check_fields(doc, kind, tree);
                }
                let mut unmodelled = Vec::new();
                for path in skipped {
                    let path = path.replace("?.", "").replace(".?", "");
                    // Fields KKP does not have were reported as errors by `check_fields`.
                    if is_server_side(&path) || !schema::is_kkp_field(kind, &path) {
                        continue;
                    }
                    let segments: Vec<&str> = path.split('.').collect();
                    unmodelled.push((doc.locate(&segments), path));
                }
                // In input order (the tree is read in key order).
                unmodelled.sort_by_key(|(source, _)| source.line);
                for (source, path) in unmodelled {
                    self.note(source, format!("{kind}: field `{path}` is not modelled by kkp; it is ignored"));
                }
                Some(value)
            }
            Err(e) => {
                let line = e.location().map(|l| l.line() as usize).unwrap_or(1);
                let message = yaml_message(&e);
                self.error(
                    Source { file: doc.file.clone(), line: doc.first_line + line - 1 },
                    kind,
                    message,
                    "correct the YAML so it matches KKP's schema for this kind",
                );
                None
            }
        }
    }
}

impl Resolver {
    /// Reports every key of the document that is not a KKP field at its place, with the closest
    /// KKP field name. Free-form maps (labels, features, datacenter names, ...) are not checked.
    fn check_fields(&mut self, doc: &Document, kind: &'static str, value: &serde_json::Value) {
        let name = value.pointer("/metadata/name").and_then(|n| n.as_str()).unwrap_or_default();
        let subject = match kind {
            "Cluster" => format!("cluster {name:?}"),
            "Seed" => format!("seed {name:?}"),
            _ => format!("{kind} {name:?}"),
        };
        // In input order (the walk goes in key order).
        let mut unknown: Vec<_> = schema::unknown_fields(kind, value)
            .into_iter()
            .map(|u| (doc.locate(&u.keys.iter().map(String::as_str).collect::<Vec<_>>()), u))
            .collect();
        unknown.sort_by_key(|(source, _)| source.line);
        for (source, unknown) in unknown {
            let keys: Vec<&str> = unknown.keys.iter().map(String::as_str).collect();
            let key = keys.last().copied().unwrap_or_default();
            let what = match unknown.parent_type {
                "CloudSpec" => "is not a KKP cloud provider",
                "DatacenterSpec" => "is neither a KKP provider nor a KKP datacenter option",
                _ => "is not a KKP field",
            };
            let message = format!("`{}` {what}", unknown.path);
            let fix = match unknown.suggestion {
                Some(known) => format!("did you mean `{known}`? rename `{key}` to `{known}`"),
                None if matches!(unknown.parent_type, "CloudSpec" | "DatacenterSpec") => {
                    format!("use one of KKP's providers: {}", kkp::PROVIDERS.join(", "))
                }
                None => format!("remove it; KKP's fields here are: {}", schema::field_names(unknown.parent_type).join(", ")),
            };
            self.error(source, &subject, message, fix);
        }
    }
}

/// The parser's message without its snippet (a Secret's snippet would print its content) and
/// without its document-relative position (the caller reports the file line).
fn yaml_message(e: &serde_saphyr::Error) -> String {
    let text = e.without_snippet().to_string();
    let first = text.lines().next().unwrap_or_default();
    first.split(" at line ").next().unwrap_or(first).to_string()
}

fn is_server_side(path: &str) -> bool {
    // apiVersion and kind were read from the header already.
    if path == "apiVersion" || path == "kind" || path == "status" || path.starts_with("status.") {
        return true;
    }
    match path.strip_prefix("metadata.") {
        Some(rest) => {
            let key = rest.split('.').next().unwrap_or_default();
            kkp::SILENT_METADATA.contains(&key)
        }
        None => false,
    }
}

/// Validates and defaults the documents into a [`Topology`].
pub fn resolve(docs: &[Document]) -> Result<Topology> {
    let mut r = Resolver { diagnostics: Vec::new(), notes: Vec::new() };
    let collected = collect(&mut r, docs);

    let configuration = resolve_configuration(&mut r, &collected, docs);
    let seeds = resolve_seeds(&mut r, &collected, &configuration);
    let mut clusters = resolve_clusters(&mut r, &collected, &configuration, &seeds);
    let ca_bundle = resolve_ca_bundle(&mut r, &collected, &configuration, !clusters.is_empty(), docs);
    for cluster in clusters.values_mut() {
        cluster.ca_bundle.clone_from(&ca_bundle);
    }
    let kubeconfig_secrets = collected
        .secrets
        .iter()
        .map(|s| {
            let m = &s.value.metadata;
            let mut data = BTreeMap::new();
            for (key, encoded) in &s.value.data {
                use base64::Engine;
                let decoded = base64::engine::general_purpose::STANDARD.decode(encoded.trim()).ok().and_then(|b| String::from_utf8(b).ok());
                match decoded {
                    Some(text) => {
                        data.insert(key.clone(), text);
                    }
                    // KKP's own example ships a placeholder here; only a connection needs it.
                    None => r.note(
                        s.doc.locate(&["data", key]),
                        format!(
                            "Secret {}/{}: data.{key} is not base64-encoded UTF-8, so it cannot serve as a kubeconfig",
                            m.namespace.as_deref().unwrap_or("kubermatic"),
                            m.name
                        ),
                    ),
                }
            }
            data.extend(s.value.string_data.clone());
            let namespace = m.namespace.clone().unwrap_or_else(|| "kubermatic".into());
            ((namespace, m.name.clone()), KubeconfigSecret { data })
        })
        .collect();

    if !r.diagnostics.is_empty() {
        return Err(Error::Invalid(r.diagnostics));
    }
    let domain = configuration.domain;
    Ok(Topology { domain, versions: configuration.versions, seeds: seeds.seeds, clusters, kubeconfig_secrets, notes: r.notes })
}

fn collect<'a>(r: &mut Resolver, docs: &'a [Document]) -> Collected<'a> {
    let mut out = Collected::default();
    for doc in docs {
        // Read once as a tree, which gives the header and the typed parse; only a document
        // that does not read as one is parsed from its text again.
        let tree = serde_saphyr::from_str::<serde_json::Value>(&doc.text).ok();
        let header = match tree.as_ref().and_then(|tree| Header::deserialize(tree).ok()) {
            Some(header) => Ok(header),
            None => serde_saphyr::from_str::<Header>(&doc.text),
        };
        let header: Header = match header {
            Ok(h) => h,
            Err(e) => {
                let line = e.location().map(|l| l.line() as usize).unwrap_or(1);
                let message = yaml_message(&e);
                r.error(
                    Source { file: doc.file.clone(), line: doc.first_line + line - 1 },
                    "document",
                    format!("not valid YAML: {message}"),
                    "fix the YAML syntax at this line",
                );
                continue;
            }
        };
        let kkp_kind = matches!(header.kind.as_str(), "Seed" | "Cluster" | "KubermaticConfiguration");
        if kkp_kind && header.api_version != KKP_API_VERSION {
            r.error(
                doc.locate(&["apiVersion"]),
                format!("{} document", header.kind),
                format!("apiVersion is `{}`", header.api_version),
                format!("set apiVersion: {KKP_API_VERSION}"),
            );
            continue;
        }
        match (header.api_version.as_str(), header.kind.as_str()) {
            (_, "Seed") => {
                if let Some(value) = r.parse(doc, "Seed", tree.as_ref()) {
                    out.seeds.push(Parsed { doc, value });
                }
            }
            (_, "Cluster") => {
                if let Some(value) = r.parse(doc, "Cluster", tree.as_ref()) {
                    out.clusters.push(Parsed { doc, value });
                }
            }
            (_, "KubermaticConfiguration") => {
                if let Some(value) = r.parse(doc, "KubermaticConfiguration", tree.as_ref()) {
                    out.configurations.push(Parsed { doc, value });
                }
            }
            ("v1", "Secret") => {
                // Parsed without notes: nothing of a Secret is ever echoed back.
                match serde_saphyr::from_str::<kkp::SecretDoc>(&doc.text) {
                    Ok(value) => out.secrets.push(Parsed { doc, value }),
                    Err(_) => r.error(doc.source(), "Secret", "not a valid v1 Secret", "check the Secret's metadata, data and stringData"),
                }
            }
            ("v1", "ConfigMap") => match serde_saphyr::from_str::<kkp::ConfigMapDoc>(&doc.text) {
                Ok(value) => out.config_maps.push(Parsed { doc, value }),
                Err(e) => r.error(
                    doc.source(),
                    "ConfigMap",
                    format!("not a valid v1 ConfigMap: {}", yaml_message(&e)),
                    "check the ConfigMap's metadata and data",
                ),
            },
            ("", "") => r.error(
                doc.source(),
                "document",
                "has no apiVersion and kind",
                format!("add apiVersion: {KKP_API_VERSION} and kind: Seed, Cluster or KubermaticConfiguration"),
            ),
            (api, kind) => r.note(doc.source(), format!("{api} {kind} is not a topology document; it is ignored")),
        }
    }
    out
}

/// The parts of the KubermaticConfiguration clusters inherit.
struct Configuration {
    domain: String,
    expose_strategy: ExposeStrategy,
    apiserver_replicas: i32,
    etcd_disk_size: String,
    node_port_range: String,
    etcd_launcher: bool,
    key_algorithm: crate::pki::KeyAlgorithm,
    versions: Versions,
    /// `spec.caBundle`: the ConfigMap (namespace, name) holding `ca-bundle.pem`.
    ca_bundle: (String, String),
    oidc: Option<super::Oidc>,
    monitoring: super::Monitoring,
    /// `spec.seedController.backupInterval` in minutes.
    backup_interval_minutes: u64,
    /// `spec.seedController.backupCount`.
    backup_count: Option<i32>,
}

/// KKP's seed controller backs etcd up every 20 minutes unless told otherwise.
const DEFAULT_BACKUP_INTERVAL_MINUTES: u64 = 20;

/// KKP's namespace, where the KubermaticConfiguration and the ConfigMaps it names live.
const KKP_NAMESPACE: &str = "kubermatic";
/// KKP's default `spec.caBundle.name`; the PEM bundle is its key `ca-bundle.pem`.
const DEFAULT_CA_BUNDLE: &str = "ca-bundle";
const CA_BUNDLE_KEY: &str = "ca-bundle.pem";

/// KKP's default OIDC client (`spec.auth.issuerClientID`).
const DEFAULT_AUTH_CLIENT_ID: &str = "kubermaticIssuer";

/// The base domain when no KubermaticConfiguration is given.
const DEFAULT_DOMAIN: &str = "kkp.local";

impl Default for Configuration {
    fn default() -> Self {
        Configuration {
            domain: DEFAULT_DOMAIN.into(),
            expose_strategy: ExposeStrategy::NodePort,
            apiserver_replicas: DEFAULT_APISERVER_REPLICAS,
            etcd_disk_size: DEFAULT_ETCD_DISK_SIZE.into(),
            node_port_range: DEFAULT_NODE_PORT_RANGE.into(),
            etcd_launcher: true,
            key_algorithm: crate::pki::KeyAlgorithm::Rsa2048,
            versions: Versions::default(),
            ca_bundle: (KKP_NAMESPACE.into(), DEFAULT_CA_BUNDLE.into()),
            oidc: None,
            monitoring: super::Monitoring::default(),
            backup_interval_minutes: DEFAULT_BACKUP_INTERVAL_MINUTES,
            backup_count: None,
        }
    }
}

/// The KubermaticConfiguration annotation choosing the main PKI's key algorithm.
const KEY_ALGORITHM_ANNOTATION: &str = "kkp.k8c.io/key-algorithm";

fn resolve_configuration(r: &mut Resolver, c: &Collected, docs: &[Document]) -> Configuration {
    let where_ = || docs.first().map(Document::source).unwrap_or(Source { file: PathBuf::from("<input>"), line: 1 });
    let config = match c.configurations.as_slice() {
        [one] => one,
        [] => {
            // Seeds and clusters are often kept apart from the configuration; plan them with
            // KKP's defaults, and say which domain certificates will name.
            r.note(
                where_(),
                format!("no KubermaticConfiguration among the documents: KKP's defaults apply, with base domain {DEFAULT_DOMAIN}; add one with spec.ingress.domain to name yours"),
            );
            return Configuration::default();
        }
        [first, rest @ ..] => {
            for other in rest {
                r.error(
                    other.doc.source(),
                    format!("KubermaticConfiguration {:?}", other.value.metadata.name),
                    format!("a second KubermaticConfiguration (the first is at {})", first.doc.source()),
                    "keep exactly one KubermaticConfiguration",
                );
            }
            first
        }
    };
    let subject = format!("KubermaticConfiguration {:?}", config.value.metadata.name);
    let spec = &config.value.spec;
    let domain = spec.ingress.as_ref().and_then(|i| i.domain.clone()).unwrap_or_default();
    if domain.is_empty() {
        r.error(
            config.doc.locate(&["spec", "ingress"]),
            &subject,
            "spec.ingress.domain is not set",
            "set spec.ingress.domain to the base domain, e.g. kkp.example.com",
        );
    } else if !is_dns1123_subdomain(&domain) {
        r.error(
            config.doc.locate(&["spec", "ingress", "domain"]),
            &subject,
            format!("spec.ingress.domain {domain:?} is not a DNS name"),
            "use lowercase letters, digits, '-' and '.', e.g. kkp.example.com",
        );
    }
    let expose_strategy = match spec.expose_strategy.as_deref() {
        None | Some("") => ExposeStrategy::NodePort,
        Some(s) => expose_strategy(r, config.doc, &["spec", "exposeStrategy"], &subject, s),
    };
    let user_cluster = spec.user_cluster.as_ref();
    let apiserver_replicas = user_cluster.and_then(|u| u.apiserver_replicas).unwrap_or(DEFAULT_APISERVER_REPLICAS);
    let etcd_disk_size = user_cluster.and_then(|u| u.etcd_volume_size.clone()).unwrap_or_else(|| DEFAULT_ETCD_DISK_SIZE.into());
    let node_port_range = user_cluster.and_then(|u| u.node_port_range.clone()).unwrap_or_else(|| DEFAULT_NODE_PORT_RANGE.into());
    let etcd_launcher = spec.feature_gates.get("EtcdLauncher").copied().unwrap_or(true);
    for (gate, message) in features::feature_gate_notes(&spec.feature_gates) {
        r.note(config.doc.locate(&["spec", "featureGates", &gate]), format!("{subject}: {message}"));
    }
    let key_algorithm = match config.value.metadata.annotations.get(KEY_ALGORITHM_ANNOTATION).map(String::as_str) {
        None | Some("RSA-2048") => crate::pki::KeyAlgorithm::Rsa2048,
        Some("ECDSA-P256") => crate::pki::KeyAlgorithm::EcdsaP256,
        Some(other) => {
            r.error(
                config.doc.locate(&["metadata", "annotations"]),
                &subject,
                format!("annotation {KEY_ALGORITHM_ANNOTATION} is {other:?}"),
                "use RSA-2048 (KKP's default) or ECDSA-P256",
            );
            crate::pki::KeyAlgorithm::Rsa2048
        }
    };
    // KKP's seed controller enables OIDC authentication with its OpenIDAuthPlugin feature gate
    // (off by default); the issuer and client default as KKP's configuration defaulting does.
    let oidc = spec.feature_gates.get("OpenIDAuthPlugin").copied().unwrap_or(false).then(|| {
        let auth = spec.auth.as_ref();
        super::Oidc {
            issuer_url: auth.and_then(|a| a.token_issuer.clone()).unwrap_or_else(|| format!("https://{domain}/dex")),
            client_id: auth.and_then(|a| a.issuer_client_id.clone()).unwrap_or_else(|| DEFAULT_AUTH_CLIENT_ID.into()),
        }
    });
    let versions = resolve_versions(r, config.doc, &subject, spec.versions.as_ref());
    let ca_bundle = (
        config.value.metadata.namespace.clone().filter(|n| !n.is_empty()).unwrap_or_else(|| KKP_NAMESPACE.into()),
        spec.ca_bundle.as_ref().map(|b| b.name.clone()).filter(|n| !n.is_empty()).unwrap_or_else(|| DEFAULT_CA_BUNDLE.into()),
    );
    let monitoring = resolve_monitoring(r, config.doc, &subject, user_cluster.and_then(|u| u.monitoring.as_ref()));
    let seed_controller = spec.seed_controller.as_ref();
    let backup_interval_minutes = seed_controller
        .and_then(|c| c.backup_interval.as_deref())
        .and_then(|i| backup_minutes(r, config.doc, &["spec", "seedController", "backupInterval"], &subject, i))
        .unwrap_or(DEFAULT_BACKUP_INTERVAL_MINUTES);
    let backup_count = seed_controller.and_then(|c| c.backup_count);
    Configuration {
        domain,
        expose_strategy,
        apiserver_replicas,
        etcd_disk_size,
        node_port_range,
        etcd_launcher,
        key_algorithm,
        versions,
        ca_bundle,
        oidc,
        monitoring,
        backup_interval_minutes,
        backup_count,
    }
}

/// A Go duration (`backupInterval`) as the whole minutes KKP's `@every` schedule uses; `None`
/// (after an error) when it does not parse, and for zero, which means "the default" to KKP.
fn backup_minutes(r: &mut Resolver, doc: &Document, path: &[&str], subject: &str, interval: &str) -> Option<u64> {
    const MINUTE_NS: i64 = 60_000_000_000;
    match go_parse_duration::parse_duration(interval) {
        Ok(ns) if ns > 0 => {
            // KKP rounds half away from zero; a positive interval under 30s would round to a
            // schedule cron refuses.
            let minutes = (ns + MINUTE_NS / 2) / MINUTE_NS;
            if minutes == 0 {
                r.error(doc.locate(path), subject, format!("backup interval {interval:?} rounds to 0 minutes"), "use at least 1m");
                return None;
            }
            Some(minutes as u64)
        }
        Ok(_) => None,
        Err(_) => {
            r.error(
                doc.locate(path),
                subject,
                format!("backup interval {interval:?} is not a duration"),
                "write it as Go does, e.g. 20m, 1h or 1h30m",
            );
            None
        }
    }
}

/// `spec.userCluster.monitoring` with KKP's defaults. KKP evaluates the custom scrape jobs and
/// rules as Go templates; kkp takes them as written, so it refuses template actions (`{{`)
/// rather than pass them to Prometheus unevaluated, and checks they are the YAML Prometheus
/// expects (a list of jobs; a document with `groups`).
fn resolve_monitoring(
    r: &mut Resolver,
    doc: &Document,
    subject: &str,
    monitoring: Option<&super::kkp::UserClusterMonitoring>,
) -> super::Monitoring {
    let defaults = super::Monitoring::default();
    let Some(monitoring) = monitoring else { return defaults };
    let mut custom = |key: &str, text: Option<&String>, shape_ok: fn(&serde_json::Value) -> bool, shape: &str| {
        let text = text.map(|t| t.trim()).unwrap_or_default();
        if text.is_empty() {
            return String::new();
        }
        let path = ["spec", "userCluster", "monitoring", key];
        if text.contains("{{") {
            r.error(
                doc.locate(&path),
                subject,
                format!("spec.userCluster.monitoring.{key} uses Go template actions, which kkp does not evaluate"),
                "write the values out (the apiserver is apiserver-external.cluster-<name>.svc.cluster.local.)",
            );
        } else if !serde_saphyr::from_str::<serde_json::Value>(text).is_ok_and(|v| shape_ok(&v)) {
            r.error(
                doc.locate(&path),
                subject,
                format!("spec.userCluster.monitoring.{key} is not {shape}"),
                format!("write {key} as {shape}"),
            );
        }
        text.to_string()
    };
    let custom_scraping_configs = custom(
        "customScrapingConfigs",
        monitoring.custom_scraping_configs.as_ref(),
        |v| v.as_array().is_some_and(|jobs| jobs.iter().all(|j| j.get("job_name").is_some())),
        "a YAML list of Prometheus scrape jobs (each with a job_name)",
    );
    let custom_rules = custom(
        "customRules",
        monitoring.custom_rules.as_ref(),
        |v| v.get("groups").is_some_and(serde_json::Value::is_array),
        "a YAML document with a list of rule `groups`",
    );
    super::Monitoring {
        scrape_annotation_prefix: monitoring
            .scrape_annotation_prefix
            .clone()
            .filter(|p| !p.is_empty())
            .unwrap_or(defaults.scrape_annotation_prefix),
        custom_scraping_configs,
        custom_rules,
        disable_default_rules: monitoring.disable_default_rules.unwrap_or(false),
        disable_default_scraping_configs: monitoring.disable_default_scraping_configs.unwrap_or(false),
    }
}

/// The PEM bundle of the ConfigMap `spec.caBundle` names (KKP's default `kubermatic/ca-bundle`),
/// or empty, with a note when clusters exist, if the documents hold no such ConfigMap.
fn resolve_ca_bundle(r: &mut Resolver, c: &Collected, config: &Configuration, any_cluster: bool, docs: &[Document]) -> String {
    let (namespace, name) = &config.ca_bundle;
    let is_bundle = |m: &Parsed<kkp::ConfigMapDoc>| {
        m.value.metadata.name == *name && m.value.metadata.namespace.as_deref().unwrap_or(KKP_NAMESPACE) == namespace.as_str()
    };
    for other in c.config_maps.iter().filter(|m| !is_bundle(m)) {
        let m = &other.value.metadata;
        r.note(
            other.doc.source(),
            format!(
                "ConfigMap {}/{} is not the CA bundle (KubermaticConfiguration spec.caBundle names {namespace}/{name}); it is ignored",
                m.namespace.as_deref().unwrap_or(KKP_NAMESPACE),
                m.name
            ),
        );
    }
    let found = c.config_maps.iter().find(|m| is_bundle(m));
    let Some(map) = found else {
        if any_cluster {
            let at = c.configurations.first().map(|p| p.doc.locate(&["spec", "caBundle"])).or_else(|| docs.first().map(Document::source));
            r.note(
                at.unwrap_or(Source { file: PathBuf::from("<input>"), line: 1 }),
                format!(
                    "no ConfigMap {namespace}/{name} (KubermaticConfiguration spec.caBundle) among the documents: control-plane components will trust no extra CA roots"
                ),
            );
        }
        return String::new();
    };
    let subject = format!("ConfigMap {namespace}/{name}");
    match map.value.data.get(CA_BUNDLE_KEY) {
        None => {
            r.error(
                map.doc.locate(&["data"]),
                subject,
                format!("has no key {CA_BUNDLE_KEY}, which KKP's CA bundle must hold"),
                format!("add data.{CA_BUNDLE_KEY} with the PEM-encoded CA certificates to trust"),
            );
            String::new()
        }
        Some(pem) if !is_pem_certificates(pem) => {
            r.error(
                map.doc.locate(&["data", CA_BUNDLE_KEY]),
                subject,
                format!("data.{CA_BUNDLE_KEY} holds no PEM certificate that parses"),
                "put one or more -----BEGIN CERTIFICATE----- blocks there",
            );
            String::new()
        }
        Some(pem) => pem.clone(),
    }
}

/// Whether `text` holds at least one PEM certificate and every PEM block in it is a certificate
/// that parses.
fn is_pem_certificates(text: &str) -> bool {
    let mut count = 0;
    for pem in x509_parser::pem::Pem::iter_from_buffer(text.as_bytes()) {
        match pem {
            Ok(pem) if pem.label == "CERTIFICATE" && pem.parse_x509().is_ok() => count += 1,
            _ => return false,
        }
    }
    count > 0
}

/// `spec.versions`, each part defaulted to KKP's when empty (KKP's `defaultVersioning`), then
/// checked as KKP's configuration webhook does.
fn resolve_versions(r: &mut Resolver, doc: &Document, subject: &str, given: Option<&kkp::Versioning>) -> Versions {
    let kkp_defaults = Versions::default();
    let Some(given) = given else { return kkp_defaults };
    let mut ok = true;
    let mut parse = |r: &mut Resolver, field: &str, text: &str| match versions::parse_version(text) {
        Ok(v) => Some(v),
        Err(e) => {
            ok = false;
            r.error(
                doc.locate(&["spec", "versions", field]),
                subject,
                format!("spec.versions.{field}: {text:?} is not a version ({e})"),
                "write versions as MAJOR.MINOR.PATCH, e.g. 1.34.2",
            );
            None
        }
    };
    let listed: Vec<_> = given.versions.iter().filter_map(|text| parse(r, "versions", text)).collect();
    let default = given.default.as_deref().filter(|d| !d.is_empty()).and_then(|text| parse(r, "default", text));
    let versions = Versions {
        versions: if given.versions.is_empty() { kkp_defaults.versions } else { listed },
        default: default.unwrap_or(kkp_defaults.default),
        updates: if given.updates.is_empty() {
            kkp_defaults.updates
        } else {
            given
                .updates
                .iter()
                .map(|u| versions::Update {
                    from: u.from.clone(),
                    to: u.to.clone(),
                    automatic: u.automatic.unwrap_or(false),
                    automatic_node_update: u.automatic_node_update.unwrap_or(false),
                })
                .collect()
        },
        provider_incompatibilities: if given.provider_incompatibilities.is_empty() {
            kkp_defaults.provider_incompatibilities
        } else {
            given
                .provider_incompatibilities
                .iter()
                .map(|i| versions::Incompatibility {
                    provider: i.provider.clone(),
                    version: i.version.clone(),
                    condition: i.condition.clone(),
                    operation: i.operation.clone(),
                })
                .collect()
        },
    };
    if ok {
        for (field, problem) in versions.problems() {
            let fix = match field {
                "default" if given.versions.is_empty() => {
                    "pick a default among KKP's supported versions, or list your versions in spec.versions.versions".to_string()
                }
                "default" => "list the default version in spec.versions.versions, or pick a listed one".to_string(),
                "updates" => "make every automatic rule's `to` a listed version that no other automatic rule moves on from".to_string(),
                _ => "correct spec.versions as KKP's configuration webhook requires".to_string(),
            };
            r.error(doc.locate(&["spec", "versions", field]), subject, format!("spec.versions: {problem}"), fix);
        }
    }
    versions
}

fn expose_strategy(r: &mut Resolver, doc: &Document, path: &[&str], subject: &str, value: &str) -> ExposeStrategy {
    ExposeStrategy::parse(value).unwrap_or_else(|| {
        r.error(
            doc.locate(path),
            subject,
            format!("{} {value:?} is not an expose strategy", path.join(".")),
            "use NodePort, LoadBalancer or Tunneling",
        );
        ExposeStrategy::NodePort
    })
}

/// Seeds with their datacenters, plus the component defaults each seed gives its clusters.
struct SeedSet {
    seeds: BTreeMap<String, Seed>,
    defaults: BTreeMap<String, ComponentSettings>,
}

fn resolve_seeds(r: &mut Resolver, c: &Collected, config: &Configuration) -> SeedSet {
    let mut seeds = BTreeMap::new();
    let mut defaults = BTreeMap::new();
    let mut dc_owner: BTreeMap<String, (String, Source)> = BTreeMap::new();
    for parsed in &c.seeds {
        let doc = parsed.doc;
        let name = parsed.value.metadata.name.clone();
        let subject = format!("seed {name:?}");
        if !check_name(r, doc, &subject, &name, 63) {
            continue;
        }
        if let Some(existing) = seeds.get(&name).map(|s: &Seed| s.source.clone()) {
            r.error(
                doc.locate(&["metadata", "name"]),
                &subject,
                format!("a seed of this name is already defined at {existing}"),
                "give each Seed a unique metadata.name",
            );
            continue;
        }
        let spec = &parsed.value.spec;
        let expose = match spec.expose_strategy.as_deref() {
            None | Some("") => config.expose_strategy,
            Some(s) => expose_strategy(r, doc, &["spec", "exposeStrategy"], &subject, s),
        };
        let kubeconfig = spec.kubeconfig.as_ref().filter(|k| !k.name.is_empty()).map(|k| KubeconfigRef {
            namespace: k.namespace.clone().unwrap_or_else(|| "kubermatic".into()),
            name: k.name.clone(),
            key: k.field_path.clone().filter(|f| !f.is_empty()).unwrap_or_else(|| "kubeconfig".into()),
        });
        let dns_name = spec.seed_dns_overwrite.clone().filter(|s| !s.is_empty()).unwrap_or_else(|| name.clone());
        if spec.datacenters.is_empty() {
            r.note(doc.locate(&["spec"]), format!("{subject} has no datacenters; no cluster can use it"));
        }
        let mut datacenters = BTreeMap::new();
        for (dc_name, dc) in &spec.datacenters {
            let dc_path = ["spec", "datacenters", dc_name.as_str()];
            let dc_subject = format!("datacenter {dc_name:?} of seed {name:?}");
            if !is_dns1123_label(dc_name) {
                r.error(
                    doc.locate(&dc_path),
                    &dc_subject,
                    "the datacenter name is not a DNS-1123 label",
                    "use lowercase letters, digits and '-', e.g. aws-eu-central-1",
                );
                continue;
            }
            if let Some((other, at)) = dc_owner.get(dc_name) {
                r.error(
                    doc.locate(&dc_path),
                    &dc_subject,
                    format!("datacenter names must be unique across seeds; seed {other:?} already has it ({at})"),
                    "rename one of the datacenters",
                );
                continue;
            }
            let Some(provider) = datacenter_provider(r, doc, &dc_path, &dc_subject, dc) else { continue };
            let service_type = match dc.spec.get("apiServerServiceType").and_then(|v| v.as_str()) {
                None => None,
                Some(text) => match ServiceType::parse(text) {
                    Some(t) => Some(t),
                    None => {
                        r.error(
                            doc.locate(&[&dc_path[..], &["spec", "apiServerServiceType"]].concat()),
                            &dc_subject,
                            format!("apiServerServiceType {text:?} is not a Service type"),
                            "use ClusterIP, NodePort or LoadBalancer",
                        );
                        None
                    }
                },
            };
            let source = doc.locate(&dc_path);
            dc_owner.insert(dc_name.clone(), (name.clone(), source.clone()));
            datacenters.insert(
                dc_name.clone(),
                Datacenter {
                    name: dc_name.clone(),
                    seed: name.clone(),
                    provider_settings: dc.spec.get(&provider).cloned().unwrap_or(serde_json::Value::Null),
                    provider,
                    country: dc.country.clone(),
                    location: dc.location.clone(),
                    apiserver_service_type: service_type,
                    source,
                },
            );
        }
        defaults.insert(name.clone(), spec.default_component_settings.clone().unwrap_or_default());
        seeds.insert(
            name.clone(),
            Seed {
                name,
                country: spec.country.clone(),
                location: spec.location.clone(),
                expose_strategy: expose,
                dns_name,
                datacenters,
                kubeconfig,
                proxy: spec.proxy_settings.as_ref().map(|p| Proxy { http_proxy: p.http_proxy.clone(), no_proxy: p.no_proxy.clone() }),
                etcd_backups: spec.etcd_backup_restore.as_ref().and_then(|b| etcd_backups(r, doc, &subject, config, b)),
                source: doc.source(),
            },
        );
    }
    SeedSet { seeds, defaults }
}

/// A seed's default etcd backups (KKP's `IsDefaultEtcdAutomaticBackupEnabled`): a default
/// destination, which must be one of its destinations (KKP's seed webhook also wants at least
/// one destination); interval and count from the seed, else the configuration.
fn etcd_backups(
    r: &mut Resolver,
    doc: &Document,
    subject: &str,
    config: &Configuration,
    settings: &kkp::EtcdBackupRestore,
) -> Option<super::EtcdBackups> {
    if settings.destinations.is_empty() {
        r.error(
            doc.locate(&["spec", "etcdBackupRestore"]),
            subject,
            "etcdBackupRestore defines no backup destination".to_string(),
            "add one under spec.etcdBackupRestore.destinations, or remove spec.etcdBackupRestore",
        );
        return None;
    }
    let destination = settings.default_destination.clone().filter(|d| !d.is_empty())?;
    if !settings.destinations.contains_key(&destination) {
        let known: Vec<&str> = settings.destinations.keys().map(String::as_str).collect();
        r.error(
            doc.locate(&["spec", "etcdBackupRestore", "defaultDestination"]),
            subject,
            format!("etcdBackupRestore.defaultDestination {destination:?} is not among its destinations {known:?}"),
            "name one of spec.etcdBackupRestore.destinations, or add the destination",
        );
        return None;
    }
    let interval_minutes = settings
        .backup_interval
        .as_deref()
        .and_then(|i| backup_minutes(r, doc, &["spec", "etcdBackupRestore", "backupInterval"], subject, i))
        .unwrap_or(config.backup_interval_minutes);
    Some(super::EtcdBackups { destination, interval_minutes, keep: settings.backup_count.or(config.backup_count) })
}

/// The single provider block of a datacenter (KKP: exactly one), reporting unknown keys.
fn datacenter_provider(r: &mut Resolver, doc: &Document, dc_path: &[&str], subject: &str, dc: &kkp::DatacenterDoc) -> Option<String> {
    let mut providers = Vec::new();
    for (key, value) in &dc.spec {
        if kkp::PROVIDERS.contains(&key.as_str()) {
            if !value.is_null() {
                providers.push(key.clone());
            }
        } else if key != "apiServerServiceType" && schema::field_names("DatacenterSpec").contains(&key.as_str()) {
            // Keys KKP does not have were reported as errors when the Seed was read.
            let path = [dc_path, &["spec", key.as_str()]].concat();
            r.note(doc.locate(&path), format!("{subject}: field `spec.{key}` is not modelled by kkp; it is ignored"));
        }
    }
    match providers.as_slice() {
        [one] => Some(one.clone()),
        [] => {
            r.error(
                doc.locate(&[dc_path, &["spec"]].concat()),
                subject,
                "has no provider block",
                format!("add exactly one of: {}", kkp::PROVIDERS.join(", ")),
            );
            None
        }
        many => {
            r.error(
                doc.locate(&[dc_path, &["spec"]].concat()),
                subject,
                format!("has {} provider blocks ({}); KKP allows exactly one", many.len(), many.join(", ")),
                "keep one provider block per datacenter; declare another datacenter for the other provider",
            );
            None
        }
    }
}

fn resolve_clusters(r: &mut Resolver, c: &Collected, config: &Configuration, seeds: &SeedSet) -> BTreeMap<String, Cluster> {
    let datacenters: BTreeMap<&str, &Datacenter> =
        seeds.seeds.values().flat_map(|s| s.datacenters.values()).map(|dc| (dc.name.as_str(), dc)).collect();
    let mut clusters = BTreeMap::new();
    for parsed in &c.clusters {
        let doc = parsed.doc;
        let name = parsed.value.metadata.name.clone();
        let subject = format!("cluster {name:?}");
        if !check_name(r, doc, &subject, &name, MAX_CLUSTER_NAME) {
            continue;
        }
        if let Some(existing) = clusters.get(&name).map(|c: &Cluster| c.source.clone()) {
            r.error(
                doc.locate(&["metadata", "name"]),
                &subject,
                format!("a cluster of this name is already defined at {existing}"),
                "give each Cluster a unique metadata.name (cluster names are global in KKP)",
            );
            continue;
        }
        let spec = &parsed.value.spec;
        for (feature, message) in features::cluster_feature_notes(&spec.features) {
            r.note(doc.locate(&["spec", "features", &feature]), format!("{subject}: {message}"));
        }

        let version = match spec.version.as_deref() {
            None | Some("") => {
                // KKP's API and dashboard fill in the configured default for a new cluster.
                r.note(
                    doc.locate(&["spec"]),
                    format!(
                        "{subject}: spec.version is not set; the default version {} (KubermaticConfiguration spec.versions.default) is used, and changes with it",
                        config.versions.default
                    ),
                );
                Some(config.versions.default.clone())
            }
            Some(text) => match versions::parse_version(text) {
                Ok(v) => Some(v),
                Err(e) => {
                    r.error(
                        doc.locate(&["spec", "version"]),
                        &subject,
                        format!("spec.version {text:?} is not a semantic version ({e})"),
                        format!("use MAJOR.MINOR.PATCH, e.g. {}", config.versions.default),
                    );
                    None
                }
            },
        };

        let dc_name = spec.cloud.get("dc").and_then(|v| v.as_str()).unwrap_or_default();
        let datacenter = if dc_name.is_empty() {
            r.error(
                doc.locate(&["spec", "cloud"]),
                &subject,
                "spec.cloud.dc is not set",
                format!("set spec.cloud.dc to a datacenter: {}", join_keys(&datacenters)),
            );
            None
        } else if let Some(dc) = datacenters.get(dc_name) {
            Some(*dc)
        } else {
            r.error(
                doc.locate(&["spec", "cloud", "dc"]),
                &subject,
                format!("spec.cloud.dc {dc_name:?} is not a datacenter of any seed"),
                format!("use one of: {}", join_keys(&datacenters)),
            );
            None
        };
        if let Some(dc) = datacenter {
            check_cloud_provider(r, doc, &subject, spec, dc);
        }
        let version = version.filter(|v| check_version(r, doc, &subject, spec, v, datacenter, &config.versions));

        let seed_defaults = datacenter.and_then(|dc| seeds.defaults.get(&dc.seed)).cloned().unwrap_or_default();
        let overrides = spec.components_override.clone().unwrap_or_default();
        let apiserver_replicas = overrides
            .apiserver
            .as_ref()
            .and_then(|a| a.replicas)
            .or(seed_defaults.apiserver.as_ref().and_then(|a| a.replicas))
            .unwrap_or(config.apiserver_replicas);
        if apiserver_replicas < 1 {
            r.error(
                doc.locate(&["spec", "componentsOverride", "apiserver", "replicas"]),
                &subject,
                format!("apiserver replicas {apiserver_replicas} is below 1"),
                "set componentsOverride.apiserver.replicas to 1 or more",
            );
        }
        let prometheus_replicas = overrides
            .prometheus
            .as_ref()
            .and_then(|p| p.replicas)
            .or(seed_defaults.prometheus.as_ref().and_then(|p| p.replicas))
            .unwrap_or(1);
        if prometheus_replicas < 1 {
            r.error(
                doc.locate(&["spec", "componentsOverride", "prometheus", "replicas"]),
                &subject,
                format!("prometheus replicas {prometheus_replicas} is below 1"),
                "set componentsOverride.prometheus.replicas to 1 or more",
            );
        }
        let etcd_override = overrides.etcd.clone().unwrap_or_default();
        let etcd_default = seed_defaults.etcd.clone().unwrap_or_default();
        let launcher = spec.features.get("etcdLauncher").copied().unwrap_or(config.etcd_launcher);
        let requested_size = etcd_override.cluster_size.or(etcd_default.cluster_size).unwrap_or(DEFAULT_ETCD_CLUSTER_SIZE);
        if !(MIN_ETCD_CLUSTER_SIZE..=MAX_ETCD_CLUSTER_SIZE).contains(&requested_size) {
            r.error(
                doc.locate(&["spec", "componentsOverride", "etcd", "clusterSize"]),
                &subject,
                format!("etcd clusterSize {requested_size} is outside KKP's bounds {MIN_ETCD_CLUSTER_SIZE}..{MAX_ETCD_CLUSTER_SIZE}"),
                format!("set componentsOverride.etcd.clusterSize between {MIN_ETCD_CLUSTER_SIZE} and {MAX_ETCD_CLUSTER_SIZE} (an odd number keeps quorum cheapest)"),
            );
        }
        let quota_backend_gb = etcd_override.quota_backend_gb.or(etcd_default.quota_backend_gb).unwrap_or(0);
        if quota_backend_gb < 0 {
            r.error(
                doc.locate(&["spec", "componentsOverride", "etcd", "quotaBackendGb"]),
                &subject,
                format!("etcd quotaBackendGb {quota_backend_gb} is negative"),
                "set componentsOverride.etcd.quotaBackendGb to the backend size in GiB, or 0 for etcd's default".to_string(),
            );
        }
        // Without etcd-launcher KKP always runs three members.
        let cluster_size = if launcher { requested_size } else { DEFAULT_ETCD_CLUSTER_SIZE };
        let disk_size = etcd_override.disk_size.or(etcd_default.disk_size).unwrap_or_else(|| config.etcd_disk_size.clone());
        if !is_quantity(&disk_size) {
            r.error(
                doc.locate(&["spec", "componentsOverride", "etcd", "diskSize"]),
                &subject,
                format!("etcd diskSize {disk_size:?} is not a Kubernetes quantity"),
                "use a size such as 5Gi or 20Gi",
            );
        }
        let storage_class = etcd_override.storage_class.or(etcd_default.storage_class).unwrap_or_else(|| DEFAULT_ETCD_STORAGE_CLASS.into());

        let seed = datacenter.and_then(|dc| seeds.seeds.get(&dc.seed));
        let expose = match spec.expose_strategy.as_deref() {
            None | Some("") => seed.map(|s| s.expose_strategy).unwrap_or(config.expose_strategy),
            Some(s) => expose_strategy(r, doc, &["spec", "exposeStrategy"], &subject, s),
        };
        let network = resolve_network(r, doc, &subject, spec, datacenter, version.as_ref(), expose);

        let (Some(version), Some(dc), Some(seed), Some(network)) = (version, datacenter, seed, network) else {
            continue;
        };
        let tunnel = match spec.cluster_network.as_ref().and_then(|n| n.konnectivity_enabled) {
            Some(false) => Tunnel::OpenVpn,
            _ => Tunnel::Konnectivity,
        };
        note_inline_credentials(r, doc, &subject, &dc.provider, spec.cloud.get(&dc.provider));
        let credentials = spec
            .cloud
            .get(&dc.provider)
            .and_then(|block| block.get("credentialsReference"))
            .and_then(|reference| Some((reference.get("namespace")?.as_str()?, reference.get("name")?.as_str()?)))
            .map(|(namespace, name)| SecretRef { namespace: namespace.into(), name: name.into() });
        let cloud = Cloud {
            cluster_settings: spec.cloud.get(&dc.provider).cloned().unwrap_or(serde_json::Value::Null),
            datacenter_settings: dc.provider_settings.clone(),
            credentials,
        };
        let cni = spec.cni_plugin.as_ref();
        let cni = Cni {
            plugin: cni.and_then(|c| c.plugin.clone()).unwrap_or_else(|| if dc.provider == "edge" { "canal" } else { "cilium" }.into()),
            version: cni.and_then(|c| c.version.clone()),
        };
        let apiserver_service_type = dc.apiserver_service_type.unwrap_or(match expose {
            ExposeStrategy::NodePort | ExposeStrategy::LoadBalancer => ServiceType::NodePort,
            ExposeStrategy::Tunneling => ServiceType::ClusterIP,
        });
        clusters.insert(
            name.clone(),
            Cluster {
                external_name: format!("{name}.{}.{}", seed.dns_name, config.domain),
                name,
                human_readable_name: spec.human_readable_name.clone(),
                seed: dc.seed.clone(),
                datacenter: dc.name.clone(),
                provider: dc.provider.clone(),
                version,
                expose_strategy: expose,
                apiserver_service_type,
                network,
                etcd: Etcd { cluster_size, storage_class, disk_size, launcher, quota_backend_gb },
                apiserver_replicas,
                prometheus_replicas,
                node_port_range: config.node_port_range.clone(),
                key_algorithm: config.key_algorithm,
                tunnel,
                paused: spec.pause.unwrap_or(false),
                cloud,
                cni,
                features: spec.features.clone(),
                kubernetes_dashboard: spec.kubernetes_dashboard.as_ref().and_then(|d| d.enabled).unwrap_or(true),
                seed_proxy: seed.proxy.clone(),
                ca_bundle: String::new(),
                pause_reason: spec.pause_reason.clone().filter(|r| !r.is_empty()),
                oidc: config.oidc.clone(),
                source: doc.source(),
                project_id: parsed.value.metadata.labels.get("project-id").cloned(),
                monitoring: config.monitoring.clone(),
                etcd_backups: seed.etcd_backups.clone(),
                labels: parsed.value.metadata.labels.clone(),
            },
        );
    }
    clusters
}

/// KKP's rule for a cluster's version (`ValidateVersion` for a new cluster): listed, not moved
/// on by an automatic update rule, and not incompatible with the provider.
fn check_version(
    r: &mut Resolver,
    doc: &Document,
    subject: &str,
    spec: &kkp::ClusterSpec,
    version: &semver::Version,
    dc: Option<&Datacenter>,
    versions: &Versions,
) -> bool {
    let at = || doc.locate(&["spec", "version"]);
    if !versions.is_listed(version) {
        r.error(
            at(),
            subject,
            format!("spec.version {version} is not a supported Kubernetes version (supported: {})", versions.list()),
            format!(
                "set spec.version to a supported version (the default is {}), or list {version} in KubermaticConfiguration spec.versions.versions",
                versions.default
            ),
        );
        return false;
    }
    match versions.automatic_update(version) {
        Ok(None) => {}
        Ok(Some(to)) => {
            r.error(
                at(),
                subject,
                format!("spec.version {version} is moved on to {to} by an automatic update rule (spec.versions.updates), so KKP does not accept it"),
                format!("set spec.version: {to}"),
            );
            return false;
        }
        Err(e) => {
            r.error(
                at(),
                subject,
                format!("spec.version {version}: {e}"),
                "keep one automatic update rule per version in spec.versions.updates",
            );
            return false;
        }
    }
    if let Some(dc) = dc {
        // KKP enables the external cloud-controller-manager on new clusters unless it is turned off.
        let external_ccm = spec.features.get("externalCloudProvider").copied().unwrap_or(true);
        if let Some(i) = versions.incompatibility(&dc.provider, external_ccm, version, "CREATE") {
            r.error(
                at(),
                subject,
                format!(
                    "spec.version {version} is incompatible with {} (spec.versions.providerIncompatibilities: {} {})",
                    dc.provider, i.version, i.condition
                ),
                "pick a version outside the incompatible range",
            );
            return false;
        }
    }
    true
}

/// A provider block's fields that hold credentials (KKP's `GetCredentials` reads them before the
/// credentials Secret; its credentials controller moves them into that Secret).
fn inline_credential_fields(provider: &str) -> &'static [&'static str] {
    match provider {
        "aws" => &["accessKeyID", "secretAccessKey"],
        "azure" => &["tenantID", "subscriptionID", "clientID", "clientSecret"],
        "digitalocean" | "hetzner" | "anexia" => &["token"],
        "gcp" => &["serviceAccount"],
        "openstack" => {
            &["username", "password", "project", "projectID", "domain", "applicationCredentialID", "applicationCredentialSecret", "token"]
        }
        "kubevirt" => &["kubeconfig", "csiKubeconfig"],
        "vsphere" => &["username", "password", "infraManagementUser"],
        "alibaba" => &["accessKeyID", "accessKeySecret"],
        "nutanix" => &["username", "password"],
        "vmwareclouddirector" => &["username", "password", "apiToken", "organization", "vdc"],
        _ => &[],
    }
}

/// Credentials written into the Cluster are not used: kkp reads them only from the
/// `credentialsReference` Secret, so they never reach a plan. Each one set is a note (naming
/// the field, never its value).
fn note_inline_credentials(r: &mut Resolver, doc: &Document, subject: &str, provider: &str, block: Option<&serde_json::Value>) {
    let Some(block) = block else { return };
    for field in inline_credential_fields(provider) {
        let set = match block.get(*field) {
            Some(serde_json::Value::String(s)) => !s.is_empty(),
            Some(serde_json::Value::Null) | None => false,
            Some(serde_json::Value::Object(o)) => o.values().any(|v| v.as_str().is_some_and(|s| !s.is_empty())),
            Some(_) => true,
        };
        if set {
            r.note(
                doc.locate(&["spec", "cloud", provider, field]),
                format!(
                    "{subject}: spec.cloud.{provider}.{field} is not used: kkp reads cloud credentials only from the credentialsReference \
                     Secret (KKP moves them there too); move the value into that Secret under KKP's key"
                ),
            );
        }
    }
}

/// `spec.cloud.providerName` and the provider block, when given, must match the datacenter.
fn check_cloud_provider(r: &mut Resolver, doc: &Document, subject: &str, spec: &kkp::ClusterSpec, dc: &Datacenter) {
    if let Some(named) = spec.cloud.get("providerName").and_then(|v| v.as_str())
        && named != dc.provider
    {
        r.error(
            doc.locate(&["spec", "cloud", "providerName"]),
            subject,
            format!("spec.cloud.providerName {named:?} does not match datacenter {:?}, which is {}", dc.name, dc.provider),
            format!("set providerName to {} or pick a {named} datacenter", dc.provider),
        );
    }
    for key in spec.cloud.keys() {
        if key == "dc" || key == "providerName" {
            continue;
        }
        if kkp::PROVIDERS.contains(&key.as_str()) && key != &dc.provider {
            r.error(
                doc.locate(&["spec", "cloud", key]),
                subject,
                format!("spec.cloud.{key} is set, but datacenter {:?} is {}", dc.name, dc.provider),
                format!("use a spec.cloud.{} block, or pick a {key} datacenter", dc.provider),
            );
        }
    }
}

fn resolve_network(
    r: &mut Resolver,
    doc: &Document,
    subject: &str,
    spec: &kkp::ClusterSpec,
    dc: Option<&Datacenter>,
    version: Option<&semver::Version>,
    expose: ExposeStrategy,
) -> Option<Network> {
    let given = spec.cluster_network.as_ref();
    let kubevirt = dc.is_some_and(|d| d.provider == "kubevirt");
    let mut ok = true;
    let mut cidrs = |field: &str, given: Option<&kkp::NetworkRanges>, default: &str| -> Vec<ipnet::IpNet> {
        let blocks: Vec<String> = match given {
            Some(g) if !g.cidr_blocks.is_empty() => g.cidr_blocks.clone(),
            _ => vec![default.to_string()],
        };
        let mut nets = Vec::new();
        for block in blocks {
            match block.parse::<ipnet::IpNet>() {
                Ok(net) => nets.push(net),
                Err(_) => {
                    ok = false;
                    r.error(
                        doc.locate(&["spec", "clusterNetwork", field, "cidrBlocks"]),
                        subject,
                        format!("clusterNetwork.{field}.cidrBlocks entry {block:?} is not a CIDR"),
                        "write it as address/prefix, e.g. 10.240.16.0/20",
                    );
                }
            }
        }
        nets
    };
    let pods = cidrs("pods", given.and_then(|g| g.pods.as_ref()), if kubevirt { "172.26.0.0/16" } else { "172.25.0.0/16" });
    let services = cidrs("services", given.and_then(|g| g.services.as_ref()), if kubevirt { "10.241.0.0/20" } else { "10.240.16.0/20" });
    let proxy_mode = given.and_then(|g| g.proxy_mode.clone()).unwrap_or_else(|| {
        if dc.is_some_and(|d| d.provider == "hetzner") {
            "iptables".into()
        } else if version.is_some_and(|v| (v.major, v.minor) >= (1, 35)) {
            "nftables".into()
        } else {
            "ipvs".into()
        }
    });
    if !matches!(proxy_mode.as_str(), "ipvs" | "iptables" | "nftables" | "ebpf") {
        ok = false;
        r.error(
            doc.locate(&["spec", "clusterNetwork", "proxyMode"]),
            subject,
            format!("proxyMode {proxy_mode:?} is not supported"),
            "use ipvs, iptables, nftables or ebpf",
        );
    }
    let tunneling_agent_ip = match (expose, given.and_then(|g| g.tunneling_agent_ip.as_deref())) {
        (ExposeStrategy::Tunneling, Some(text)) => match text.parse() {
            Ok(ip) => Some(ip),
            Err(_) => {
                ok = false;
                r.error(
                    doc.locate(&["spec", "clusterNetwork", "tunnelingAgentIP"]),
                    subject,
                    format!("tunnelingAgentIP {text:?} is not an IP address"),
                    "use an address such as 100.64.30.10",
                );
                None
            }
        },
        (ExposeStrategy::Tunneling, None) => DEFAULT_TUNNELING_AGENT_IP.parse().ok(),
        _ => None,
    };
    let network = Network {
        pods,
        services,
        dns_domain: given.and_then(|g| g.dns_domain.clone()).unwrap_or_else(|| "cluster.local".into()),
        proxy_mode,
        node_cidr_mask_size_ipv4: given.and_then(|g| g.node_cidr_mask_size_ipv4).unwrap_or(24),
        node_access_network: DEFAULT_NODE_ACCESS_NETWORK.parse().expect("constant CIDR"),
        tunneling_agent_ip,
        node_local_dns_cache: given.and_then(|g| g.node_local_dns_cache_enabled).unwrap_or(true),
    };
    ok.then_some(network)
}

fn check_name(r: &mut Resolver, doc: &Document, subject: &str, name: &str, max: usize) -> bool {
    if name.is_empty() {
        r.error(doc.locate(&["metadata"]), subject, "metadata.name is not set", "set metadata.name");
        return false;
    }
    if !is_dns1123_label(name) || name.len() > max {
        r.error(
            doc.locate(&["metadata", "name"]),
            subject,
            format!("metadata.name {name:?} is not a DNS-1123 label of at most {max} characters"),
            "use lowercase letters, digits and '-', starting and ending with a letter or digit",
        );
        return false;
    }
    true
}

fn join_keys<V>(map: &BTreeMap<&str, V>) -> String {
    if map.is_empty() {
        return "(no datacenters are defined; add a Seed with spec.datacenters)".into();
    }
    map.keys().copied().collect::<Vec<_>>().join(", ")
}

/// RFC 1123 label: at most 63 of `[a-z0-9-]`, starting and ending alphanumeric.
pub fn is_dns1123_label(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 63
        && s.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && !s.starts_with('-')
        && !s.ends_with('-')
}

/// RFC 1123 subdomain: dot-separated labels, at most 253 characters.
pub fn is_dns1123_subdomain(s: &str) -> bool {
    s.len() <= 253 && s.split('.').all(is_dns1123_label)
}

/// A Kubernetes quantity such as `5Gi`, `500M` or `1.5Ti`.
fn is_quantity(s: &str) -> bool {
    let digits_end = s.find(|c: char| !(c.is_ascii_digit() || c == '.')).unwrap_or(s.len());
    let (number, suffix) = s.split_at(digits_end);
    !number.is_empty()
        && number.parse::<f64>().is_ok()
        && ["", "Ki", "Mi", "Gi", "Ti", "Pi", "Ei", "k", "M", "G", "T", "P", "E"].contains(&suffix)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dns_names() {
        assert!(is_dns1123_label("aws-eu-central-1"));
        assert!(!is_dns1123_label("AWS"));
        assert!(!is_dns1123_label("-a"));
        assert!(is_dns1123_subdomain("kkp.example.com"));
        assert!(!is_dns1123_subdomain("kkp..example.com"));
    }

    const CONFIGURATION: &str = "apiVersion: kubermatic.k8c.io/v1\nkind: KubermaticConfiguration\nmetadata:\n  name: kubermatic\n  namespace: kubermatic\nspec:\n  ingress:\n    domain: kkp.example.com\n";
    const SEED: &str = "---\napiVersion: kubermatic.k8c.io/v1\nkind: Seed\nmetadata:\n  name: europe\nspec:\n  datacenters:\n    hetzner-hel1:\n      spec:\n        hetzner:\n          datacenter: hel1-dc2\n";

    fn load(text: &str) -> Result<Topology> {
        super::super::load_str(Path::new("t.yaml"), text)
    }

    fn cluster(spec: &str) -> String {
        format!(
            "---\napiVersion: kubermatic.k8c.io/v1\nkind: Cluster\nmetadata:\n  name: abc\nspec:\n  cloud:\n    dc: hetzner-hel1\n{spec}"
        )
    }

    #[test]
    fn inline_credentials_are_noted_by_field_and_never_echoed() {
        let spec = "    hetzner:\n      token: inline-token-value\n      network: default\n      credentialsReference:\n        name: c\n        namespace: kubermatic\n  version: 1.34.2\n";
        let topology = load(&(CONFIGURATION.to_string() + SEED + &cluster(spec))).unwrap();
        let notes: Vec<String> = topology.notes.iter().map(ToString::to_string).collect();
        let noted: Vec<&String> = notes.iter().filter(|n| n.contains("spec.cloud.hetzner.token is not used")).collect();
        assert_eq!(noted.len(), 1, "{notes:?}");
        assert!(noted[0].starts_with("t.yaml:") && noted[0].contains("credentialsReference"), "{}", noted[0]);
        assert!(!notes.iter().any(|n| n.contains("inline-token-value")));
        assert!(!notes.iter().any(|n| n.contains("hetzner.network")), "other fields are not credentials");
    }

    #[test]
    fn a_cluster_without_a_version_gets_the_configured_default() {
        let text = CONFIGURATION.replace("spec:\n", "spec:\n  versions:\n    default: 1.34.2\n") + SEED + &cluster("");
        let topology = load(&text).unwrap();
        assert_eq!(topology.clusters["abc"].version.to_string(), "1.34.2");
        assert!(
            topology.notes.iter().any(|n| n.message.contains("spec.version is not set; the default version 1.34.2")),
            "{:?}",
            topology.notes
        );
        // Without spec.versions, KKP's default.
        let topology = load(&(CONFIGURATION.to_string() + SEED + &cluster(""))).unwrap();
        assert_eq!(topology.clusters["abc"].version.to_string(), "1.35.8");
    }

    #[test]
    fn configured_versions_replace_kkps_part_by_part() {
        let versions = "spec:\n  versions:\n    versions: [v1.30.1, 1.30.2]\n    default: 1.30.2\n";
        let text = CONFIGURATION.replace("spec:\n", versions) + SEED + &cluster("  version: 1.30.1\n");
        let topology = load(&text).unwrap();
        assert_eq!(topology.versions.versions.len(), 2);
        // Updates were not given: KKP's, which have no rule for 1.30.
        assert_eq!(topology.versions.updates, Versions::default_updates());
        assert!(topology.upgrade_allowed(&"1.30.1".parse().unwrap(), &"1.30.2".parse().unwrap()).is_err());
        let err = load(&(CONFIGURATION.replace("spec:\n", versions) + SEED + &cluster("  version: 1.34.2\n"))).unwrap_err().to_string();
        assert!(err.contains("spec.version 1.34.2 is not a supported Kubernetes version (supported: 1.30.{1,2})"), "{err}");
    }

    #[test]
    fn monitoring_settings_reach_clusters_with_kkps_defaults() {
        let base = CONFIGURATION.to_string() + SEED + &cluster("  version: 1.34.2\n");
        assert_eq!(load(&base).unwrap().clusters["abc"].monitoring, crate::topology::Monitoring::default());
        let monitoring = "spec:\n  userCluster:\n    monitoring:\n      scrapeAnnotationPrefix: metrics.example.com\n      \
                          disableDefaultRules: true\n      customScrapingConfigs: |\n        - job_name: extra\n          \
                          static_configs: [{targets: ['a:1']}]\n";
        let text = CONFIGURATION.replace("spec:\n", monitoring) + SEED + &cluster("  version: 1.34.2\n");
        let m = load(&text).unwrap().clusters["abc"].monitoring.clone();
        assert_eq!(m.scrape_annotation_prefix, "metrics.example.com");
        assert!(m.disable_default_rules && !m.disable_default_scraping_configs);
        assert!(m.custom_scraping_configs.starts_with("- job_name: extra"));
    }

    #[test]
    fn custom_monitoring_must_be_plain_prometheus_yaml() {
        let with = |key: &str, value: &str| {
            let spec = format!("spec:\n  userCluster:\n    monitoring:\n      {key}: {value:?}\n");
            load(&(CONFIGURATION.replace("spec:\n", &spec) + SEED + &cluster("  version: 1.34.2\n"))).map(|_| ()).unwrap_err().to_string()
        };
        let err = with("customScrapingConfigs", "- job_name: x\n  static_configs: [{targets: ['{{ .APIServerHost }}']}]");
        assert!(err.contains("uses Go template actions, which kkp does not evaluate"), "{err}");
        let err = with("customScrapingConfigs", "job_name: x");
        assert!(err.contains("is not a YAML list of Prometheus scrape jobs"), "{err}");
        let err = with("customRules", "- alert: x");
        assert!(err.contains("customRules is not a YAML document with a list of rule `groups`"), "{err}");
    }

    #[test]
    fn a_seeds_default_backup_destination_backs_up_every_cluster() {
        let backups = "spec:\n  etcdBackupRestore:\n    destinations:\n      s3: {bucketName: backups}\n    defaultDestination: s3\n";
        let with_seed = |seed_spec: &str, config_spec: &str| {
            load(
                &(CONFIGURATION.replacen("spec:\n", config_spec, 1)
                    + &SEED.replacen("spec:\n", seed_spec, 1)
                    + &cluster("  version: 1.34.2\n")),
            )
        };
        assert_eq!(with_seed("spec:\n", "spec:\n").unwrap().clusters["abc"].etcd_backups, None);
        let c = with_seed(backups, "spec:\n").unwrap().clusters["abc"].etcd_backups.clone().unwrap();
        assert_eq!((c.destination.as_str(), c.interval_minutes, c.keep), ("s3", 20, None));
        // The configuration's defaults, then the seed's own settings, each rounded to minutes.
        let config = "spec:\n  seedController:\n    backupInterval: 1h30m\n    backupCount: 7\n";
        let c = with_seed(backups, config).unwrap().clusters["abc"].etcd_backups.clone().unwrap();
        assert_eq!((c.interval_minutes, c.keep), (90, Some(7)));
        let seed = backups.to_string() + "    backupInterval: 44m50s\n    backupCount: 3\n";
        let c = with_seed(&seed, config).unwrap().clusters["abc"].etcd_backups.clone().unwrap();
        assert_eq!((c.interval_minutes, c.keep), (45, Some(3)));
        let err = with_seed(&backups.replace("defaultDestination: s3", "defaultDestination: gcs"), "spec:\n").unwrap_err().to_string();
        assert!(err.contains("etcdBackupRestore.defaultDestination \"gcs\" is not among its destinations [\"s3\"]"), "{err}");
        let err = with_seed(&(backups.to_string() + "    backupInterval: often\n"), "spec:\n").unwrap_err().to_string();
        assert!(err.contains("backup interval \"often\" is not a duration"), "{err}");
    }

    #[test]
    fn paused_clusters_keep_their_reason() {
        let text = CONFIGURATION.to_string() + SEED + &cluster("  version: 1.34.2\n  pause: true\n  pauseReason: migrating storage\n");
        let c = &load(&text).unwrap().clusters["abc"];
        assert!(c.paused);
        assert_eq!(c.pause_reason.as_deref(), Some("migrating storage"));
    }

    fn config_map(namespace: &str, name: &str, data: &str) -> String {
        format!("---\napiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: {name}\n  namespace: {namespace}\ndata:\n{data}")
    }

    fn certificate_pem() -> String {
        rcgen::generate_simple_self_signed(vec!["ca.example.com".into()]).unwrap().cert.pem()
    }

    fn indented(pem: &str) -> String {
        pem.lines().map(|l| format!("    {l}\n")).collect()
    }

    #[test]
    fn the_ca_bundle_comes_from_the_config_map_the_configuration_names() {
        let pem = certificate_pem();
        let base = CONFIGURATION.to_string() + SEED + &cluster("  version: 1.34.2\n");
        let text = base.clone() + &config_map("kubermatic", "ca-bundle", &format!("  ca-bundle.pem: |\n{}", indented(&pem)));
        let topology = load(&text).unwrap();
        assert_eq!(topology.clusters["abc"].ca_bundle, pem);
        assert!(!topology.notes.iter().any(|n| n.message.contains("ca-bundle")), "{:?}", topology.notes);

        // spec.caBundle names another ConfigMap; the default one is then not it.
        let named = CONFIGURATION.replace("spec:\n", "spec:\n  caBundle:\n    name: corporate-roots\n    kind: ConfigMap\n")
            + SEED
            + &cluster("  version: 1.34.2\n");
        let topology =
            load(&(named.clone() + &config_map("kubermatic", "ca-bundle", &format!("  ca-bundle.pem: |\n{}", indented(&pem))))).unwrap();
        assert_eq!(topology.clusters["abc"].ca_bundle, "");
        assert!(topology.notes.iter().any(|n| n.message.contains("no ConfigMap kubermatic/corporate-roots")), "{:?}", topology.notes);
        let ignored =
            "ConfigMap kubermatic/ca-bundle is not the CA bundle (KubermaticConfiguration spec.caBundle names kubermatic/corporate-roots)";
        assert!(topology.notes.iter().any(|n| n.message.starts_with(ignored)), "{:?}", topology.notes);
        let topology =
            load(&(named + &config_map("kubermatic", "corporate-roots", &format!("  ca-bundle.pem: |\n{}", indented(&pem))))).unwrap();
        assert_eq!(topology.clusters["abc"].ca_bundle, pem);
    }

    #[test]
    fn without_a_ca_bundle_components_trust_no_extra_roots() {
        let topology = load(&(CONFIGURATION.to_string() + SEED + &cluster("  version: 1.34.2\n"))).unwrap();
        assert_eq!(topology.clusters["abc"].ca_bundle, "");
        let notes: Vec<_> = topology.notes.iter().filter(|n| n.message.contains("trust no extra CA roots")).collect();
        assert_eq!(notes.len(), 1, "{:?}", topology.notes);
    }

    #[test]
    fn a_ca_bundle_without_certificates_is_an_error() {
        let base = CONFIGURATION.to_string() + SEED + &cluster("  version: 1.34.2\n");
        let err = load(&(base.clone() + &config_map("kubermatic", "ca-bundle", "  bundle.pem: x\n"))).unwrap_err().to_string();
        assert!(err.contains("ConfigMap kubermatic/ca-bundle: has no key ca-bundle.pem"), "{err}");
        let err = load(&(base + &config_map("kubermatic", "ca-bundle", "  ca-bundle.pem: not a certificate\n"))).unwrap_err().to_string();
        assert!(err.contains("holds no PEM certificate that parses"), "{err}");
    }

    #[test]
    fn quantities() {
        assert!(is_quantity("5Gi"));
        assert!(is_quantity("1.5Ti"));
        assert!(!is_quantity("five"));
        assert!(!is_quantity("5GB"));
    }
}
