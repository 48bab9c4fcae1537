//! Photo benchmark, Rust side: the image-resize job's work (decode once,
//! three centre-cropped squares, JPEG q80) on 12 MP JPEGs, against sharp
//! in `bench/node/images.mjs`. Driven by `scripts/bench-images`.
//!
//! It also measures the worst inputs the default limits accept (50 MP,
//! 100 MiB of decoder memory, 64 JPEG scans): what one such file costs in
//! time, and in memory with one per core at once.
//!
//! ```text
//! images generate <dir> <count>       write <count> 4000×3000 photo-like JPEGs
//! images run <dir> <threads> <n>      resize <n> inputs (cycling) on <threads> threads
//! images worst <dir>                  write the worst accepted input of each kind
//! images worst-run <file> <threads>   resize it on <threads> threads at once, default limits
//! ```
//! `run` and `worst-run` print one JSON line: throughput, per-image latency, peak RSS.

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
        "worst" => worst(Path::new(arg(1))),
        "worst-run" => worst_run(Path::new(arg(1)), number(2)?),
        _ => anyhow::bail!(
            "usage: images generate <dir> <count> | run <dir> <threads> <n> \
             | worst <dir> | worst-run <file> <threads>"
        ),
    }
}

/// Smooth colour fields, soft edges and fine grain: decodes and compresses
/// like a photograph (~3 MB at quality 90), not like noise or a flat fill.
fn generate(dir: &Path, count: usize) -> anyhow::Result<()> {
    std::fs::create_dir_all(dir)?;
    for n in 0..count {
        let pixels = photo_like(WIDTH, HEIGHT, n as f32 * 1.7);
        let jpeg = testkit::images::jpeg(WIDTH, HEIGHT, &pixels);
        std::fs::write(dir.join(format!("photo-{n:02}.jpg")), jpeg)?;
    }
    Ok(())
}

fn photo_like(width: u32, height: u32, seed: f32) -> Vec<u8> {
    testkit::images::rgb(width, height, |x, y| {
        let (fx, fy) = (x as f32 / width as f32, y as f32 / height as f32);
        let grain = ((x.wrapping_mul(73_856_093) ^ y.wrapping_mul(19_349_663)) % 17) as f32 - 8.0;
        let wave = |a: f32, b: f32, c: f32| ((fx * a + fy * b + seed) * c).sin();
        let channel = |base: f32, w: f32| (base + 70.0 * w + grain).clamp(0.0, 255.0) as u8;
        [
            channel(140.0, wave(3.0, 1.0, 2.1)),
            channel(120.0, wave(1.0, 4.0, 1.3) * wave(2.0, 2.0, 0.7)),
            channel(100.0, wave(5.0, 3.0, 0.9)),
        ]
    })
}

/// The default limits, as the worker applies them.
fn default_limits() -> imaging::Limits {
    imaging::Limits {
        max_pixels: 50_000_000,
        max_decode_bytes: 100 * 1024 * 1024,
        deadline: Instant::now() + std::time::Duration::from_secs(3600),
    }
}

/// The most expensive file of each kind that the default limits let in.
fn worst(dir: &Path) -> anyhow::Result<()> {
    std::fs::create_dir_all(dir)?;
    // 50 MP baseline JPEG: the pixel limit, decoded at 2/8 scale.
    let (w, h) = (8660, 5773);
    let baseline = testkit::images::jpeg(w, h, &photo_like(w, h, 0.3));
    std::fs::write(dir.join("baseline-jpeg-50mp.jpg"), &baseline)?;
    // Progressive at the memory budget (29 MP: 99 MB of coefficients and
    // output), about as dense as the upload limit allows (random pixels in
    // the upper half): decoding time follows the entropy-coded data. Extra
    // scans cost little more: a repeated scan is refused by libjpeg itself
    // ("inconsistent progression"), a valid one over a flat area is a run
    // of end-of-block codes, and more than 64 are refused before decoding.
    let (w, h) = (6600, 4400);
    let mut pixels = photo_like(w, h, 0.9);
    let noise = testkit::images::noise(w, h / 2);
    pixels[..noise.len()].copy_from_slice(&noise);
    let progressive = testkit::images::progressive(&testkit::images::jpeg(w, h, &pixels));
    std::fs::write(dir.join("progressive-jpeg-29mp-dense.jpg"), &progressive)?;
    // 50 MP 16-bit RGBA PNG: 400 MB decoded whole, read row by row.
    let (w, h) = (8660, 5773);
    let png = testkit::images::rgba16_png(w, h, [50_000, 20_000, 9_000, 40_000]);
    std::fs::write(dir.join("png-16bit-rgba-50mp.png"), &png)?;
    // Lossless WebP with alpha at the budget: 26 MP × 4 bytes, decoded
    // whole. Smooth, so that it fits the upload limit.
    let (w, h) = (5100, 5100);
    let rgba = testkit::images::rgb(w, h, |x, y| [(x / 20) as u8, (y / 20) as u8, 128])
        .chunks_exact(3)
        .flat_map(|p| [p[0], p[1], p[2], 200])
        .collect();
    let webp = testkit::images::rgba_webp(w, h, rgba);
    std::fs::write(dir.join("webp-rgba-26mp.webp"), webp)?;
    for entry in std::fs::read_dir(dir)? {
        let path = entry?.path();
        let size = std::fs::metadata(&path)?.len();
        anyhow::ensure!(size <= 20 * 1024 * 1024, "{}: {size} bytes", path.display());
        let header = media::header(&std::fs::read(&path)?)
            .ok_or_else(|| anyhow::anyhow!("{}: no header", path.display()))?;
        imaging::decode::check(&header, &default_limits())
            .map_err(|e| anyhow::anyhow!("{} is not accepted: {e}", path.display()))?;
    }
    Ok(())
}

/// Resizes `file` on `threads` threads at once, under the default limits.
fn worst_run(file: &Path, threads: usize) -> anyhow::Result<()> {
    let input = std::fs::read(file)?;
    let latencies: Vec<f64> = std::thread::scope(|scope| {
        let workers: Vec<_> = (0..threads)
            .map(|_| {
                scope.spawn(|| {
                    let start = Instant::now();
                    process(&input, &default_limits()).expect("a worst case is still accepted");
                    start.elapsed().as_secs_f64() * 1_000.0
                })
            })
            .collect();
        workers
            .into_iter()
            .map(|worker| worker.join().expect("a benchmark thread panicked"))
            .collect()
    });
    let line = json!({
        "case": file.file_name().map(|name| name.to_string_lossy()),
        "bytes": input.len(),
        "threads": threads,
        "max_ms": latencies.iter().copied().fold(0.0, f64::max),
        "peak_rss_mb": testkit::peak_rss_mb(),
    });
    writeln!(std::io::stdout(), "{line}")?;
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
