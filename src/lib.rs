//! kkp plans and applies KKP-style Kubernetes control planes the way Terraform plans and
//! applies infrastructure.
//!
//! The pipeline, one module per stage, data flowing one way:
//!
//! ```text
//! topology (KKP YAML -> validated Topology)
//!   -> render (pure: Topology -> desired nodes, one set per seed and user cluster)
//!   -> graph (pure: dependency DAG, order, levels, critical path)
//!   -> plan (pure: desired nodes vs state -> actions with reasons; saved-plan format)
//!   -> policy (pure: classified actions vs rules -> allow, review or deny)
//!   -> apply (tokio executor: walks the plan, issues certificates, writes to targets)
//! refresh (reads seeds; pure drift comparison) feeds plan when asked to.
//! state (file format, lock, journal) and target (dir, kube) sit at the edges.
//! ```
#![deny(missing_docs)]

pub mod address;
pub mod apply;
pub mod graph;
pub mod import;
pub mod object;
pub mod pki;
pub mod plan;
pub mod policy;
pub mod refresh;
pub mod render;
pub mod role;
pub mod state;
pub mod target;
pub mod topology;
