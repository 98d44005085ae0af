//! Chart rendering times: generates the province demo in a temporary
//! warehouse, computes every indicator once, then renders each one many
//! times as SVG and PNG and prints the median per format against the goals
//! (SVG ≤ 5 ms, PNG ≤ 50 ms). Run with `cargo bench --bench charts`.

use std::time::{Duration, Instant};

use indicatif::ProgressBar;
use osservatorio::catalog::{Dictionary, Warehouse};
use osservatorio::charts::{render, ChartOptions, ImageFormat};
use osservatorio::generate::{generate, GenerateOptions, Scale};
use osservatorio::indicators::{IndicatorCatalog, ParameterValues};
use osservatorio::query::{QueryEngine, QueryLimits};

const RUNS: usize = 30;

fn median(mut times: Vec<Duration>) -> Duration {
    times.sort();
    times[times.len() / 2]
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let warehouse = Warehouse::create(dir.path(), std::sync::Arc::new(Dictionary::load()?)).await?;
    generate(
        &warehouse,
        GenerateOptions {
            scale: Scale::Province,
            seed: 1,
        },
        &ProgressBar::hidden(),
    )
    .await?;
    let engine = QueryEngine::open(&warehouse, QueryLimits::default()).await?;
    let queries = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("queries");
    let catalog = IndicatorCatalog::load(&queries, &engine, 5).await?;
    let mut all: Vec<(ImageFormat, Duration)> = Vec::new();
    let mut slowest = [Duration::ZERO; 2];
    println!(
        "{:<32} {:>12} {:>12}",
        "indicator", "svg median", "png median"
    );
    for indicator in catalog.indicators() {
        let result = catalog
            .run(&engine, &indicator.spec.id, &ParameterValues::new())
            .await?;
        let mut medians = Vec::new();
        for format in [ImageFormat::Svg, ImageFormat::Png] {
            let times: Vec<Duration> = (0..RUNS)
                .map(|_| {
                    let start = Instant::now();
                    let image = render(&result, catalog.labels(), ChartOptions::default(), format)
                        .expect("render");
                    std::hint::black_box(image);
                    start.elapsed()
                })
                .collect();
            all.extend(times.iter().map(|t| (format, *t)));
            medians.push(median(times));
        }
        slowest[0] = slowest[0].max(medians[0]);
        slowest[1] = slowest[1].max(medians[1]);
        println!(
            "{:<32} {:>10.2}ms {:>10.2}ms",
            indicator.spec.id,
            ms(medians[0]),
            ms(medians[1])
        );
    }
    let of = |format| {
        median(
            all.iter()
                .filter(|(f, _)| *f == format)
                .map(|(_, t)| *t)
                .collect(),
        )
    };
    let (svg, png) = (of(ImageFormat::Svg), of(ImageFormat::Png));
    println!("\nall charts, 800×480: SVG median {:.2} ms (goal ≤ 5 ms), PNG median {:.2} ms (goal ≤ 50 ms)", ms(svg), ms(png));
    println!(
        "slowest chart's median: SVG {:.2} ms, PNG {:.2} ms",
        ms(slowest[0]),
        ms(slowest[1])
    );
    // One line per format for the harness's table of ratios, when asked.
    if let Some(path) = std::env::var_os("BENCH_SUMMARY") {
        use std::io::Write;
        let mut summary = std::fs::OpenOptions::new()
            .append(true)
            .create(true)
            .open(path)?;
        for (format, all_median, worst, goal) in [
            ("SVG", svg, slowest[0], 5.0),
            ("PNG", png, slowest[1], 50.0),
        ] {
            writeln!(
                summary,
                "{format} chart, median of all (slowest chart)\t{:.2} ms ({:.2} ms)\t≤ {goal} ms\t{}",
                ms(all_median),
                ms(worst),
                if ms(worst) <= goal { "met" } else { "NOT met" }
            )?;
        }
    }
    Ok(())
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}
