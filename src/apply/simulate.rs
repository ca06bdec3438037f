//! What an apply would record, without targets or keys: every certificate gets a synthetic
//! fingerprint derived from its address. Benchmarks and tests use it to build states of any
//! size in a fraction of the time real issuance takes; nothing else should.

use crate::address::Address;
use crate::object::digest;
use crate::plan::{Action, Plan, recorded_value};
use crate::render::{Body, fill_fingerprints};
use crate::state::{CertificateState, Change, NodeState, State};
use std::collections::HashMap;

/// The synthetic fingerprint of the certificate at `address`, re-issued `generation` times.
pub fn fingerprint(address: &Address, generation: u64) -> String {
    digest(&(address, generation))
}

/// Applies `plan` to `state` as a successful apply at `now` would record it; `on_body`
/// receives each recorded body with its digest (for an object store).
pub fn record(plan: &Plan, state: &mut State, now: i64, on_body: &mut dyn FnMut(&str, &serde_json::Value)) {
    let mut fingerprints: HashMap<&Address, String> = HashMap::new();
    for action in &plan.actions {
        let change = match (&action.desired, action.action) {
            (None, _) | (_, Action::Delete) => Change::Remove { address: action.address.clone() },
            (Some(desired), _) => {
                let body = desired.body();
                let node = match body {
                    Body::Logical { settings } => {
                        let digest = digest(&settings);
                        on_body(&digest, &settings);
                        NodeState { seed: action.seed.clone(), role: action.role, object: None, digest, certificate: None, version: None }
                    }
                    Body::Object { mut manifest, fingerprints: refs } => {
                        fill_fingerprints(&mut manifest, &refs, |secret| fingerprints.get(secret).cloned());
                        let digest = digest(&manifest);
                        on_body(&digest, &manifest);
                        if action.object.as_ref().is_some_and(|o| o.kind.is_mounted()) {
                            fingerprints.insert(&action.address, digest.clone());
                        }
                        NodeState {
                            seed: action.seed.clone(),
                            role: action.role,
                            object: action.object.clone(),
                            digest,
                            certificate: None,
                            version: None,
                        }
                    }
                    Body::Secret { ref request, .. } => {
                        let generation = state.serial;
                        let fp = fingerprint(&action.address, generation);
                        fingerprints.insert(&action.address, fp.clone());
                        let issuer_fingerprint = request.issuer.as_ref().map(|issuer| {
                            fingerprints
                                .get(issuer)
                                .cloned()
                                .or_else(|| state.nodes.get(issuer).and_then(|n| n.certificate.as_ref()).map(|c| c.fingerprint.clone()))
                                .unwrap_or_default()
                        });
                        let not_after = request.kind.expires().then(|| now + i64::from(request.validity_days) * 86_400);
                        let recorded = recorded_value(&body);
                        let digest = digest(&recorded);
                        on_body(&digest, &recorded);
                        NodeState {
                            role: action.role,
                            seed: action.seed.clone(),
                            object: action.object.clone(),
                            digest,
                            certificate: Some(CertificateState {
                                request_digest: request.digest(),
                                fingerprint: fp,
                                not_after,
                                issuer_fingerprint,
                            }),
                            version: None,
                        }
                    }
                };
                Change::Put { address: action.address.clone(), node }
            }
        };
        state.apply(change);
    }
    for (name, record) in &plan.clusters {
        state.apply(Change::Cluster { name: name.clone(), record: record.clone() });
    }
    state.serial += 1;
}
