//! Photo benchmark, Rust side: the image-resize job's work (decode once,
//! three centre-cropped squares, JPEG q80) on 12 MP JPEGs, against sharp
//! in `bench/node/images.mjs`. Driven by `scripts/bench-images`.
//!
//! ```text
//! images generate <dir> <count>     write <count> 4000×3000 photo-like JPEGs
//! images run <dir> <threads> <n>    resize <n> inputs (cycling) on <threads> threads
//! ```
//! `run` prints one JSON line: throughput, per-image latency, peak RSS.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Instant;

use imaging::process;
use serde_json::json;

const WIDTH: u32 = 4000;
const HEIGHT: u32 = 3000;

fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| a != "--bench")
        .collect();
    let arg = |i: usize| args.get(i).map(String::as_str).unwrap_or_default();
    let number = |i: usize| arg(i).parse::<usize>();
    match arg(0) {
        "generate" => generate(Path::new(arg(1)), number(2)?),
        "run" => run(Path::new(arg(1)), number(2)?, number(3)?),
        _ => anyhow::bail!("usage: images generate <dir> <count> | run <dir> <threads> <n>"),
    }
}

/// Smooth colour fields, soft edges and fine grain: decodes and compresses
/// like a photograph (~3 MB at quality 90), not like noise or a flat fill.
fn generate(dir: &Path, count: usize) -> anyhow::Result<()> {
    std::fs::create_dir_all(dir)?;
    for n in 0..count {
        let seed = n as f32 * 1.7;
        let pixels = testkit::images::rgb(WIDTH, HEIGHT, |x, y| {
            let (fx, fy) = (x as f32 / WIDTH as f32, y as f32 / HEIGHT as f32);
            let grain =
                ((x.wrapping_mul(73_856_093) ^ y.wrapping_mul(19_349_663)) % 17) as f32 - 8.0;
            let wave = |a: f32, b: f32, c: f32| ((fx * a + fy * b + seed) * c).sin();
            let channel = |base: f32, w: f32| (base + 70.0 * w + grain).clamp(0.0, 255.0) as u8;
            [
                channel(140.0, wave(3.0, 1.0, 2.1)),
                channel(120.0, wave(1.0, 4.0, 1.3) * wave(2.0, 2.0, 0.7)),
                channel(100.0, wave(5.0, 3.0, 0.9)),
            ]
        });
        let jpeg = testkit::images::jpeg(WIDTH, HEIGHT, &pixels);
        std::fs::write(dir.join(format!("photo-{n:02}.jpg")), jpeg)?;
    }
    Ok(())
}

fn run(dir: &Path, threads: usize, total: usize) -> anyhow::Result<()> {
    let mut paths: Vec<PathBuf> = std::fs::read_dir(dir)?
        .map(|entry| entry.map(|e| e.path()))
        .collect::<Result<_, _>>()?;
    paths.sort();
    let inputs: Vec<Vec<u8>> = paths.iter().map(std::fs::read).collect::<Result<_, _>>()?;
    anyhow::ensure!(!inputs.is_empty(), "no inputs in {}", dir.display());

    // Threads take inputs in turn until `total` are done; every one is timed.
    let next = AtomicUsize::new(0);
    let started = Instant::now();
    let mut latencies: Vec<f64> = std::thread::scope(|scope| {
        let workers: Vec<_> = (0..threads)
            .map(|_| {
                scope.spawn(|| {
                    let mut mine = Vec::new();
                    loop {
                        let n = next.fetch_add(1, Ordering::Relaxed);
                        if n >= total {
                            break mine;
                        }
                        let start = Instant::now();
                        let limits = imaging::Limits {
                            max_pixels: u64::MAX,
                            max_decode_bytes: u64::MAX,
                            deadline: start + std::time::Duration::from_secs(3600),
                        };
                        let processed = process(&inputs[n % inputs.len()], &limits)
                            .expect("the benchmark inputs are valid");
                        assert_eq!(processed.outputs.len(), 3);
                        mine.push(start.elapsed().as_secs_f64() * 1_000.0);
                    }
                })
            })
            .collect();
        workers
            .into_iter()
            .flat_map(|worker| worker.join().expect("a benchmark thread panicked"))
            .collect()
    });
    let elapsed = started.elapsed().as_secs_f64();
    latencies.sort_by(f64::total_cmp);
    let line = json!({
        "impl": "rust",
        "threads": threads,
        "images": total,
        "images_per_sec": total as f64 / elapsed,
        "p50_ms": latencies[latencies.len() / 2],
        "peak_rss_mb": testkit::peak_rss_mb(),
    });
    writeln!(std::io::stdout(), "{line}")?;
    Ok(())
}
