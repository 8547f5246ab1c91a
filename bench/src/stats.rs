//! Summaries of the samples and the report (table or JSON).

use std::time::Duration;

use serde_json::{json, Value};

use crate::cycle::Phases;

/// Median, p90 (nearest rank) and mean, in milliseconds.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Summary {
    pub median: f64,
    pub p90: f64,
    pub mean: f64,
}

pub fn summarize(samples: &[Duration]) -> Summary {
    let mut ms: Vec<f64> = samples.iter().map(|d| d.as_secs_f64() * 1e3).collect();
    if ms.is_empty() {
        return Summary {
            median: f64::NAN,
            p90: f64::NAN,
            mean: f64::NAN,
        };
    }
    ms.sort_by(f64::total_cmp);
    let n = ms.len();
    let median = if n % 2 == 1 {
        ms[n / 2]
    } else {
        (ms[n / 2 - 1] + ms[n / 2]) / 2.0
    };
    let p90 = ms[(n * 9).div_ceil(10).max(1) - 1];
    Summary {
        median,
        p90,
        mean: ms.iter().sum::<f64>() / n as f64,
    }
}

/// Results for one runtime.
pub struct RuntimeResult {
    pub name: String,
    pub bin: String,
    pub version: String,
    pub samples: Vec<Phases>,
    /// Set if the runtime failed part-way; its samples so far are kept.
    pub error: Option<String>,
}

impl RuntimeResult {
    pub fn total(&self) -> Summary {
        summarize(&self.samples.iter().map(Phases::total).collect::<Vec<_>>())
    }

    fn phase(&self, f: fn(&Phases) -> Duration) -> Summary {
        summarize(&self.samples.iter().map(f).collect::<Vec<_>>())
    }

    fn phase_medians(&self) -> [f64; 4] {
        [
            self.phase(|p| p.create).median,
            self.phase(|p| p.start).median,
            self.phase(|p| p.wait).median,
            self.phase(|p| p.delete).median,
        ]
    }
}

/// Ratio of medians `r / base`, if `base` was measured.
fn ratio(results: &[RuntimeResult], r: &RuntimeResult, base: &str) -> Option<f64> {
    let b = results
        .iter()
        .find(|x| x.name == base && !x.samples.is_empty())?;
    (!r.samples.is_empty()).then(|| r.total().median / b.total().median)
}

pub fn print_table(results: &[RuntimeResult]) {
    println!(
        "{:<12} {:>5} {:>8} {:>8} {:>8} | {:>7} {:>7} {:>7} {:>7} | {:>7} {:>7}",
        "runtime",
        "n",
        "median",
        "p90",
        "mean",
        "create",
        "start",
        "wait",
        "delete",
        "x crun",
        "x runc"
    );
    let fmt_ratio = |r: Option<f64>| r.map_or("-".to_string(), |x| format!("{x:.2}"));
    for r in results {
        if r.samples.is_empty() {
            println!("{:<12} no samples", r.name);
            continue;
        }
        let s = r.total();
        let [c, st, w, d] = r.phase_medians();
        println!(
            "{:<12} {:>5} {:>8.2} {:>8.2} {:>8.2} | {:>7.2} {:>7.2} {:>7.2} {:>7.2} | {:>7} {:>7}",
            r.name,
            r.samples.len(),
            s.median,
            s.p90,
            s.mean,
            c,
            st,
            w,
            d,
            fmt_ratio(ratio(results, r, "crun")),
            fmt_ratio(ratio(results, r, "runc"))
        );
    }
    println!("(ms per cycle; phase columns are per-phase medians; ratios are of medians)");
    for r in results {
        println!("  {}: {} ({})", r.name, r.version, r.bin);
        if let Some(e) = &r.error {
            println!("  {}: FAILED: {e}", r.name);
        }
    }
}

pub fn to_json(
    results: &[RuntimeResult],
    iterations: usize,
    warmup: usize,
    skipped: &[(String, String)],
) -> Value {
    let ms = |d: Duration| d.as_secs_f64() * 1e3;
    let runtimes: Vec<Value> = results
        .iter()
        .map(|r| {
            let s = r.total();
            let [c, st, w, d] = r.phase_medians();
            json!({
                "name": r.name,
                "bin": r.bin,
                "version": r.version,
                "n": r.samples.len(),
                "median_ms": s.median,
                "p90_ms": s.p90,
                "mean_ms": s.mean,
                "phase_median_ms": { "create": c, "start": st, "wait": w, "delete": d },
                "vs_crun": ratio(results, r, "crun"),
                "vs_runc": ratio(results, r, "runc"),
                "error": r.error,
                "samples_ms": r.samples.iter().map(|p| ms(p.total())).collect::<Vec<_>>(),
            })
        })
        .collect();
    json!({
        "benchmark": "create+start+wait+delete of `true` (busybox bundle)",
        "iterations": iterations,
        "warmup": warmup,
        "runtimes": runtimes,
        "skipped": skipped.iter().map(|(n, why)| json!({"name": n, "reason": why})).collect::<Vec<_>>(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn summary_of_known_samples() {
        let d: Vec<Duration> = (1..=10).map(Duration::from_millis).collect();
        let s = summarize(&d);
        assert_eq!(s.median, 5.5);
        assert_eq!(s.p90, 9.0);
        assert_eq!(s.mean, 5.5);
        let s = summarize(&[Duration::from_millis(3)]);
        assert_eq!((s.median, s.p90, s.mean), (3.0, 3.0, 3.0));
    }
}
