//! Progress bars on stderr for `shardvec build`: the writer's
//! [`Progress`] reports drawn with indicatif.

use std::collections::HashMap;
use std::sync::Mutex;

use indicatif::{ProgressBar, ProgressStyle};
use shardvec::writer::{Phase, Progress};

/// One bar per phase, drawn while the phase runs.
#[derive(Debug, Default)]
pub struct Bars {
    bars: Mutex<HashMap<Phase, ProgressBar>>,
}

impl Bars {
    fn with(&self, phase: Phase, f: impl FnOnce(&ProgressBar)) {
        if let Ok(bars) = self.bars.lock() {
            if let Some(bar) = bars.get(&phase) {
                f(bar);
            }
        }
    }
}

impl Progress for Bars {
    fn start(&self, phase: Phase, total: Option<u64>) {
        let bar = match total {
            Some(n) => ProgressBar::new(n),
            None => ProgressBar::new_spinner(),
        };
        let unit = if phase.counts_bytes() {
            "{bytes}/{total_bytes} ({bytes_per_sec})"
        } else {
            "{human_pos}/{human_len} ({per_sec})"
        };
        let template = if total.is_some() {
            format!("{{prefix:>8}} [{{bar:30}}] {unit} {{eta}}")
        } else {
            "{prefix:>8} {spinner} {human_pos} ({per_sec})".to_string()
        };
        if let Ok(style) = ProgressStyle::with_template(&template) {
            bar.set_style(style.progress_chars("=> "));
        }
        bar.set_prefix(phase.as_str());
        if let Ok(mut bars) = self.bars.lock() {
            bars.insert(phase, bar);
        }
    }

    fn advance(&self, phase: Phase, n: u64) {
        self.with(phase, |bar| bar.inc(n));
    }

    fn finish(&self, phase: Phase) {
        self.with(phase, ProgressBar::finish_and_clear);
    }
}
