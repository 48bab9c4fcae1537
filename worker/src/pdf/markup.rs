//! The markup templates produce: one block per line, marked by its first
//! characters, so the words of a document live in `templates/` and can be
//! edited without touching the layout code.

/// One block of a document, in reading order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Block {
    /// `^ text`: the banner at the top of the first page.
    Banner(String),
    /// `# text`: the title.
    Title(String),
    /// `> text`: a muted line, e.g. under the title.
    Lead(String),
    /// `## text`: a section heading.
    Heading(String),
    /// `1. text`: a numbered step, with its number as written.
    Step(String, String),
    /// `- text`: a bullet.
    Bullet(String),
    /// Any other text; consecutive lines join into one paragraph.
    Paragraph(String),
}

/// Splits rendered markup into blocks. A line that carries no marker
/// continues the step, bullet or paragraph above it (templates wrap long
/// sentences); a blank line ends it.
pub fn parse(source: &str) -> Vec<Block> {
    let mut blocks = Vec::new();
    let mut open = false;
    for line in source.lines() {
        let line = line.trim();
        if line.is_empty() {
            open = false;
            continue;
        }
        let block = if let Some(text) = line.strip_prefix("^ ") {
            Block::Banner(text.trim().to_owned())
        } else if let Some(text) = line.strip_prefix("## ") {
            Block::Heading(text.trim().to_owned())
        } else if let Some(text) = line.strip_prefix("# ") {
            Block::Title(text.trim().to_owned())
        } else if let Some(text) = line.strip_prefix("> ") {
            Block::Lead(text.trim().to_owned())
        } else if let Some(text) = line.strip_prefix("- ") {
            Block::Bullet(text.trim().to_owned())
        } else if let Some((number, text)) = step(line) {
            Block::Step(number.to_owned(), text.trim().to_owned())
        } else {
            if open
                && let Some(Block::Paragraph(text) | Block::Step(_, text) | Block::Bullet(text)) =
                    blocks.last_mut()
            {
                text.push(' ');
                text.push_str(line);
                continue;
            }
            Block::Paragraph(line.to_owned())
        };
        open = matches!(
            block,
            Block::Paragraph(_) | Block::Step(..) | Block::Bullet(_)
        );
        blocks.push(block);
    }
    blocks
}

/// `12. text` → (`12`, `text`).
fn step(line: &str) -> Option<(&str, &str)> {
    let (number, text) = line.split_once(". ")?;
    (!number.is_empty() && number.bytes().all(|b| b.is_ascii_digit())).then_some((number, text))
}

#[cfg(test)]
mod tests {
    use super::{Block, parse};

    #[test]
    fn each_marker_makes_its_block() {
        let blocks = parse("^ Guide\n# Ada\n> Since today\n## Start\n1. One\n- Dot\n\nPlain");
        assert_eq!(
            blocks,
            [
                Block::Banner("Guide".into()),
                Block::Title("Ada".into()),
                Block::Lead("Since today".into()),
                Block::Heading("Start".into()),
                Block::Step("1".into(), "One".into()),
                Block::Bullet("Dot".into()),
                Block::Paragraph("Plain".into()),
            ]
        );
    }

    #[test]
    fn unmarked_lines_continue_the_block_above_until_a_blank_line() {
        let blocks = parse("1. Upload\n   a photo.\nFirst\nsecond\n\nthird\n# T\nnot joined");
        assert_eq!(
            blocks,
            [
                Block::Step("1".into(), "Upload a photo. First second".into()),
                Block::Paragraph("third".into()),
                Block::Title("T".into()),
                Block::Paragraph("not joined".into()),
            ]
        );
    }

    #[test]
    fn a_sentence_with_a_full_stop_is_not_a_step() {
        assert_eq!(
            parse("Version 2. Not a step"),
            [Block::Paragraph("Version 2. Not a step".into())]
        );
    }
}
