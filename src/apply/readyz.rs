//! The apiserver check of a rollout wave: after a wave's actions succeed, each of its clusters'
//! apiserver is asked for `/readyz` through the seed's service proxy, on the Service kkp renders
//! for it (`apiserver-external`, port `secure`; `render::apiserver`), with the seed's client.
//!
//! "When reachable": an answer from the apiserver other than 200 means it is not ready and
//! stops the rollout (after polling up to `--ready-timeout`, since an apiserver that just
//! rolled may need a moment). An answer that says the apiserver could not be reached at all
//! (404: no such Service; 503: the proxy has no endpoint or port for it; 401/403: the seed
//! refuses kkp the proxy, or the apiserver refuses an anonymous `/readyz`), or no answer, is
//! "not checked" with the reason, and does not stop the rollout. A directory target has no API
//! server: not checked. [`judge`] is pure; [`check_wave`] asks.

use crate::plan::Plan;
use crate::target::{Target, Targets};
use futures::StreamExt;
use std::collections::BTreeMap;
use std::time::Duration;

/// The Service (`https:NAME:PORT`) through which the seed reaches a cluster's apiserver.
pub const SERVICE: &str = "https:apiserver-external:secure";

/// How long one ask may take before it counts as no answer.
const ASK_TIMEOUT: Duration = Duration::from_secs(10);

/// Pause between asks of an apiserver that answered not ready.
const POLL: Duration = Duration::from_secs(1);

/// What the check found for one cluster.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Readyz {
    /// `/readyz` answered 200.
    Ready,
    /// The apiserver could not be asked; why.
    NotChecked(String),
    /// The apiserver answered, not ready; what it said.
    NotReady(String),
}

/// What an answer (status and body; None: no API server to ask) means.
pub fn judge(answer: Result<Option<(u16, String)>, String>) -> Readyz {
    let (status, body) = match answer {
        Ok(Some(answer)) => answer,
        Ok(None) => return Readyz::NotChecked("the directory target has no API server".into()),
        Err(e) => return Readyz::NotChecked(format!("the seed did not answer: {e}")),
    };
    // The proxy's own errors are Status objects; the apiserver's /readyz answers plain text.
    let said = match serde_json::from_str::<serde_json::Value>(&body) {
        Ok(status) if status["kind"] == "Status" => status["message"].as_str().unwrap_or_default().to_string(),
        _ => {
            let failed: Vec<&str> = body.lines().map(str::trim).filter(|l| l.starts_with("[-]")).collect();
            if failed.is_empty() { body.lines().next().unwrap_or_default().trim().to_string() } else { failed.join("; ") }
        }
    };
    let said: String = said.chars().take(300).collect();
    match status {
        200 => Readyz::Ready,
        404 | 503 => Readyz::NotChecked(format!("the seed's service proxy answered {status}: {said}")),
        401 | 403 => Readyz::NotChecked(format!("refused ({status}): {said}")),
        _ => Readyz::NotReady(format!("/readyz answered {status}: {said}")),
    }
}

/// Asks the apiserver of `cluster` on `target` until it is ready, cannot be asked, or `within`
/// has passed.
pub async fn check(target: &dyn Target, cluster: &str, within: Duration) -> Readyz {
    let namespace = crate::topology::namespace_of(cluster);
    let deadline = tokio::time::Instant::now() + within;
    loop {
        let answer = match tokio::time::timeout(ASK_TIMEOUT, target.proxy_get(&namespace, SERVICE, "readyz")).await {
            Ok(answer) => answer.map_err(|e| e.to_string()),
            Err(_) => Err(format!("no answer within {}s", ASK_TIMEOUT.as_secs())),
        };
        let found = judge(answer);
        if !matches!(found, Readyz::NotReady(_)) || tokio::time::Instant::now() + POLL > deadline {
            return found;
        }
        tokio::time::sleep(POLL).await;
    }
}

/// Checks every cluster of `clusters` (name and seed), `parallelism` at a time; in name order.
pub async fn check_wave(
    clusters: &BTreeMap<String, String>,
    targets: &Targets,
    within: Duration,
    parallelism: usize,
) -> Vec<(String, Readyz)> {
    let asks = clusters.iter().map(|(cluster, seed)| async move {
        let found = match targets.get(seed) {
            Some(target) => check(target.as_ref(), cluster, within).await,
            None => Readyz::NotChecked(format!("no target for seed {seed}")),
        };
        (cluster.clone(), found)
    });
    futures::stream::iter(asks).buffered(parallelism.max(1)).collect().await
}

/// Each cluster of `part` (a wave's plan) with its seed.
pub fn seeds(part: &Plan) -> BTreeMap<String, String> {
    part.actions.iter().filter_map(|a| Some((a.cluster.clone()?, a.seed.clone()))).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn status(code: u16, message: &str) -> String {
        serde_json::json!({"kind": "Status", "apiVersion": "v1", "status": "Failure", "message": message, "code": code}).to_string()
    }

    #[test]
    fn only_an_apiserver_that_answers_not_ready_fails() {
        assert_eq!(judge(Ok(Some((200, "ok".into())))), Readyz::Ready);
        let failed = "[+]ping ok\n[-]etcd failed: reason withheld\n[+]log ok\nreadyz check failed\n";
        assert_eq!(judge(Ok(Some((500, failed.into())))), Readyz::NotReady("/readyz answered 500: [-]etcd failed: reason withheld".into()));
        assert_eq!(
            judge(Ok(Some((503, status(503, "no endpoints available for service \"apiserver-external\""))))),
            Readyz::NotChecked("the seed's service proxy answered 503: no endpoints available for service \"apiserver-external\"".into())
        );
        assert!(
            matches!(judge(Ok(Some((404, status(404, "services \"apiserver-external\" not found"))))), Readyz::NotChecked(why) if why.contains("not found"))
        );
        assert!(matches!(judge(Ok(Some((403, status(403, "forbidden"))))), Readyz::NotChecked(why) if why.starts_with("refused (403)")));
        assert_eq!(judge(Ok(None)), Readyz::NotChecked("the directory target has no API server".into()));
        assert!(matches!(judge(Err("connection refused".into())), Readyz::NotChecked(why) if why.contains("connection refused")));
    }

    #[test]
    fn the_service_asked_is_the_one_render_makes() {
        let dir = std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("examples/quickstart");
        let nodes = crate::render::topology(&crate::topology::load(&[dir]).unwrap());
        let [_, name, port] = SERVICE.split(':').collect::<Vec<_>>()[..] else { panic!("{SERVICE} is not SCHEME:NAME:PORT") };
        let service = nodes
            .iter()
            .filter_map(|n| match &n.body {
                crate::render::Body::Object { manifest, .. } if manifest["kind"] == "Service" && manifest["metadata"]["name"] == name => {
                    Some(manifest)
                }
                _ => None,
            })
            .next()
            .expect("render makes the apiserver's Service");
        assert!(service["spec"]["ports"].as_array().unwrap().iter().any(|p| p["name"] == port), "{service}");
    }
}
