//! The printed table: one line per workload, the measurement and its same-run baseline side by
//! side, then the failures (if any) spelled out.

use std::time::Duration;

use crate::load::Sample;

/// One measured workload and the baseline it is read against.
pub struct Row {
    pub workload: &'static str,
    pub subject: &'static str,
    pub sample: Sample,
    /// `non-202`, `non-200`: what a failure is for this workload.
    pub failure_word: &'static str,
    pub unit: &'static str,
    /// Index into the report's baselines (several rows may share one).
    pub baseline: usize,
}

pub struct Baseline {
    pub label: &'static str,
    pub sample: Sample,
    pub failure_word: &'static str,
    pub unit: &'static str,
}

pub struct Report {
    pub backend: &'static str,
    pub rows: Vec<Row>,
    pub baselines: Vec<Baseline>,
    pub notes: Vec<String>,
}

/// `12345.6` → `12,346`.
pub fn thousands(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

pub fn ms(d: Option<Duration>) -> String {
    match d {
        None => "-".into(),
        Some(d) => {
            let ms = d.as_secs_f64() * 1000.0;
            if ms < 10.0 { format!("{ms:.2} ms") } else { format!("{ms:.1} ms") }
        }
    }
}

fn size(bytes: u64) -> String {
    if bytes < 10_000 { format!("{bytes} B") } else { format!("{} KB", thousands(bytes.div_ceil(1000))) }
}

/// The cells that describe one sample: count, rate, p50, p95, p99, failures.
fn cells(s: &Sample, unit: &str, failure_word: &str) -> Vec<String> {
    let count = if s.timed_out {
        format!("{}/{} (time limit)", thousands(s.done as u64), thousands(s.planned as u64))
    } else {
        thousands(s.done as u64)
    };
    vec![
        count,
        format!("{} {unit}/s", thousands(s.rate().round() as u64)),
        format!("p50 {}", ms(s.percentile(50.0))),
        format!("p95 {}", ms(s.percentile(95.0))),
        format!("p99 {}", ms(s.percentile(99.0))),
        format!("{failure_word} {}", s.failed()),
        if s.bytes > 0 { format!("body {}", size(s.mean_bytes())) } else { "body -".into() },
    ]
}

impl Report {
    pub fn render(&self) -> String {
        let mut lines: Vec<Vec<String>> = Vec::new();
        for row in &self.rows {
            let base = &self.baselines[row.baseline];
            let mut line = vec![self.backend.to_owned(), row.workload.to_owned(), row.subject.to_owned()];
            line.extend(cells(&row.sample, row.unit, row.failure_word));
            line.push("|".into());
            line.push(format!("baseline {}", base.label));
            line.extend(cells(&base.sample, base.unit, base.failure_word));
            line.push("|".into());
            let ratio = if base.sample.rate() > 0.0 { row.sample.rate() / base.sample.rate() } else { f64::NAN };
            line.push(format!("{ratio:.2}x baseline rate"));
            lines.push(line);
        }
        // Text columns are left-aligned, numbers right-aligned.
        let mut out = align(&lines, &|col| matches!(col, 0..=2 | 10 | 11 | 19 | 20));
        let mut failures = Vec::new();
        let all = self
            .rows
            .iter()
            .map(|r| (format!("{} {}", r.workload, r.subject), &r.sample))
            .chain(self.baselines.iter().map(|b| (format!("baseline {}", b.label), &b.sample)));
        for (what, sample) in all {
            for (kind, (n, detail)) in &sample.failures {
                failures.push(format!("  {} {what}: {n} x {kind}; first: {detail}", self.backend));
            }
        }
        if !failures.is_empty() {
            out.push_str("failures:\n");
            for f in failures {
                out.push_str(&f);
                out.push('\n');
            }
        }
        for note in &self.notes {
            out.push_str(&format!("  {}: {note}\n", self.backend));
        }
        out
    }
}

/// Lines of cells as a table: each column as wide as its widest cell, cells two spaces apart,
/// left-aligned where `left(column)`, right-aligned elsewhere.
pub fn align(lines: &[Vec<String>], left: &dyn Fn(usize) -> bool) -> String {
    let columns = lines.iter().map(Vec::len).max().unwrap_or(0);
    let widths: Vec<usize> = (0..columns)
        .map(|c| lines.iter().filter_map(|l| l.get(c)).map(|s| s.chars().count()).max().unwrap_or(0))
        .collect();
    let mut out = String::new();
    for line in lines {
        let mut text = String::new();
        for (c, cell) in line.iter().enumerate() {
            if c > 0 {
                text.push_str("  ");
            }
            let w = widths[c];
            if left(c) { text.push_str(&format!("{cell:<w$}")) } else { text.push_str(&format!("{cell:>w$}")) }
        }
        out.push_str(text.trim_end());
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::thousands;

    #[test]
    fn thousands_are_grouped() {
        assert_eq!(thousands(0), "0");
        assert_eq!(thousands(999), "999");
        assert_eq!(thousands(1_000), "1,000");
        assert_eq!(thousands(2_650), "2,650");
        assert_eq!(thousands(1_234_567), "1,234,567");
    }
}
