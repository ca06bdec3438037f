//! Where a rollout stopped on an unhealthy wave: the wave's actions all landed (so the next
//! plan finds its clusters unchanged), but its apiservers or its check said no. The next apply
//! in waves checks those clusters again before it starts anything, so re-running a stopped
//! rollout cannot carry an unhealthy canary's change to the rest of the fleet.

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// A wave that stopped its rollout although every action of it was applied.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct StoppedWave {
    /// The wave's name.
    pub wave: String,
    /// Its clusters, with the seed each is on.
    pub clusters: BTreeMap<String, String>,
    /// Why it was not healthy.
    pub why: String,
}
