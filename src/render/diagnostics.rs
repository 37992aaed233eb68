//! Rendering declaration problems ([`SpecReport`]) as miette draws them on a terminal: one
//! snippet with a caret per problem, then a summary line. Must not decide what is a problem.

use miette::{GraphicalReportHandler, GraphicalTheme};

use crate::spec::SpecReport;

/// Render a report as miette would on a terminal; `color=false` gives plain text (for CI logs and
/// snapshots). `width` is the column count text is wrapped to.
pub fn render_report(report: &SpecReport, color: bool, width: usize) -> String {
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
        if handler.render_report(&mut out, problem).is_err() {
            out.push_str(&format!("  × {problem}\n"));
        }
        out.push('\n');
    }
    out.push_str(&format!("error: {report}\n"));
    out
}
