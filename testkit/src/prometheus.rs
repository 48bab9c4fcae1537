//! Reading Prometheus's text format as a scraper would, strictly: every
//! sample line must parse, or the test fails.

use std::collections::BTreeMap;

/// One scrape: samples by their full series name
/// (`jobs_completed_total{queue="welcome-email"}`), and the declared types.
#[derive(Debug, Default)]
pub struct Scrape {
    samples: BTreeMap<String, f64>,
    types: BTreeMap<String, String>,
}

impl Scrape {
    /// Parses `text`; panics on a line a Prometheus server would refuse.
    pub fn parse(text: &str) -> Self {
        let mut scrape = Self::default();
        for line in text.lines().map(str::trim).filter(|line| !line.is_empty()) {
            if let Some(declaration) = line.strip_prefix("# TYPE ") {
                let (name, kind) = declaration.split_once(' ').expect("# TYPE <name> <type>");
                assert!(
                    ["counter", "gauge", "histogram", "summary", "untyped"].contains(&kind),
                    "unknown type in {line:?}"
                );
                scrape.types.insert(name.to_owned(), kind.to_owned());
                continue;
            }
            if line.starts_with('#') {
                continue;
            }
            let (series, value) = line.rsplit_once(' ').expect("<series> <value>");
            let name = series.split('{').next().unwrap_or_default();
            assert!(
                !name.is_empty()
                    && name
                        .chars()
                        .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':'),
                "bad metric name in {line:?}"
            );
            if let Some(labels) = series.strip_prefix(name) {
                assert!(
                    labels.is_empty() || (labels.starts_with('{') && labels.ends_with('}')),
                    "bad labels in {line:?}"
                );
            }
            let value = match value {
                "+Inf" => f64::INFINITY,
                "-Inf" => f64::NEG_INFINITY,
                other => other
                    .parse()
                    .unwrap_or_else(|_| panic!("bad value in {line:?}")),
            };
            scrape.samples.insert(series.to_owned(), value);
        }
        scrape
    }

    /// Scrapes `url` and parses what it answers; the text too, for messages.
    pub async fn fetch(client: &crate::Client, url: &str) -> (Self, String) {
        let text = client
            .get(url)
            .send()
            .await
            .expect("the scrape is answered")
            .text()
            .await
            .expect("the scrape is text");
        (Self::parse(&text), text)
    }

    /// The value of `series` (name and labels exactly as exposed), if present.
    pub fn get(&self, series: &str) -> Option<f64> {
        self.samples.get(series).copied()
    }

    /// The value of `series`, 0 when absent (a counter not yet incremented).
    pub fn value(&self, series: &str) -> f64 {
        self.get(series).unwrap_or(0.0)
    }

    /// The declared type of metric `name`.
    pub fn kind(&self, name: &str) -> Option<&str> {
        self.types.get(name).map(String::as_str)
    }
}
