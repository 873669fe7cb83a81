//! Macros are written in Markdown, but chat is one line of plain text: a macro used in
//! chat is reformatted to fit on one line. Paragraphs and line breaks become spaces,
//! list items become "• item" (or "1. item"), emphasis markers go, link text keeps its
//! URL. Liquid variables (`{{customer.first_name}}`) pass through untouched, to be filled
//! in when the message is sent.

use pulldown_cmark::{Event, Options, Parser, Tag, TagEnd};

/// The macro's Markdown as one line of plain text.
pub fn flatten_markdown(markdown: &str) -> String {
    let mut out = String::new();
    // For each open list: the next number of an ordered list, None for bullets.
    let mut lists: Vec<Option<u64>> = Vec::new();
    // The destination of each open link, to add after its text when it differs.
    let mut links: Vec<(String, usize)> = Vec::new();
    let options = Options::ENABLE_STRIKETHROUGH | Options::ENABLE_TABLES;
    for event in Parser::new_ext(markdown, options) {
        match event {
            Event::Text(text)
            | Event::Code(text)
            | Event::InlineMath(text)
            | Event::DisplayMath(text) => out.push_str(&text),
            Event::Html(html) | Event::InlineHtml(html) => out.push_str(&html),
            Event::SoftBreak | Event::HardBreak | Event::Rule => out.push(' '),
            Event::TaskListMarker(done) => out.push_str(if done { "[x] " } else { "[ ] " }),
            Event::FootnoteReference(name) => {
                out.push('[');
                out.push_str(&name);
                out.push(']');
            }
            Event::Start(Tag::List(first)) => lists.push(first),
            Event::End(TagEnd::List(_)) => {
                lists.pop();
                out.push(' ');
            }
            Event::Start(Tag::Item) => {
                out.push(' ');
                match lists.last_mut() {
                    Some(Some(number)) => {
                        out.push_str(&format!("{number}. "));
                        *number += 1;
                    }
                    _ => out.push_str("• "),
                }
            }
            Event::Start(Tag::Link { dest_url, .. }) => {
                links.push((dest_url.to_string(), out.len()))
            }
            Event::End(TagEnd::Link) => {
                if let Some((url, text_start)) = links.pop() {
                    let text = out[text_start..].trim();
                    if !url.is_empty() && text != url {
                        out.push_str(&format!(" ({url})"));
                    }
                }
            }
            Event::End(TagEnd::TableCell) => out.push_str(" | "),
            Event::End(
                TagEnd::Paragraph
                | TagEnd::Heading(_)
                | TagEnd::BlockQuote(_)
                | TagEnd::CodeBlock
                | TagEnd::HtmlBlock
                | TagEnd::Item
                | TagEnd::TableRow
                | TagEnd::TableHead,
            ) => out.push(' '),
            _ => {}
        }
    }
    out.split_whitespace().collect::<Vec<_>>().join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paragraphs_and_line_breaks_become_spaces() {
        assert_eq!(
            flatten_markdown("Hello!\n\nThanks for\nwriting in."),
            "Hello! Thanks for writing in."
        );
    }

    #[test]
    fn a_bulleted_list_fits_on_one_line() {
        assert_eq!(
            flatten_markdown("Try this:\n\n- restart\n- sign in again\n"),
            "Try this: • restart • sign in again"
        );
    }

    #[test]
    fn an_ordered_list_keeps_its_numbers() {
        assert_eq!(
            flatten_markdown("1. Open settings\n2. Press *Reset*"),
            "1. Open settings 2. Press Reset"
        );
    }

    #[test]
    fn emphasis_markers_are_dropped() {
        assert_eq!(
            flatten_markdown("**Bold**, _italic_ and ~~gone~~ `code`"),
            "Bold, italic and gone code"
        );
    }

    #[test]
    fn link_text_keeps_its_url() {
        assert_eq!(
            flatten_markdown("See [our guide](https://www.example.com/guide)."),
            "See our guide (https://www.example.com/guide)."
        );
        assert_eq!(
            flatten_markdown("<https://www.example.com>"),
            "https://www.example.com"
        );
    }

    #[test]
    fn headings_and_quotes_flatten_too() {
        assert_eq!(
            flatten_markdown("# Refunds\n> Within 30 days.\n\nThanks"),
            "Refunds Within 30 days. Thanks"
        );
    }

    #[test]
    fn liquid_variables_pass_through() {
        assert_eq!(
            flatten_markdown("Hi {{customer.first_name}},\n\nI'm {{ agent.name }}."),
            "Hi {{customer.first_name}}, I'm {{ agent.name }}."
        );
    }

    #[test]
    fn the_result_never_has_a_line_break() {
        let text = flatten_markdown("a\n\n```\nx\ny\n```\n\n| h | i |\n|---|---|\n| 1 | 2 |\n");
        assert!(!text.contains('\n'), "{text:?}");
    }
}
