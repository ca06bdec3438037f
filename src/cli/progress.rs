//! Apply progress: a bar on a terminal, plain lines otherwise, NDJSON with `--json`.

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use kkp::apply::Event;
use std::io::IsTerminal;

pub struct Progress {
    bar: Option<ProgressBar>,
    json: bool,
}

impl Progress {
    pub fn new(total: usize, json: bool) -> Self {
        let bar = (!json && std::io::stderr().is_terminal()).then(|| {
            let bar = ProgressBar::with_draw_target(Some(total as u64), ProgressDrawTarget::stderr());
            bar.set_style(
                ProgressStyle::with_template("{spinner} [{elapsed_precise}] {bar:30} {pos}/{len} {msg}").expect("valid template"),
            );
            bar
        });
        Progress { bar, json }
    }

    pub fn event(&self, event: Event) {
        if self.json {
            super::output::outln!("{}", json_line(&event));
            return;
        }
        let line = match &event {
            Event::Started { address, .. } => {
                if let Some(bar) = &self.bar {
                    bar.set_message(address.to_string());
                }
                return;
            }
            Event::Finished { address, action, elapsed } => format!("{:>3} {address}: done ({} ms)", action.symbol(), elapsed.as_millis()),
            Event::Failed { address, action, error } => format!("{:>3} {address}: FAILED: {error}", action.symbol()),
            // The summary lists what was skipped, one line per cluster; a line per node
            // would flood the terminal when an early node of a large fleet fails.
            Event::Skipped { .. } => return,
        };
        match &self.bar {
            Some(bar) => {
                if !matches!(event, Event::Skipped { .. }) {
                    bar.inc(1);
                }
                if !matches!(event, Event::Finished { .. }) {
                    bar.println(line);
                }
            }
            None => eprintln!("{line}"),
        }
    }

    pub fn finish(&self) {
        if let Some(bar) = &self.bar {
            bar.finish_and_clear();
        }
    }
}

fn json_line(event: &Event) -> String {
    let value = match event {
        Event::Started { address, action } => serde_json::json!({"event": "started", "address": address, "action": action}),
        Event::Finished { address, action, elapsed } => {
            serde_json::json!({"event": "finished", "address": address, "action": action, "elapsed_ms": elapsed.as_millis() as u64})
        }
        Event::Failed { address, action, error } => {
            serde_json::json!({"event": "failed", "address": address, "action": action, "error": error})
        }
        Event::Skipped { address, because } => serde_json::json!({"event": "skipped", "address": address, "because": because}),
    };
    value.to_string()
}
