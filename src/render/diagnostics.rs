//! Rendering declaration problems ([`DeclReport`]) as miette draws them on a terminal: one
//! snippet with a caret per problem, then a summary line. A problem about a person's data (see
//! [`DeclProblem::is_personal`]) shows its place, never a snippet of the line. Must not decide
//! what is a problem.

use miette::{GraphicalReportHandler, GraphicalTheme};

use crate::decl::{DeclProblem, DeclReport};

/// Render a report as miette would on a terminal; `color=false` gives plain text (for CI logs and
/// snapshots). `width` is the column count text is wrapped to.
pub fn render_report(report: &DeclReport, color: bool, width: usize) -> String {
    let theme = if color {
        GraphicalTheme::unicode()
    } else {
        GraphicalTheme::unicode_nocolor()
    };
    let handler = GraphicalReportHandler::new_themed(theme)
        .with_width(width)
        .with_links(false)
        .with_urls(false);
    let mut out = String::new();
    for problem in report.problems() {
        // Writing into a String cannot fail; a renderer error (a span outside its source) still
        // leaves the header, so the problem is never silently dropped.
        let start = out.len();
        if handler.render_report(&mut out, problem).is_err() {
            out.push_str(&format!("  × {problem}\n"));
        }
        if problem.is_personal() {
            insert_place(&mut out, start, problem);
        }
        out.push('\n');
    }
    out.push_str(&format!("error: {report}\n"));
    out
}

/// A personal problem has no source, so miette shows no place: the place goes where the snippet
/// would be (before the help), in the same frame, with a note instead of the line.
fn insert_place(out: &mut String, start: usize, problem: &DeclProblem) {
    let place = |p: &DeclProblem| {
        format!(
            "   ╭─[{}:{}:{}]\n   │ (line not shown: it holds personal data)\n   ╰────\n",
            crate::render::safe(p.file()),
            p.line(),
            p.column()
        )
    };
    // The related places first (they come after the main one), each under its own message.
    for related in problem.related_problems().iter().rev() {
        let needle = format!("☞ {}\n", related.shown_message());
        if related.line() > 0
            && let Some(i) = out[start..].find(&needle)
        {
            out.insert_str(start + i + needle.len(), &place(related));
        }
    }
    if problem.line() == 0 {
        return;
    }
    let at = out[start..]
        .find("\n  help: ")
        .or_else(|| out[start..].find("\n\nAdvice: "))
        .map_or(out.len(), |i| start + i + 1);
    out.insert_str(at, &place(problem));
}

/// `validate --json`: `{"valid": true, "cards": N, "files": [...], "fingerprint": ...}` or
/// `{"valid": false, "problems": [{code, message, file, line, column, help, related}]}`.
pub fn result_json(result: &Result<crate::decl::Declarations, DeclReport>) -> String {
    fn problem(p: &crate::decl::DeclProblem) -> serde_json::Value {
        serde_json::json!({
            "code": p.kind().code(),
            "message": p.message(),
            "file": p.file(),
            "line": p.line(),
            "column": p.column(),
            "help": p.help_text(),
            "related": p.related_problems().iter().map(problem).collect::<Vec<_>>(),
        })
    }
    let doc = match result {
        Ok(d) => serde_json::json!({
            "valid": true,
            "cards": d.cards.len(),
            "cardholders": d.cardholders.len(),
            "files": d.files,
            "fingerprint": d.fingerprint,
        }),
        Err(report) => serde_json::json!({
            "valid": false,
            "problems": report.problems().iter().map(problem).collect::<Vec<_>>(),
        }),
    };
    serde_json::to_string_pretty(&doc).expect("JSON values always serialize")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::decl::load_sources;

    fn report(name: &str, text: &str) -> DeclReport {
        match load_sources(vec![(name.to_owned(), text.to_owned())]) {
            Ok(_) => panic!("{text:?} should be invalid"),
            Err(r) => r,
        }
    }

    #[test]
    fn a_problem_at_the_very_end_of_a_file_still_shows_its_place() {
        let r = report("t.yaml", "version: 1\ncards:\n  - key: \"open");
        let text = render_report(&r, false, 80);
        assert!(text.contains("[t.yaml:3:"), "{text}");
        assert!(text.contains("yaml_syntax"), "{text}");
        assert!(
            text.ends_with("error: 1 problem in the declarations (1 file)\n"),
            "{text}"
        );
    }

    #[test]
    fn the_summary_says_how_many_files_were_read() {
        let r = match load_sources(vec![
            ("good.yaml".to_owned(), "version: 1\ncards: []\n".to_owned()),
            (
                "bad.yaml".to_owned(),
                "version: 1\ncards:\n  - key: \"open".to_owned(),
            ),
        ]) {
            Ok(_) => panic!("should be invalid"),
            Err(r) => r,
        };
        assert_eq!(
            r.to_string(),
            "1 problem in the declarations (1 of 2 files)"
        );
    }

    #[test]
    fn carets_sit_under_the_offending_text_after_wide_characters() {
        let r = report(
            "t.yaml",
            "version: 1\ncards:\n  - {key: k, external_user_id: \"ü\", product_code: P, status: frozn}\n",
        );
        let text = render_report(&r, false, 100);
        let lines: Vec<&str> = text.lines().collect();
        let src = lines.iter().position(|l| l.contains("frozn}")).unwrap();
        let caret_line = lines[src + 1];
        let col_src = lines[src].chars().position(|c| c == 'f').unwrap();
        let col_caret = caret_line.chars().position(|c| c == '─').unwrap();
        assert_eq!(col_src, col_caret, "{text}");
    }

    #[test]
    fn carets_sit_under_the_offending_text_in_a_cut_line() {
        let pad = "x".repeat(500);
        let r = report(
            "t.yaml",
            &format!(
                "version: 1\ncards:\n  - {{key: k, external_user_id: \"{pad}\", product_code: P, status: frozn, labels: {{a: \"{pad}\"}}}}\n"
            ),
        );
        let text = render_report(&r, false, 100);
        assert!(text.len() < 2_000, "{text}");
        let lines: Vec<&str> = text.lines().collect();
        let src = lines.iter().position(|l| l.contains("frozn,")).unwrap();
        assert!(
            lines[src].contains("… x") || lines[src].contains("…x"),
            "{text}"
        );
        let col_src = lines[src].chars().position(|c| c == 'f').unwrap();
        let col_caret = lines[src + 1].chars().position(|c| c == '─').unwrap();
        assert_eq!(col_src, col_caret, "{text}");
        assert!(text.contains("[t.yaml:3:"), "{text}");
        let col = 1
            + "  - {key: k, external_user_id: \"".len()
            + 500
            + "\", product_code: P, status: ".len();
        assert!(text.contains(&format!("[t.yaml:3:{col}]")), "{text}");
    }

    #[test]
    fn a_key_holding_an_osc_sequence_is_shown_escaped() {
        let r = report(
            "t.yaml",
            "version: 1\ncards:\n  - {key: \"a\\e]0;pwned\\a\", external_user_id: u, product_code: P}\n",
        );
        let text = render_report(&r, true, 100);
        assert!(text.contains("\\u{1b}]0;pwned\\u{7}"), "{text}");
        // The only ESC bytes left are the handler's own colours: none is followed by `]`.
        assert!(
            !text.contains("\x1b]") && !text.contains('\x07'),
            "{text:?}"
        );
    }

    #[test]
    fn problems_without_a_place_render_their_message() {
        let r = report("notes.txt", "");
        let text = render_report(&r, false, 80);
        assert!(text.contains("`notes.txt` is neither YAML"), "{text}");
    }
}
