//! Writes a sample onboarding guide to the path given, to look at the layout.
fn main() -> anyhow::Result<()> {
    let path = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "onboarding.pdf".into());
    let name = std::env::args()
        .nth(2)
        .unwrap_or_else(|| "Ada Lovelace".into());
    let pdf = worker::pdf::GuideRenderer::load()?;
    let doc = pdf.render(&worker::pdf::Onboarding {
        name: &name,
        signup_date: chrono::NaiveDate::from_ymd_opt(2026, 11, 22).expect("valid"),
        dashboard_url: "http://localhost:3000/",
    })?;
    std::fs::write(&path, doc.bytes)?;
    Ok(())
}
