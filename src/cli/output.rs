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

/// Set by `--no-color`.
static NO_COLOR_FLAG: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

/// Records `--no-color`.
pub fn set_no_color(no_color: bool) {
    NO_COLOR_FLAG.store(no_color, std::sync::atomic::Ordering::Relaxed);
}

/// Colours go to a terminal only, and never with `--no-color` or a non-empty `NO_COLOR`
/// (https://no-color.org).
fn use_color(terminal: bool, flag: bool, env: Option<std::ffi::OsString>) -> bool {
    terminal && !flag && env.is_none_or(|v| v.is_empty())
}

/// Colours the action lines of a human plan: `+` green, `~` yellow, `-/+` magenta, `-` red.
pub fn colorize(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + text.len() / 8);
    for line in text.split_inclusive('\n') {
        let trimmed = line.trim_start();
        let colour = if trimmed.starts_with("-/+ ") {
            Some("35")
        } else if trimmed.starts_with("+ ") {
            Some("32")
        } else if trimmed.starts_with("~ ") {
            Some("33")
        } else if trimmed.starts_with("- ") {
            Some("31")
        } else {
            None
        };
        match colour {
            Some(c) => {
                let (body, newline) = line.strip_suffix('\n').map_or((line, ""), |b| (b, "\n"));
                out.push_str(&format!("\x1b[{c}m{body}\x1b[0m{newline}"));
            }
            None => out.push_str(line),
        }
    }
    out
}

/// Writes a human plan to stdout, coloured on a terminal.
pub fn print_human(text: &str) {
    use std::io::IsTerminal;
    let terminal = std::io::stdout().is_terminal();
    if use_color(terminal, NO_COLOR_FLAG.load(std::sync::atomic::Ordering::Relaxed), std::env::var_os("NO_COLOR")) {
        print_out(&colorize(text));
    } else {
        print_out(text);
    }
}

/// Writes to stdout. A reader that went away (`kkp plan | head`) is not an error: the rest
/// of the output is dropped quietly instead of panicking.
pub fn print_out(text: &str) {
    use std::io::Write;
    let mut stdout = std::io::stdout().lock();
    let _ = stdout.write_all(text.as_bytes()).and_then(|()| stdout.flush());
}

/// [`print_out`] with a newline.
macro_rules! outln {
    ($($arg:tt)*) => {
        crate::cli::output::print_out(&format!("{}\n", format_args!($($arg)*)))
    };
}
pub(crate) use outln;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn colours_only_on_a_terminal_without_no_color() {
        assert!(use_color(true, false, None));
        assert!(use_color(true, false, Some("".into())));
        assert!(!use_color(false, false, None));
        assert!(!use_color(true, true, None));
        assert!(!use_color(true, false, Some("1".into())));
    }

    #[test]
    fn action_lines_are_coloured_by_what_they_do() {
        let plan = "seed europe\n    + seed/a  (new)\n    ~ seed/b\n    -/+ seed/c\n    - seed/d\n";
        assert_eq!(
            colorize(plan),
            "seed europe\n\x1b[32m    + seed/a  (new)\x1b[0m\n\x1b[33m    ~ seed/b\x1b[0m\n\x1b[35m    -/+ seed/c\x1b[0m\n\x1b[31m    - seed/d\x1b[0m\n"
        );
    }
}
