//! Output format selection and the JSON view of a plan.

use kkp::plan::Plan;

/// `--json` / `--markdown`.
#[derive(Debug, Clone, clap::Args)]
pub struct FormatArgs {
    /// Machine-readable JSON (schema in docs/plan-format.md).
    #[arg(long, conflicts_with = "markdown")]
    json: bool,
    /// Markdown for pull-request comments (below GitHub's 65,536 characters; replace and
    /// destroy always shown).
    #[arg(long)]
    markdown: bool,
    /// Print only the roll-ups: replace and destroy (complete), identical changes folded across
    /// clusters, the per-seed table.
    #[arg(long, conflicts_with = "json")]
    summary: bool,
}

/// How to print.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Human,
    Json,
    Markdown,
}

impl FormatArgs {
    pub fn format(&self) -> Format {
        match (self.json, self.markdown) {
            (true, _) => Format::Json,
            (_, true) => Format::Markdown,
            _ => Format::Human,
        }
    }

    /// How much the human and markdown views show.
    pub fn detail(&self) -> kkp::plan::display::Detail {
        if self.summary { kkp::plan::display::Detail::Summary } else { kkp::plan::display::Detail::Full }
    }
}

/// `{"format_version", "digest", "plan"}`: the saved-plan envelope's fields, pretty-printed.
pub fn plan_json(plan: &Plan, digest: &str) -> String {
    let value = serde_json::json!({"format_version": kkp::plan::file::FORMAT_VERSION, "digest": digest, "plan": plan});
    serde_json::to_string_pretty(&value).expect("plans serialise")
}
