//! The onboarding guide every new user gets: their name, the day they
//! signed up and the first steps, from `templates/pdf/onboarding.txt`.

use anyhow::{Context as _, anyhow};
use chrono::NaiveDate;
use krilla::metadata::Metadata;
use minijinja::Environment;
use serde::Serialize;

use super::fonts::Fonts;
use super::layout::{Typeset, typeset};
use super::markup;

const TEMPLATE: &str = "onboarding.txt";

/// The template and fonts, parsed once at start-up and compiled into the
/// binary, so a deploy cannot ship without them.
pub struct GuideRenderer {
    templates: Environment<'static>,
    fonts: Fonts,
}

/// What makes a guide personal.
#[derive(Debug, Clone, Serialize)]
pub struct Onboarding<'a> {
    /// The user's display name, in any script DejaVu Sans or Droid Sans
    /// Fallback covers.
    pub name: &'a str,
    /// The day the user signed up.
    pub signup_date: NaiveDate,
    /// Where the dashboard lives (`PUBLIC_URL`).
    pub dashboard_url: &'a str,
}

impl GuideRenderer {
    /// Parses the template and both fonts; a broken one stops the worker at
    /// start-up instead of failing every job.
    pub fn load() -> anyhow::Result<Self> {
        let mut templates = Environment::new();
        templates
            .add_template(
                TEMPLATE,
                include_str!("../../../templates/pdf/onboarding.txt"),
            )
            .context("template pdf/onboarding.txt does not parse")?;
        let fonts = Fonts::embedded()?;
        Ok(Self { templates, fonts })
    }

    /// Renders one guide. CPU-bound (shaping, font subsetting, compression):
    /// call it on a blocking thread.
    pub fn render(&self, onboarding: &Onboarding<'_>) -> anyhow::Result<Typeset> {
        let source = self
            .templates
            .get_template(TEMPLATE)
            .and_then(|template| {
                template.render(minijinja::context! {
                    name => onboarding.name,
                    signup_date => onboarding.signup_date.format("%-d %B %Y").to_string(),
                    dashboard_url => onboarding.dashboard_url,
                })
            })
            .context("could not render template pdf/onboarding.txt")?;
        let metadata = Metadata::new()
            .title(format!("Getting started with Acme: {}", onboarding.name))
            .authors(vec!["Acme".to_owned()])
            .creator("Acme worker".to_owned())
            .language("en".to_owned());
        typeset(&self.fonts, &markup::parse(&source), metadata)
            .map_err(|error| anyhow!("could not write the PDF: {error}"))
    }
}
