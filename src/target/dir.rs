//! The directory target: each seed's objects as YAML files under
//! `<dir>/<seed>/<namespace>/<kind>-<name>.yaml` (cluster-scoped objects under
//! `<dir>/<seed>/_cluster/`). Writes are atomic; Secrets are written 0600. Workloads count as
//! ready once written: nothing runs them.

use super::{Error, Result, Target};
use crate::object::{Kind, ObjectRef};
use crate::state::ObjectVersion;
use async_trait::async_trait;
use serde_json::Value;
use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// Directory for cluster-scoped objects.
const CLUSTER_SCOPED: &str = "_cluster";

/// A seed stood in for by a directory.
#[derive(Debug, Clone)]
pub struct DirTarget {
    seed: String,
    /// The `--dir` directory.
    dir: PathBuf,
    root: PathBuf,
}

impl DirTarget {
    /// The target of `seed` under `dir` (files go to `dir/<seed>/`).
    pub fn new(dir: &Path, seed: &str) -> Self {
        DirTarget { seed: seed.into(), dir: dir.to_path_buf(), root: dir.join(seed) }
    }

    /// The state's record of a directory: its absolute path (relative to the current
    /// directory when it does not exist yet), so runs from elsewhere are compared correctly.
    pub fn record_of(dir: &Path) -> crate::state::SeedTarget {
        let absolute =
            std::fs::canonicalize(dir).or_else(|_| std::env::current_dir().map(|cwd| cwd.join(dir))).unwrap_or_else(|_| dir.to_path_buf());
        crate::state::SeedTarget::Dir { path: absolute.to_string_lossy().into_owned() }
    }

    /// Where an object lives.
    pub fn path_of(&self, object: &ObjectRef) -> PathBuf {
        let folder = object.namespace.as_deref().unwrap_or(CLUSTER_SCOPED);
        self.root.join(folder).join(format!("{}-{}.yaml", object.kind.segment(), object.name))
    }

    /// Removes temp files a write killed half way left under this seed's folder (the object
    /// itself was either written before or will be by the plan that follows).
    pub fn remove_leftovers(&self) {
        let mut stack = vec![self.root.clone()];
        while let Some(dir) = stack.pop() {
            for path in std::fs::read_dir(&dir).into_iter().flatten().flatten().map(|e| e.path()) {
                let name = path.file_name().and_then(|n| n.to_str()).unwrap_or_default();
                if path.is_dir() {
                    stack.push(path);
                } else if name.starts_with('.') && name.ends_with(".yaml.tmp") {
                    let _ = std::fs::remove_file(&path);
                }
            }
        }
    }

    fn io(&self, path: &Path) -> impl FnOnce(std::io::Error) -> Error {
        let (seed, path) = (self.seed.clone(), path.to_path_buf());
        move |source| Error::Io { seed, path, source }
    }

    fn read(&self, path: &Path) -> Result<Option<Value>> {
        let text = match std::fs::read_to_string(path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(self.io(path)(e)),
        };
        serde_saphyr::from_str(&text).map(Some).map_err(|e| Error::Unreadable {
            seed: self.seed.clone(),
            path: path.to_path_buf(),
            message: e.without_snippet().to_string(),
        })
    }
}

#[async_trait]
impl Target for DirTarget {
    async fn get(&self, object: &ObjectRef) -> Result<Option<Value>> {
        let found = self.read(&self.path_of(object))?;
        // The file name does not carry the API group; make sure it is the same kind of object.
        Ok(found.filter(|v| ObjectRef::of(v).is_some_and(|r| r.kind == object.kind)))
    }

    async fn list(&self, kind: Kind, namespace: Option<&str>, labels: &BTreeMap<String, String>) -> Result<Vec<Value>> {
        let folders: Vec<PathBuf> = match namespace {
            Some(ns) => vec![self.root.join(ns)],
            None => match std::fs::read_dir(&self.root) {
                Ok(entries) => entries.flatten().map(|e| e.path()).filter(|p| p.is_dir()).collect(),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => Vec::new(),
                Err(e) => return Err(self.io(&self.root)(e)),
            },
        };
        let prefix = format!("{}-", kind.segment());
        let mut out = Vec::new();
        for folder in folders {
            let entries = match std::fs::read_dir(&folder) {
                Ok(e) => e,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
                Err(e) => return Err(self.io(&folder)(e)),
            };
            let mut paths: Vec<PathBuf> = entries
                .flatten()
                .map(|e| e.path())
                .filter(|p| p.file_name().is_some_and(|n| n.to_string_lossy().starts_with(&prefix)))
                .collect();
            paths.sort();
            for path in paths {
                let Some(value) = self.read(&path)? else { continue };
                let matches_kind = ObjectRef::of(&value).is_some_and(|r| r.kind == kind);
                let matches_labels =
                    labels.iter().all(|(k, v)| value.pointer("/metadata/labels").and_then(|l| l.get(k)).and_then(Value::as_str) == Some(v));
                if matches_kind && matches_labels {
                    out.push(value);
                }
            }
        }
        Ok(out)
    }

    async fn apply(&self, manifest: &Value) -> Result<Option<ObjectVersion>> {
        let object = super::identity(&self.seed, manifest)?;
        let path = self.path_of(&object);
        let dir = path.parent().expect("object paths have a parent");
        std::fs::create_dir_all(dir).map_err(self.io(dir))?;
        let yaml = serde_saphyr::to_string(manifest).expect("JSON values serialise to YAML");
        // A fixed hidden name: a write killed half way leaves at most one stray file, which
        // the next write of the same object replaces.
        let tmp = dir.join(format!(".{}.tmp", path.file_name().expect("object paths name a file").to_string_lossy()));
        let mut options = std::fs::OpenOptions::new();
        options.write(true).create(true).truncate(true);
        #[cfg(unix)]
        std::os::unix::fs::OpenOptionsExt::mode(&mut options, if object.kind == Kind::Secret { 0o600 } else { 0o644 });
        let mut file = options.open(&tmp).map_err(self.io(&tmp))?;
        file.write_all(yaml.as_bytes()).map_err(self.io(&tmp))?;
        file.sync_all().map_err(self.io(&tmp))?;
        drop(file);
        std::fs::rename(&tmp, &path).map_err(self.io(&path))?;
        // The rename is durable only once the directory holding it is.
        sync_dir(dir).map_err(self.io(dir))?;
        // A file has no version: a refresh reads and compares it.
        Ok(None)
    }

    async fn delete(&self, object: &ObjectRef) -> Result<bool> {
        let path = self.path_of(object);
        let existed = match std::fs::remove_file(&path) {
            Ok(()) => true,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => false,
            Err(e) => return Err(self.io(&path)(e)),
        };
        if existed && let Some(dir) = path.parent() {
            sync_dir(dir).map_err(self.io(dir))?;
        }
        // Deleting a namespace deletes what is in it, as on a real API server.
        if object.kind == Kind::Namespace && object.namespace.is_none() {
            let folder = self.root.join(&object.name);
            match std::fs::remove_dir_all(&folder) {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => return Err(self.io(&folder)(e)),
            }
        }
        Ok(existed)
    }

    async fn wait_ready(&self, _object: &ObjectRef, _timeout: Duration) -> Result<()> {
        Ok(())
    }

    async fn identity(&self) -> Result<crate::state::SeedTarget> {
        Ok(Self::record_of(&self.dir))
    }
}

/// fsyncs a directory, making a rename or removal in it durable.
fn sync_dir(dir: &Path) -> std::io::Result<()> {
    std::fs::File::open(dir)?.sync_all()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[tokio::test]
    async fn writes_reads_lists_and_deletes() {
        let dir = tempfile::tempdir().unwrap();
        let target = DirTarget::new(dir.path(), "eu");
        let cm = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "prometheus", "namespace": "cluster-a", "labels": {"app": "prometheus"}}, "data": {"x": "1\n2\n"}});
        target.apply(&cm).await.unwrap();
        assert!(dir.path().join("eu/cluster-a/configmap-prometheus.yaml").is_file());
        let object = ObjectRef::of(&cm).unwrap();
        assert_eq!(target.get(&object).await.unwrap(), Some(cm.clone()));
        let labels = BTreeMap::from([("app".to_string(), "prometheus".to_string())]);
        assert_eq!(target.list(Kind::ConfigMap, None, &labels).await.unwrap().len(), 1);
        assert!(target.list(Kind::ConfigMap, Some("cluster-b"), &labels).await.unwrap().is_empty());
        assert!(target.delete(&object).await.unwrap());
        assert!(!target.delete(&object).await.unwrap());
        assert_eq!(target.get(&object).await.unwrap(), None);
    }

    #[tokio::test]
    async fn deleting_a_namespace_removes_its_folder() {
        let dir = tempfile::tempdir().unwrap();
        let target = DirTarget::new(dir.path(), "eu");
        target.apply(&json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "cluster-a"}})).await.unwrap();
        target
            .apply(&json!({"apiVersion": "v1", "kind": "Service", "metadata": {"name": "etcd", "namespace": "cluster-a"}}))
            .await
            .unwrap();
        let ns = ObjectRef::cluster_scoped(Kind::Namespace, "cluster-a");
        assert!(target.delete(&ns).await.unwrap());
        assert!(!dir.path().join("eu/cluster-a").exists());
    }
}
