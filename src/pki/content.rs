//! Secret content made at apply around or instead of a certificate ([`Content`]): kubeconfigs,
//! static token users, copied credentials, what is made from them (cloud configs). Used only by
//! apply; tokens come from the OS's random source and, like keys, never leave the Secret data
//! this module returns.

use super::issue::{Authority, Error, Issued, KeyMaterial, inspect, issue};
use super::request::{CertRequest, Content, TokenUser};
use base64::Engine;
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::fmt;

/// The Secret data key of every kubeconfig.
pub const KUBECONFIG_KEY: &str = "kubeconfig";
/// The Secret data key of the apiserver's token file.
pub const TOKENS_KEY: &str = "tokens.csv";
/// The Secret data key of the viewer token.
pub const VIEWER_TOKEN_KEY: &str = "viewerToken";
/// The user name every kubeconfig authenticates as (KKP's `default` AuthInfo).
const KUBECONFIG_USER: &str = "default";
/// Characters of Kubernetes' random strings (no vowels, no look-alikes).
const TOKEN_ALPHABET: &[u8] = b"bcdfghjklmnpqrstvwxz2456789";

/// The admin and viewer tokens of a cluster. `Debug` never shows them.
#[derive(Clone, PartialEq, Eq)]
pub struct Tokens {
    admin: String,
    viewer: String,
}

impl fmt::Debug for Tokens {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Tokens { .. }")
    }
}

impl Tokens {
    /// Fresh random tokens in Kubernetes' `xxxxxx.yyyyyyyyyyyyyyyy` form.
    pub fn generate() -> Result<Tokens, Error> {
        Ok(Tokens { admin: random_token()?, viewer: random_token()? })
    }

    /// The token of `user`.
    pub fn of(&self, user: TokenUser) -> &str {
        match user {
            TokenUser::Admin => &self.admin,
            TokenUser::Viewer => &self.viewer,
        }
    }

    /// KKP's `tokens.csv`: token, user, uid, group.
    pub fn csv(&self) -> Vec<u8> {
        format!("{},admin,10000,system:masters\n{},viewer,10001,viewers\n", self.admin, self.viewer).into_bytes()
    }

    /// Reads a `tokens.csv`; None unless it names both users with non-empty tokens.
    pub fn parse(csv: &[u8]) -> Option<Tokens> {
        let text = std::str::from_utf8(csv).ok()?;
        let token_of = |user: &str| {
            text.lines().find_map(|line| {
                let mut fields = line.split(',');
                let token = fields.next()?.trim();
                (fields.next()?.trim() == user && !token.is_empty()).then(|| token.to_string())
            })
        };
        Some(Tokens { admin: token_of("admin")?, viewer: token_of("viewer")? })
    }
}

fn random_token() -> Result<String, Error> {
    let part = |len: usize| -> Result<String, Error> {
        let mut out = String::with_capacity(len);
        while out.len() < len {
            let mut bytes = [0u8; 32];
            aws_lc_rs::rand::fill(&mut bytes).map_err(|_| Error::Random)?;
            // Rejection sampling keeps every character equally likely.
            let limit = 256 - 256 % TOKEN_ALPHABET.len();
            out.extend(
                bytes
                    .iter()
                    .filter(|b| usize::from(**b) < limit)
                    .map(|b| char::from(TOKEN_ALPHABET[usize::from(*b) % TOKEN_ALPHABET.len()])),
            );
        }
        out.truncate(len);
        Ok(out)
    };
    Ok(format!("{}.{}", part(6)?, part(16)?))
}

/// How a kubeconfig authenticates.
pub enum Credential<'a> {
    /// A client certificate and key (PEM).
    Certificate(&'a KeyMaterial),
    /// A bearer token.
    Token(&'a str),
}

/// A kubeconfig as client-go's `clientcmd.Write` lays it out: one cluster and context named
/// `cluster`, one user `default`, the CA and client material embedded.
pub fn kubeconfig(server: &str, cluster: &str, ca_pem: &str, credential: Credential<'_>) -> Vec<u8> {
    let b64 = |s: &str| base64::engine::general_purpose::STANDARD.encode(s);
    let user = match credential {
        Credential::Certificate(m) => json!({"client-certificate-data": b64(&m.cert_pem), "client-key-data": b64(&m.key_pem)}),
        Credential::Token(token) => json!({"token": token}),
    };
    let config = json!({
        "apiVersion": "v1",
        "clusters": [{"cluster": {"certificate-authority-data": b64(ca_pem), "server": server}, "name": cluster}],
        "contexts": [{"context": {"cluster": cluster, "user": KUBECONFIG_USER}, "name": cluster}],
        "current-context": cluster,
        "kind": "Config",
        "preferences": {},
        "users": [{"name": KUBECONFIG_USER, "user": user}],
    });
    serde_saphyr::to_string(&config).expect("JSON values serialise to YAML").into_bytes()
}

/// The client certificate and key of a kubeconfig, if it reaches `server` as `cluster` trusting
/// `ca_pem` (KKP's `IsValidKubeconfig` compares everything but the user the same way).
fn client_material(bytes: &[u8], server: &str, cluster: &str, ca_pem: &str) -> Option<KeyMaterial> {
    let config: Value = serde_saphyr::from_str(std::str::from_utf8(bytes).ok()?).ok()?;
    let decode =
        |v: &Value| -> Option<String> { String::from_utf8(base64::engine::general_purpose::STANDARD.decode(v.as_str()?).ok()?).ok() };
    let clusters = config.get("clusters")?.as_array()?;
    let [entry] = clusters.as_slice() else { return None };
    let same_cluster = entry.get("name")?.as_str()? == cluster
        && entry.pointer("/cluster/server")?.as_str()? == server
        && decode(entry.pointer("/cluster/certificate-authority-data")?)?.trim() == ca_pem.trim()
        && config.get("current-context")?.as_str()? == cluster;
    if !same_cluster {
        return None;
    }
    let user = config.get("users")?.as_array()?.iter().find(|u| u.get("name").and_then(Value::as_str) == Some(KUBECONFIG_USER))?;
    Some(KeyMaterial {
        cert_pem: decode(user.pointer("/user/client-certificate-data")?)?,
        key_pem: decode(user.pointer("/user/client-key-data")?)?,
    })
}

/// sha256 over a Secret's data (keys and values), the fingerprint of content without a
/// certificate: it changes exactly when the content does, and reveals nothing of it.
pub fn data_fingerprint(data: &BTreeMap<String, Vec<u8>>) -> String {
    let mut bytes = Vec::new();
    for (k, v) in data {
        bytes.extend_from_slice(&(k.len() as u64).to_be_bytes());
        bytes.extend_from_slice(k.as_bytes());
        bytes.extend_from_slice(&(v.len() as u64).to_be_bytes());
        bytes.extend_from_slice(v);
    }
    crate::object::digest_bytes(&bytes)
}

fn generated(data: BTreeMap<String, Vec<u8>>, issuer: Option<&Authority>) -> Issued {
    Issued {
        fingerprint: data_fingerprint(&data),
        not_after: None,
        issuer_fingerprint: issuer.map(|ca| ca.fingerprint().to_string()),
        data,
        material: KeyMaterial { cert_pem: String::new(), key_pem: String::new() },
    }
}

/// What making [`Content`] reads besides the request: the Secret's current data (to keep what
/// is still valid) and the data of the Secret it is made from (`tokens`, the credentials).
#[derive(Default)]
pub struct Inputs<'a> {
    /// The data on the target now (None: absent, or to be replaced).
    pub existing: Option<&'a BTreeMap<String, Vec<u8>>>,
    /// The data of the Secret the content is made from.
    pub source: Option<&'a BTreeMap<String, Vec<u8>>>,
}

/// Makes (or keeps) the content `req` asks for at `now`. `req.content` must be set.
pub fn make(req: &CertRequest, issuer: Option<&Authority>, inputs: Inputs<'_>, now: i64) -> Result<Issued, Error> {
    let content = req.content.as_ref().ok_or_else(|| Error::Content("the request asks for no content".into()))?;
    let need_issuer = || issuer.ok_or_else(|| Error::MissingIssuer(req.common_name.clone()));
    let source = || inputs.source.ok_or_else(|| Error::Content("the Secret it is made from is not available".into()));
    match content {
        Content::Kubeconfig { server, cluster } => {
            let ca = need_issuer()?;
            let kept = inputs.existing.and_then(|data| {
                let material = client_material(data.get(KUBECONFIG_KEY)?, server, cluster, ca.cert_pem())?;
                let as_leaf = BTreeMap::from([
                    (req.layout.cert.clone(), material.cert_pem.into_bytes()),
                    (req.layout.key.clone(), material.key_pem.into_bytes()),
                ]);
                inspect(req, &as_leaf, Some(ca), now).map(|leaf| Issued { data: data.clone(), ..leaf })
            });
            if let Some(kept) = kept {
                return Ok(kept);
            }
            let leaf = issue(req, Some(ca), now)?;
            let config = kubeconfig(server, cluster, ca.cert_pem(), Credential::Certificate(&leaf.material));
            Ok(Issued { data: BTreeMap::from([(KUBECONFIG_KEY.to_string(), config)]), ..leaf })
        }
        Content::TokenUsers => {
            let kept = inputs.existing.and_then(|data| Tokens::parse(data.get(TOKENS_KEY)?));
            let tokens = match kept {
                Some(tokens) => tokens,
                None => Tokens::generate()?,
            };
            Ok(generated(BTreeMap::from([(TOKENS_KEY.to_string(), tokens.csv())]), None))
        }
        Content::ViewerToken { tokens } => {
            let tokens = source()?
                .get(TOKENS_KEY)
                .and_then(|csv| Tokens::parse(csv))
                .ok_or_else(|| Error::Content(format!("{tokens} holds no tokens")))?;
            Ok(generated(BTreeMap::from([(VIEWER_TOKEN_KEY.to_string(), tokens.viewer.clone().into_bytes())]), None))
        }
        Content::TokenKubeconfig { server, cluster, tokens, user } => {
            let ca = need_issuer()?;
            let tokens = source()?
                .get(TOKENS_KEY)
                .and_then(|csv| Tokens::parse(csv))
                .ok_or_else(|| Error::Content(format!("{tokens} holds no tokens")))?;
            let config = kubeconfig(server, cluster, ca.cert_pem(), Credential::Token(tokens.of(*user)));
            Ok(generated(BTreeMap::from([(KUBECONFIG_KEY.to_string(), config)]), Some(ca)))
        }
        Content::Copy { .. } => Ok(generated(source()?.clone(), None)),
        Content::Cloud { namespace, name, secret } => {
            let credentials = super::cloud_config::Credentials { namespace, name, data: source()? };
            let data = super::cloud_config::data(secret, &credentials).map_err(|e| Error::Content(e.to_string()))?;
            Ok(generated(data, None))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::address::Address;
    use crate::object::Kind;
    use crate::pki::request::{KeyAlgorithm, SecretLayout, Usage};

    const NOW: i64 = 1_790_000_000;
    const SERVER: &str = "https://apiserver-external.cluster-a.svc.cluster.local.";

    fn ca() -> Authority {
        Authority::new(issue(&CertRequest::ca("root-ca.a.example.com", KeyAlgorithm::Rsa2048), None, NOW).unwrap().material).unwrap()
    }

    fn kubeconfig_request() -> CertRequest {
        let mut req = CertRequest::leaf(
            "system:kube-scheduler",
            Address::cluster_object("a", Kind::Secret, "ca"),
            vec![Usage::ClientAuth],
            SecretLayout::named("kubeconfig", false),
        );
        req.content = Some(Content::Kubeconfig { server: SERVER.into(), cluster: "a".into() });
        req
    }

    #[test]
    fn an_issued_kubeconfig_parses_and_its_certificate_verifies_against_the_ca() {
        let ca = ca();
        let issued = make(&kubeconfig_request(), Some(&ca), Inputs::default(), NOW).unwrap();
        assert_eq!(issued.data.keys().collect::<Vec<_>>(), ["kubeconfig"]);
        let text = String::from_utf8(issued.data["kubeconfig"].clone()).unwrap();
        let parsed = kube::config::Kubeconfig::from_yaml(&text).expect("kube reads it");
        assert_eq!(parsed.current_context.as_deref(), Some("a"));
        let cluster = parsed.clusters[0].cluster.as_ref().unwrap();
        assert_eq!(cluster.server.as_deref(), Some(SERVER));
        assert_eq!(parsed.auth_infos[0].name, "default");
        assert_eq!(parsed.contexts[0].context.as_ref().unwrap().user.as_deref(), Some("default"));

        // The embedded certificate is a leaf of this CA with the requested subject: inspect
        // verifies the signature, CN and key, and the same request adopts it unchanged.
        let kept = make(&kubeconfig_request(), Some(&ca), Inputs { existing: Some(&issued.data), source: None }, NOW).unwrap();
        assert_eq!(kept.fingerprint, issued.fingerprint);
        assert_eq!(kept.issuer_fingerprint.as_deref(), Some(ca.fingerprint()));
        assert_eq!(kept.data, issued.data);

        // Another CA, another CN, or the renewal window each make a new one.
        let other =
            super::super::issue::Authority::new(issue(&CertRequest::ca("x", KeyAlgorithm::Rsa2048), None, NOW).unwrap().material).unwrap();
        let reissued = make(&kubeconfig_request(), Some(&other), Inputs { existing: Some(&issued.data), source: None }, NOW).unwrap();
        assert_ne!(reissued.fingerprint, issued.fingerprint);
        let mut renamed = kubeconfig_request();
        renamed.common_name = "machine-controller".into();
        assert_ne!(
            make(&renamed, Some(&ca), Inputs { existing: Some(&issued.data), source: None }, NOW).unwrap().fingerprint,
            issued.fingerprint
        );
        let late = NOW + 340 * 86_400;
        assert_ne!(
            make(&kubeconfig_request(), Some(&ca), Inputs { existing: Some(&issued.data), source: None }, late).unwrap().fingerprint,
            issued.fingerprint
        );
    }

    #[test]
    fn tokens_are_made_once_then_adopted() {
        let req = CertRequest::generated(Content::TokenUsers, None);
        let first = make(&req, None, Inputs::default(), NOW).unwrap();
        let csv = String::from_utf8(first.data[TOKENS_KEY].clone()).unwrap();
        let lines: Vec<&str> = csv.lines().collect();
        assert_eq!(lines.len(), 2);
        assert!(lines[0].ends_with(",admin,10000,system:masters") && lines[1].ends_with(",viewer,10001,viewers"), "{lines:?}");
        let token = lines[0].split(',').next().unwrap();
        assert_eq!(token.len(), 23);
        assert!(token.split('.').map(str::len).eq([6, 16]));

        let again = make(&req, None, Inputs { existing: Some(&first.data), source: None }, NOW).unwrap();
        assert_eq!(again.data, first.data);
        assert_eq!(again.fingerprint, first.fingerprint);
        assert_ne!(make(&req, None, Inputs::default(), NOW).unwrap().data, first.data, "fresh tokens are random");
        assert!(!format!("{:?}", Tokens::parse(csv.as_bytes()).unwrap()).contains(token));
    }

    #[test]
    fn token_kubeconfigs_and_the_viewer_token_read_the_tokens_secret() {
        let ca = ca();
        let tokens = make(&CertRequest::generated(Content::TokenUsers, None), None, Inputs::default(), NOW).unwrap();
        let parsed = Tokens::parse(&tokens.data[TOKENS_KEY]).unwrap();
        let at = Address::cluster_object("a", Kind::Secret, "tokens");
        let admin = CertRequest::generated(
            Content::TokenKubeconfig {
                server: "https://a.example.com:443".into(),
                cluster: "a".into(),
                tokens: at.clone(),
                user: TokenUser::Admin,
            },
            Some(Address::cluster_object("a", Kind::Secret, "ca")),
        );
        let issued = make(&admin, Some(&ca), Inputs { existing: None, source: Some(&tokens.data) }, NOW).unwrap();
        let config = kube::config::Kubeconfig::from_yaml(std::str::from_utf8(&issued.data[KUBECONFIG_KEY]).unwrap()).unwrap();
        assert!(config.auth_infos[0].auth_info.as_ref().unwrap().token.is_some());
        assert!(String::from_utf8_lossy(&issued.data[KUBECONFIG_KEY]).contains(parsed.of(TokenUser::Admin)));
        assert_eq!(issued.issuer_fingerprint.as_deref(), Some(ca.fingerprint()));

        let viewer = make(
            &CertRequest::generated(Content::ViewerToken { tokens: at }, None),
            None,
            Inputs { existing: None, source: Some(&tokens.data) },
            NOW,
        )
        .unwrap();
        assert_eq!(viewer.data[VIEWER_TOKEN_KEY], parsed.of(TokenUser::Viewer).as_bytes());
        assert!(make(&admin, Some(&ca), Inputs::default(), NOW).is_err(), "without the tokens Secret nothing is made");
    }
}
