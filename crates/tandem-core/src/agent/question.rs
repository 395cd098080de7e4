//! Whether an agent's turn ended with a question to the user.
//!
//! No agent says so in its protocol: Claude Code's `Stop` hook and
//! `result`, Codex's `turn/completed` and Gemini's prompt response only
//! say the turn is over. So the agent's last message of the turn decides,
//! by a heuristic: its last paragraph (text after the last blank line),
//! with trailing Markdown emphasis, quotes and brackets taken off, ends
//! with `?`. A turn whose last message ends in a code block, or that has
//! no message, is not a question. Such a turn shows as `asking` (in the
//! NEEDS INPUT group) with the question, instead of `idle`.

/// The most characters of a question kept for the row.
pub const MAX_QUESTION: usize = 300;

/// The question `message` ends with, if it ends with one: the last line
/// of its last paragraph (list and quote markers taken off), or of that
/// line only its last sentence when the line is longer than
/// [`MAX_QUESTION`].
#[must_use]
pub fn asked(message: &str) -> Option<String> {
    let text = message.replace("\r\n", "\n");
    let paragraph = text.rsplit("\n\n").map(str::trim).find(|p| !p.is_empty())?;
    let line = paragraph.lines().map(str::trim).rfind(|l| !l.is_empty())?;
    if line.starts_with("```") || line.starts_with("~~~") {
        return None;
    }
    let end = line.trim_end_matches(['*', '_', '`', '"', '\'', '”', '’', ')', ']', ' ']);
    if !(end.ends_with('?') || end.ends_with('？')) {
        return None;
    }
    let line = plain(line);
    let question = if line.chars().count() > MAX_QUESTION { last_sentence(line) } else { line };
    let question: String = question.chars().take(MAX_QUESTION).collect();
    (!question.is_empty()).then_some(question)
}

/// `line` without a list, quote or heading marker in front and without
/// emphasis around it: `- **Which one?**` is `Which one?`.
fn plain(line: &str) -> &str {
    let mut line = line;
    for marker in ["- ", "* ", "+ ", "> "] {
        line = line.strip_prefix(marker).unwrap_or(line).trim_start();
    }
    let heading = line.trim_start_matches('#');
    if heading.len() < line.len() && heading.starts_with(' ') {
        line = heading.trim_start();
    }
    for mark in ["**", "__", "*", "_"] {
        if line.len() > 2 * mark.len()
            && let Some(inner) = line.strip_prefix(mark).and_then(|l| l.strip_suffix(mark))
        {
            return inner.trim();
        }
    }
    line
}

/// The last sentence of `line`: what follows the last `. `, `! ` or `? `
/// before its end.
fn last_sentence(line: &str) -> &str {
    let body = line.trim_end_matches(|c: char| !c.is_alphanumeric());
    [". ", "! ", "? "]
        .iter()
        .filter_map(|sep| body.rfind(sep).map(|i| i + sep.len()))
        .max()
        .map_or(line, |i| &line[i..])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_last_paragraph_ending_in_a_question_mark_is_a_question() {
        assert_eq!(asked("Which database should I use?").as_deref(), Some("Which database should I use?"));
        assert_eq!(
            asked("I looked at the schema.\n\nOptions:\n- Postgres\n- SQLite\n\n**Which one do you prefer?**\n")
                .as_deref(),
            Some("Which one do you prefer?")
        );
        assert_eq!(asked("Done. Want me to push it (y/n)?").as_deref(), Some("Done. Want me to push it (y/n)?"));
        assert_eq!(asked("Is it `a` or `b`?").as_deref(), Some("Is it `a` or `b`?"));
        assert_eq!(asked("- *Keep* the old one?").as_deref(), Some("*Keep* the old one?"));
        assert_eq!(asked("## Next?").as_deref(), Some("Next?"));
        let long = format!("{}. Shall I go on?", "word ".repeat(80).trim());
        assert_eq!(asked(&long).as_deref(), Some("Shall I go on?"));
    }

    #[test]
    fn other_endings_are_not_questions() {
        assert_eq!(asked("Committed hello.txt."), None);
        assert_eq!(asked("Why did it fail? The lock was stale.\n\nFixed it."), None);
        assert_eq!(asked("Run this:\n```sh\nls?\n```"), None);
        assert_eq!(asked(""), None);
        assert_eq!(asked("\n\n  \n"), None);
    }
}
