//! Issuing certificates with rcgen, and checking existing ones (used only by apply).
//!
//! Key bytes live in [`KeyMaterial`] and in the Secret data this module returns; both redact
//! themselves in `Debug`, and nothing here writes anywhere.

use super::request::{CertKind, CertRequest, KeyAlgorithm, Usage};
use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair, KeyUsagePurpose,
    PublicKeyData, SanType,
};
use std::collections::BTreeMap;
use std::fmt;

/// Errors while issuing or reading certificates.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// rcgen refused the request.
    #[error("cannot issue certificate {common_name:?}: {source}")]
    Issue {
        /// The request's CN.
        common_name: String,
        /// rcgen's error.
        source: rcgen::Error,
    },
    /// A leaf was requested without its CA's material.
    #[error("certificate {0:?} needs its issuing CA, which is not available")]
    MissingIssuer(String),
    /// Stored CA material could not be parsed.
    #[error("the CA Secret's {0} does not hold a usable PEM")]
    BadIssuer(&'static str),
    /// The OS's random source failed.
    #[error("no random bytes for a token")]
    Random,
    /// Content could not be made from its inputs.
    #[error("cannot make the Secret's content: {0}")]
    Content(String),
}

/// A certificate (or public key) and its private key, as PEM. `Debug` never shows the key.
#[derive(Clone)]
pub struct KeyMaterial {
    /// The certificate PEM (the public key PEM for a key pair).
    pub cert_pem: String,
    /// The private key PEM.
    pub key_pem: String,
}

impl fmt::Debug for KeyMaterial {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("KeyMaterial { .. }")
    }
}

/// A CA ready to sign leaves: its material, parsed once however many leaves it signs.
pub struct Authority {
    material: KeyMaterial,
    signer: Issuer<'static, KeyPair>,
    fingerprint: String,
}

impl Authority {
    /// Parses a CA's certificate and key.
    pub fn new(material: KeyMaterial) -> Result<Authority, Error> {
        let key = KeyPair::from_pem(&material.key_pem).map_err(|_| Error::BadIssuer("private key"))?;
        let signer = Issuer::from_ca_cert_pem(&material.cert_pem, key).map_err(|_| Error::BadIssuer("certificate"))?;
        let fingerprint = fingerprint_of_pem(&material.cert_pem).ok_or(Error::BadIssuer("certificate"))?;
        Ok(Authority { material, signer, fingerprint })
    }

    /// The CA's certificate PEM.
    pub fn cert_pem(&self) -> &str {
        &self.material.cert_pem
    }

    /// sha256 of the CA's certificate DER.
    pub fn fingerprint(&self) -> &str {
        &self.fingerprint
    }
}

impl fmt::Debug for Authority {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Authority").field("fingerprint", &self.fingerprint).finish_non_exhaustive()
    }
}

/// The result of issuing (or adopting) a request.
#[derive(Clone)]
pub struct Issued {
    /// Secret data (key -> bytes), including the private key.
    pub data: BTreeMap<String, Vec<u8>>,
    /// sha256 of the certificate DER (of the public key DER for a key pair).
    pub fingerprint: String,
    /// Unix seconds; None for a key pair.
    pub not_after: Option<i64>,
    /// Fingerprint of the CA that signed it.
    pub issuer_fingerprint: Option<String>,
    /// The material itself, so dependants signed in the same run need not read it back.
    pub material: KeyMaterial,
}

impl fmt::Debug for Issued {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Issued")
            .field("keys", &self.data.keys().collect::<Vec<_>>())
            .field("fingerprint", &self.fingerprint)
            .field("not_after", &self.not_after)
            .finish()
    }
}

fn algorithm(key: KeyAlgorithm) -> &'static rcgen::SignatureAlgorithm {
    match key {
        KeyAlgorithm::Rsa2048 => &rcgen::PKCS_RSA_SHA256,
        KeyAlgorithm::EcdsaP256 => &rcgen::PKCS_ECDSA_P256_SHA256,
    }
}

fn generate_key(req: &CertRequest) -> Result<KeyPair, Error> {
    let err = |source| Error::Issue { common_name: req.common_name.clone(), source };
    match req.key {
        KeyAlgorithm::Rsa2048 => KeyPair::generate_rsa_for(&rcgen::PKCS_RSA_SHA256, rcgen::RsaKeySize::_2048).map_err(err),
        KeyAlgorithm::EcdsaP256 => KeyPair::generate_for(algorithm(req.key)).map_err(err),
    }
}

/// Issues fresh material for `req` at `now` (unix seconds). Leaves need their CA's material.
pub fn issue(req: &CertRequest, issuer: Option<&Authority>, now: i64) -> Result<Issued, Error> {
    let err = |source| Error::Issue { common_name: req.common_name.clone(), source };
    if req.kind == CertKind::Generated {
        return Err(Error::Content("generated content has no key to issue; see pki::make".into()));
    }
    let key = generate_key(req)?;
    if req.kind == CertKind::KeyPair {
        let public_pem = key.public_key_pem();
        let material = KeyMaterial { cert_pem: public_pem.clone(), key_pem: key.serialize_pem() };
        let mut data = BTreeMap::new();
        data.insert(req.layout.cert.clone(), public_pem.into_bytes());
        data.insert(req.layout.key.clone(), material.key_pem.clone().into_bytes());
        return Ok(Issued {
            data,
            fingerprint: crate::object::digest_bytes(&key.subject_public_key_info()),
            not_after: None,
            issuer_fingerprint: None,
            material,
        });
    }

    let mut params = CertificateParams::default();
    let mut dn = DistinguishedName::new();
    dn.push(DnType::CommonName, req.common_name.clone());
    for o in &req.organizations {
        dn.push(DnType::OrganizationName, o.clone());
    }
    params.distinguished_name = dn;
    for name in &req.dns_names {
        params.subject_alt_names.push(SanType::DnsName(name.clone().try_into().map_err(err)?));
    }
    for ip in &req.ip_addresses {
        params.subject_alt_names.push(SanType::IpAddress(*ip));
    }
    let not_before = time::OffsetDateTime::from_unix_timestamp(now).unwrap_or(time::OffsetDateTime::UNIX_EPOCH);
    params.not_before = not_before;
    params.not_after = not_before + time::Duration::days(i64::from(req.validity_days));
    params.use_authority_key_identifier_extension = true;

    let (cert, issuer_fingerprint, ca_pem) = match req.kind {
        CertKind::Ca => {
            params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
            params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::DigitalSignature, KeyUsagePurpose::KeyEncipherment];
            (params.self_signed(&key).map_err(err)?, None, None)
        }
        _ => {
            params.key_usages = vec![KeyUsagePurpose::DigitalSignature, KeyUsagePurpose::KeyEncipherment];
            params.extended_key_usages = req
                .usages
                .iter()
                .map(|u| match u {
                    Usage::ServerAuth => ExtendedKeyUsagePurpose::ServerAuth,
                    Usage::ClientAuth => ExtendedKeyUsagePurpose::ClientAuth,
                })
                .collect();
            let ca = issuer.ok_or_else(|| Error::MissingIssuer(req.common_name.clone()))?;
            let cert = params.signed_by(&key, &ca.signer).map_err(err)?;
            (cert, Some(ca.fingerprint.clone()), Some(ca.material.cert_pem.clone()))
        }
    };
    let material = KeyMaterial { cert_pem: cert.pem(), key_pem: key.serialize_pem() };
    let mut data = BTreeMap::new();
    data.insert(req.layout.cert.clone(), material.cert_pem.clone().into_bytes());
    data.insert(req.layout.key.clone(), material.key_pem.clone().into_bytes());
    if req.layout.tls_copy {
        data.insert("tls.crt".into(), material.cert_pem.clone().into_bytes());
        data.insert("tls.key".into(), material.key_pem.clone().into_bytes());
    }
    if let (Some(ca_key), Some(pem)) = (&req.layout.ca, ca_pem) {
        data.insert(ca_key.clone(), pem.into_bytes());
    }
    Ok(Issued {
        data,
        fingerprint: crate::object::digest_bytes(cert.der()),
        not_after: Some(params.not_after.unix_timestamp()),
        issuer_fingerprint,
        material,
    })
}

/// sha256 fingerprint of the first certificate in a PEM.
fn fingerprint_of_pem(pem: &str) -> Option<String> {
    let (_, parsed) = x509_parser::pem::parse_x509_pem(pem.as_bytes()).ok()?;
    Some(crate::object::digest_bytes(&parsed.contents))
}

/// Takes a CA (or key pair) someone put in place as it is, whatever its subject: what
/// `--accept` means. Only checks that the key belongs to the certificate and that it is a
/// usable CA. None when it is not.
pub fn accept_as_is(req: &CertRequest, data: &BTreeMap<String, Vec<u8>>) -> Option<Issued> {
    if req.kind == CertKind::KeyPair {
        return inspect(req, data, None, 0);
    }
    let cert_pem = String::from_utf8(data.get(&req.layout.cert)?.clone()).ok()?;
    let key_pem = String::from_utf8(data.get(&req.layout.key)?.clone()).ok()?;
    let key = KeyPair::from_pem(&key_pem).ok()?;
    let (_, pem) = x509_parser::pem::parse_x509_pem(cert_pem.as_bytes()).ok()?;
    let cert = pem.parse_x509().ok()?;
    if cert.public_key().raw != key.subject_public_key_info().as_slice() || !cert.is_ca() {
        return None;
    }
    let material = KeyMaterial { cert_pem, key_pem };
    Authority::new(material.clone()).ok()?;
    Some(Issued {
        fingerprint: crate::object::digest_bytes(&pem.contents),
        not_after: Some(cert.validity().not_after.timestamp()),
        issuer_fingerprint: None,
        data: data.clone(),
        material,
    })
}

/// Checks whether existing Secret `data` already satisfies `req` at `now`: same subject and
/// SANs, signed by `issuer`, and outside the renewal window. Returns it as [`Issued`] so it can
/// be adopted instead of re-issued (KKP reconciles the same way: create only what is missing
/// or invalid).
pub fn inspect(req: &CertRequest, data: &BTreeMap<String, Vec<u8>>, issuer: Option<&Authority>, now: i64) -> Option<Issued> {
    let cert_pem = String::from_utf8(data.get(&req.layout.cert)?.clone()).ok()?;
    let key_pem = String::from_utf8(data.get(&req.layout.key)?.clone()).ok()?;
    let key = KeyPair::from_pem(&key_pem).ok()?;
    if req.kind == CertKind::KeyPair {
        if key.public_key_pem().trim() != cert_pem.trim() {
            return None;
        }
        return Some(Issued {
            fingerprint: crate::object::digest_bytes(&key.subject_public_key_info()),
            not_after: None,
            issuer_fingerprint: None,
            data: data.clone(),
            material: KeyMaterial { cert_pem, key_pem },
        });
    }
    let (_, pem) = x509_parser::pem::parse_x509_pem(cert_pem.as_bytes()).ok()?;
    let cert = pem.parse_x509().ok()?;
    // The key must belong to the certificate.
    if cert.public_key().raw != key.subject_public_key_info().as_slice() {
        return None;
    }
    let cn = cert.subject().iter_common_name().next().and_then(|cn| cn.as_str().ok()).unwrap_or_default();
    if cn != req.common_name {
        return None;
    }
    // KKP compares the organisation set too (it carries groups such as system:masters).
    let mut orgs: Vec<&str> = cert.subject().iter_organization().filter_map(|o| o.as_str().ok()).collect();
    let mut want_orgs: Vec<&str> = req.organizations.iter().map(String::as_str).collect();
    orgs.sort_unstable();
    want_orgs.sort_unstable();
    if orgs != want_orgs {
        return None;
    }
    let mut dns: Vec<String> = Vec::new();
    let mut ips: Vec<std::net::IpAddr> = Vec::new();
    if let Ok(Some(san)) = cert.subject_alternative_name() {
        for name in &san.value.general_names {
            match name {
                x509_parser::extensions::GeneralName::DNSName(d) => dns.push(d.to_string()),
                x509_parser::extensions::GeneralName::IPAddress(bytes) => match bytes.len() {
                    4 => ips.push(std::net::IpAddr::from(<[u8; 4]>::try_from(*bytes).ok()?)),
                    16 => ips.push(std::net::IpAddr::from(<[u8; 16]>::try_from(*bytes).ok()?)),
                    _ => return None,
                },
                _ => {}
            }
        }
    }
    let (mut want_dns, mut want_ips) = (req.dns_names.clone(), req.ip_addresses.clone());
    dns.sort();
    ips.sort();
    want_dns.sort();
    want_ips.sort();
    if dns != want_dns || ips != want_ips {
        return None;
    }
    let not_after = cert.validity().not_after.timestamp();
    if req.renewal(not_after, now).is_some() || not_after <= now {
        return None;
    }
    let issuer_fingerprint = match req.kind {
        CertKind::Leaf => {
            let ca = issuer?;
            let (_, ca_pem) = x509_parser::pem::parse_x509_pem(ca.material.cert_pem.as_bytes()).ok()?;
            let ca_cert = ca_pem.parse_x509().ok()?;
            if !signed_by(&cert, &ca_cert) {
                return None;
            }
            Some(crate::object::digest_bytes(&ca_pem.contents))
        }
        _ => None,
    };
    Some(Issued {
        fingerprint: crate::object::digest_bytes(&pem.contents),
        not_after: Some(not_after),
        issuer_fingerprint,
        data: data.clone(),
        material: KeyMaterial { cert_pem, key_pem },
    })
}

/// Verifies `cert`'s signature with `ca`'s public key (RSA PKCS#1 SHA-256 or ECDSA P-256).
fn signed_by(cert: &x509_parser::certificate::X509Certificate<'_>, ca: &x509_parser::certificate::X509Certificate<'_>) -> bool {
    use aws_lc_rs::signature::{ECDSA_P256_SHA256_ASN1, RSA_PKCS1_2048_8192_SHA256, UnparsedPublicKey, VerificationAlgorithm};
    let algorithm: &dyn VerificationAlgorithm = match cert.signature_algorithm.algorithm.to_id_string().as_str() {
        "1.2.840.113549.1.1.11" => &RSA_PKCS1_2048_8192_SHA256,
        "1.2.840.10045.4.3.2" => &ECDSA_P256_SHA256_ASN1,
        _ => return false,
    };
    let key = UnparsedPublicKey::new(algorithm, ca.public_key().subject_public_key.data.as_ref());
    key.verify(cert.tbs_certificate.as_ref(), cert.signature_value.data.as_ref()).is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::address::Address;
    use crate::pki::request::SecretLayout;

    const NOW: i64 = 1_790_000_000;

    fn leaf(cn: &str) -> CertRequest {
        let mut req = CertRequest::leaf(
            cn,
            Address::cluster_object("a", crate::object::Kind::Secret, "ca"),
            vec![Usage::ServerAuth],
            SecretLayout::named("apiserver-tls", false),
        );
        req.dns_names = vec!["a.example.com".into()];
        req.ip_addresses = vec!["10.240.16.1".parse().unwrap()];
        req
    }

    #[test]
    fn issued_leaf_is_signed_by_its_ca_and_adoptable() {
        let ca =
            Authority::new(issue(&CertRequest::ca("root-ca.a.example.com", KeyAlgorithm::Rsa2048), None, NOW).unwrap().material).unwrap();
        let cert = issue(&leaf("kube-apiserver"), Some(&ca), NOW).unwrap();
        assert_eq!(cert.issuer_fingerprint.as_deref(), Some(ca.fingerprint.as_str()));
        assert_eq!(cert.not_after, Some(NOW + 365 * 86_400));
        let adopted = inspect(&leaf("kube-apiserver"), &cert.data, Some(&ca), NOW).expect("valid certificate is adopted");
        assert_eq!(adopted.fingerprint, cert.fingerprint);

        // A different subject, another CA, or the renewal window all refuse adoption.
        assert!(inspect(&leaf("other"), &cert.data, Some(&ca), NOW).is_none());
        let mut masters = leaf("kube-apiserver");
        masters.organizations = vec!["system:masters".into()];
        assert!(inspect(&masters, &cert.data, Some(&ca), NOW).is_none(), "the organisations must match too");
        let with_org = issue(&masters, Some(&ca), NOW).unwrap();
        assert!(inspect(&masters, &with_org.data, Some(&ca), NOW).is_some());
        let other_ca = Authority::new(issue(&CertRequest::ca("x", KeyAlgorithm::EcdsaP256), None, NOW).unwrap().material).unwrap();
        assert!(inspect(&leaf("kube-apiserver"), &cert.data, Some(&other_ca), NOW).is_none());
        assert!(inspect(&leaf("kube-apiserver"), &cert.data, Some(&ca), NOW + 340 * 86_400).is_none());
    }

    #[test]
    fn key_pairs_and_debug_output_hold_no_key_text() {
        let mut req = CertRequest::ca("", KeyAlgorithm::EcdsaP256);
        req.kind = CertKind::KeyPair;
        req.layout = SecretLayout { cert: "sa.pub".into(), key: "sa.key".into(), ca: None, tls_copy: false };
        let pair = issue(&req, None, NOW).unwrap();
        assert!(String::from_utf8_lossy(&pair.data["sa.key"]).contains("PRIVATE KEY"));
        assert!(!format!("{pair:?}").contains("PRIVATE"));
        assert_eq!(inspect(&req, &pair.data, None, NOW).unwrap().fingerprint, pair.fingerprint);
    }
}
