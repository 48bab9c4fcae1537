//! PDF benchmark: how long one onboarding guide takes to render (template,
//! layout, shaping, font subsetting, compression), on one core, as the
//! onboarding-pdf job does it on a blocking thread.
//!
//! `cargo bench -p worker --bench pdf [documents]` prints one JSON line per
//! name: a Latin one (DejaVu only) and a Japanese one (the fallback font is
//! subset too).

use std::io::Write;
use std::time::{Duration, Instant};

use chrono::NaiveDate;
use serde_json::json;
use worker::pdf::{GuideRenderer, Onboarding};

fn main() -> anyhow::Result<()> {
    let documents: usize = std::env::args()
        .skip(1)
        .find_map(|arg| arg.parse().ok())
        .unwrap_or(300);
    let started = Instant::now();
    let pdf = GuideRenderer::load()?;
    let load = started.elapsed();
    for name in ["Ada Lovelace", "山田 太郎"] {
        let guide = Onboarding {
            name,
            signup_date: NaiveDate::from_ymd_opt(2026, 11, 22).expect("a valid date"),
            dashboard_url: "https://app.acme.test/",
        };
        // Warm caches and the allocator before timing.
        for _ in 0..10 {
            pdf.render(&guide)?;
        }
        let mut times = Vec::with_capacity(documents);
        let mut bytes = 0;
        for _ in 0..documents {
            let start = Instant::now();
            let document = pdf.render(&guide)?;
            times.push(start.elapsed());
            bytes = document.bytes.len();
        }
        times.sort_unstable();
        let ms = |d: Duration| (d.as_secs_f64() * 1e6).round() / 1e3;
        let at = |q: f64| times[((times.len() - 1) as f64 * q) as usize];
        let total: Duration = times.iter().sum();
        let line = json!({
            "name": name,
            "documents": documents,
            "p50_ms": ms(at(0.5)),
            "p99_ms": ms(at(0.99)),
            "min_ms": ms(times[0]),
            "per_core_per_s": (documents as f64 / total.as_secs_f64()).round(),
            "bytes": bytes,
            "load_fonts_and_template_ms": ms(load),
        });
        writeln!(std::io::stdout(), "{line}")?;
    }
    Ok(())
}
