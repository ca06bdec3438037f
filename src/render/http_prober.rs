//! KKP's http-prober wrapper: an init container copies the `http-prober` binary into an
//! emptyDir, and the wrapped container runs it instead of its own command; the prober waits
//! for the user cluster's apiserver (and optionally for CRDs) and then execs the original
//! command (KKP `pkg/resources/apiserver/is-running.go`). This is why kkp does not chain the
//! control-plane Deployments behind the apiserver: they wait at runtime, as in KKP.

use crate::topology::Cluster;
use k8s_openapi::api::core::v1::{Container, EmptyDirVolumeSource, PodSpec, Volume, VolumeMount};
use serde::Serialize;
use std::collections::{BTreeMap, BTreeSet};

/// KKP's pinned http-prober image.
pub const IMAGE: &str = "quay.io/kubermatic/http-prober:v0.5.1";
/// The emptyDir volume the binary is copied into.
pub const VOLUME: &str = "http-prober-bin";
const MOUNT_PATH: &str = "/http-prober-bin";
const INIT_CONTAINER: &str = "copy-http-prober";
/// The pod annotation listing emptyDir volumes the cluster autoscaler may evict with the pod.
pub const SAFE_TO_EVICT_ANNOTATION: &str = "cluster-autoscaler.kubernetes.io/safe-to-evict-local-volumes";

/// The original command as the prober receives it (JSON).
#[derive(Serialize)]
struct Command<'a> {
    command: &'a str,
    #[serde(skip_serializing_if = "<[String]>::is_empty")]
    args: &'a [String],
}

/// `apiserver-external.<ns>.svc.cluster.local.`: the in-cluster name of the apiserver (KKP's
/// `status.address.internalURL`).
pub fn apiserver_internal_name(cluster: &Cluster) -> String {
    format!("apiserver-external.{}.svc.cluster.local.", cluster.namespace())
}

/// Wraps the container named `container` of `pod` so it starts only once the apiserver answers
/// (and every CRD in `crds_to_wait_for` exists), and records the prober's volume in the pod's
/// safe-to-evict annotation.
pub fn wrap(cluster: &Cluster, pod: &mut PodSpec, annotations: &mut BTreeMap<String, String>, container: &str, crds_to_wait_for: &[&str]) {
    let volumes = pod.volumes.get_or_insert_with(Vec::new);
    volumes.retain(|v| v.name != VOLUME);
    volumes.push(Volume { name: VOLUME.into(), empty_dir: Some(EmptyDirVolumeSource::default()), ..Default::default() });

    let copy = Container {
        name: INIT_CONTAINER.into(),
        image: Some(IMAGE.into()),
        command: Some(vec!["/bin/cp".into(), "/usr/local/bin/http-prober".into(), format!("{MOUNT_PATH}/http-prober")]),
        volume_mounts: Some(vec![prober_mount()]),
        ..Default::default()
    };
    let mut init = vec![copy];
    init.extend(pod.init_containers.take().unwrap_or_default().into_iter().filter(|c| c.name != INIT_CONTAINER));
    pod.init_containers = Some(init);

    for wrapped in pod.containers.iter_mut().filter(|c| c.name == container) {
        wrap_container(cluster, wrapped, crds_to_wait_for);
    }

    let mut evictable: BTreeSet<String> = annotations
        .get(SAFE_TO_EVICT_ANNOTATION)
        .map(|v| v.split(',').filter(|s| !s.is_empty()).map(String::from).collect())
        .unwrap_or_default();
    evictable.insert(VOLUME.into());
    annotations.insert(SAFE_TO_EVICT_ANNOTATION.into(), evictable.into_iter().collect::<Vec<_>>().join(","));
}

fn prober_mount() -> VolumeMount {
    VolumeMount { name: VOLUME.into(), mount_path: MOUNT_PATH.into(), ..Default::default() }
}

fn wrap_container(cluster: &Cluster, container: &mut Container, crds_to_wait_for: &[&str]) {
    let mut original: Vec<String> = container.command.take().unwrap_or_default();
    original.extend(container.args.take().unwrap_or_default());
    let (command, args) = original.split_first().map(|(c, a)| (c.as_str(), a)).unwrap_or(("", &[]));
    let serialized = serde_json::to_string(&Command { command, args }).expect("strings always serialise");

    container.command = Some(vec![format!("{MOUNT_PATH}/http-prober")]);
    let mut prober_args = vec![
        "-endpoint".to_string(),
        format!("https://{}/healthz", apiserver_internal_name(cluster)),
        "-insecure".into(),
        "-retries".into(),
        "100".into(),
        "-retry-wait".into(),
        "2".into(),
        "-timeout".into(),
        "1".into(),
        "-command".into(),
        serialized,
    ];
    for crd in crds_to_wait_for {
        prober_args.push("--crd-to-wait-for".into());
        prober_args.push((*crd).into());
    }
    container.args = Some(prober_args);
    container.volume_mounts.get_or_insert_with(Vec::new).push(prober_mount());
}

/// The original command and arguments of a wrapped container (tests read flags through it).
#[cfg(test)]
pub fn unwrapped_command(container: &Container) -> Vec<String> {
    let args = container.args.as_deref().unwrap_or_default();
    let json = args.iter().position(|a| a == "-command").and_then(|i| args.get(i + 1)).expect("a wrapped container");
    let value: serde_json::Value = serde_json::from_str(json).expect("the prober's command is JSON");
    let mut out = vec![value["command"].as_str().unwrap().to_string()];
    out.extend(value["args"].as_array().into_iter().flatten().map(|a| a.as_str().unwrap().to_string()));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cluster() -> Cluster {
        crate::render::component::tests::fixture_cluster()
    }

    #[test]
    fn wrapping_keeps_the_original_command_as_json_and_waits_for_crds() {
        let cluster = cluster();
        let mut pod = PodSpec {
            containers: vec![Container {
                name: "c".into(),
                command: Some(vec!["/bin/x".into()]),
                args: Some(vec!["-a".into(), "b\"c".into()]),
                ..Default::default()
            }],
            ..Default::default()
        };
        let mut annotations = BTreeMap::from([(SAFE_TO_EVICT_ANNOTATION.to_string(), "temp".to_string())]);
        wrap(&cluster, &mut pod, &mut annotations, "c", &["Machine,cluster.k8s.io/v1alpha1"]);
        let c = &pod.containers[0];
        assert_eq!(c.command.as_deref(), Some(&["/http-prober-bin/http-prober".to_string()][..]));
        assert_eq!(unwrapped_command(c), ["/bin/x", "-a", "b\"c"]);
        let args = c.args.as_ref().unwrap();
        assert_eq!(args[1], "https://apiserver-external.cluster-de-test-01.svc.cluster.local./healthz");
        assert_eq!(&args[args.len() - 2..], ["--crd-to-wait-for", "Machine,cluster.k8s.io/v1alpha1"]);
        assert_eq!(pod.init_containers.as_ref().unwrap()[0].name, "copy-http-prober");
        assert_eq!(annotations[SAFE_TO_EVICT_ANNOTATION], "http-prober-bin,temp");
        assert_eq!(pod.volumes.as_ref().unwrap().last().unwrap().name, VOLUME);
    }
}
