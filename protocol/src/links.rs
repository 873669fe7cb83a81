//! Which parts of a chat message are links. The rule is the help desk's: a URL becomes a
//! link when it contains `www.` or `https://`, and nothing else ever does.
//!
//! `linkify` finds the candidates, leaving punctuation at their end (and closing brackets
//! they did not open) as text. The rule on top keeps a candidate only when it starts its
//! word (after any opening brackets or quotes) with `https://`, `http://` or `www.`, and
//! builds an `href` that only ever has the scheme `https` or `http`.

use linkify::{LinkFinder, LinkKind};

/// A piece of a message: plain text, or a link with the text it shows.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Segment<'a> {
    Text(&'a str),
    Link { text: &'a str, href: String },
}

impl Segment<'_> {
    /// The text of the message this segment covers.
    pub fn text(&self) -> &str {
        match self {
            Self::Text(text) | Self::Link { text, .. } => text,
        }
    }
}

/// Splits a message into text and links. Joining the segments' texts gives the message
/// back unchanged.
pub fn segments(message: &str) -> Vec<Segment<'_>> {
    let mut finder = LinkFinder::new();
    finder.kinds(&[LinkKind::Url]).url_must_have_scheme(false);
    let mut out = Vec::new();
    let mut text_from = 0;
    for found in finder.links(message) {
        let Some(href) = starts_a_word(message, found.start())
            .then(|| href_for(found.as_str()))
            .flatten()
        else {
            continue;
        };
        if found.start() > text_from {
            out.push(Segment::Text(&message[text_from..found.start()]));
        }
        out.push(Segment::Link {
            text: found.as_str(),
            href,
        });
        text_from = found.end();
    }
    if text_from < message.len() {
        out.push(Segment::Text(&message[text_from..]));
    }
    out
}

/// Whether a candidate starting at `at` starts its word: only opening brackets or quotes
/// come between it and the space (or start of message) before it. `xwww.a.com` and
/// `javascript:alert(1)//www.a.com` are not links.
fn starts_a_word(message: &str, at: usize) -> bool {
    message[..at]
        .chars()
        .rev()
        .take_while(|c| !c.is_whitespace())
        .all(|c| "([{<\"'".contains(c))
}

/// The `href` for a URL candidate, if the rule makes it a link.
fn href_for(candidate: &str) -> Option<String> {
    let lower = candidate.to_ascii_lowercase();
    let marked = ["https://", "http://", "www."]
        .into_iter()
        .any(|mark| lower.starts_with(mark));
    if !marked || !(lower.contains("www.") || lower.contains("https://")) {
        return None;
    }
    // Characters that have no business in a link we build.
    if candidate
        .chars()
        .any(|c| c.is_whitespace() || c.is_control() || "\"'<>`\\".contains(c))
    {
        return None;
    }
    if lower.starts_with("https://") || lower.starts_with("http://") {
        let rest = &candidate[candidate.find("://")? + 3..];
        // A host must follow the scheme.
        return rest
            .chars()
            .next()
            .filter(char::is_ascii_alphanumeric)
            .map(|_| candidate.to_owned());
    }
    if lower.contains("://") || has_other_scheme(&lower) {
        return None;
    }
    // A bare domain such as `www.example.com/help`.
    candidate
        .chars()
        .next()
        .filter(char::is_ascii_alphanumeric)
        .map(|_| format!("https://{candidate}"))
}

/// `javascript:…`, `data:…`, `mailto:…` and the like: a `:` before any `/` that is
/// not a port number.
fn has_other_scheme(lower: &str) -> bool {
    let head = lower.split('/').next().unwrap_or(lower);
    match head.find(':') {
        Some(at) => !head[at + 1..]
            .chars()
            .next()
            .is_some_and(|c| c.is_ascii_digit()),
        None => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn links(message: &str) -> Vec<(String, String)> {
        segments(message)
            .into_iter()
            .filter_map(|s| match s {
                Segment::Link { text, href } => Some((text.to_owned(), href)),
                Segment::Text(_) => None,
            })
            .collect()
    }

    fn joined(message: &str) -> String {
        segments(message).iter().map(Segment::text).collect()
    }

    #[test]
    fn a_www_address_becomes_an_https_link() {
        assert_eq!(
            links("see www.example.com/help now"),
            [(
                "www.example.com/help".into(),
                "https://www.example.com/help".into()
            )]
        );
    }

    #[test]
    fn an_https_url_becomes_a_link() {
        assert_eq!(
            links("go to https://example.com/a?b=c"),
            [(
                "https://example.com/a?b=c".into(),
                "https://example.com/a?b=c".into()
            )]
        );
    }

    #[test]
    fn a_plain_http_url_without_www_stays_text() {
        assert!(links("http://x.com").is_empty());
        assert_eq!(segments("http://x.com"), [Segment::Text("http://x.com")]);
    }

    #[test]
    fn an_http_url_with_www_keeps_its_scheme() {
        assert_eq!(
            links("http://www.x.com/p"),
            [("http://www.x.com/p".into(), "http://www.x.com/p".into())]
        );
    }

    #[test]
    fn a_bare_domain_without_www_stays_text() {
        assert!(links("example.com and mail me at a@b.com").is_empty());
    }

    #[test]
    fn punctuation_after_a_url_stays_out_of_the_link() {
        assert_eq!(
            links("Try www.example.com."),
            [("www.example.com".into(), "https://www.example.com".into())]
        );
        assert_eq!(
            links("(see https://example.com/x), thanks!"),
            [(
                "https://example.com/x".into(),
                "https://example.com/x".into()
            )]
        );
    }

    #[test]
    fn brackets_the_link_opened_stay_in_it_and_others_stay_out() {
        assert_eq!(
            links("[https://en.wikipedia.org/wiki/Tea_(drink)]"),
            [(
                "https://en.wikipedia.org/wiki/Tea_(drink)".into(),
                "https://en.wikipedia.org/wiki/Tea_(drink)".into()
            )]
        );
        assert_eq!(
            segments("\"www.a.com\"!"),
            [
                Segment::Text("\""),
                Segment::Link {
                    text: "www.a.com",
                    href: "https://www.a.com".into()
                },
                Segment::Text("\"!"),
            ]
        );
    }

    #[test]
    fn a_url_inside_another_word_stays_text() {
        assert!(links("xwww.a.com").is_empty());
        assert!(links("javascript:alert(1)//www.example.com").is_empty());
        assert!(links("see:https://a.com").is_empty());
    }

    #[test]
    fn an_email_address_at_a_www_host_stays_text() {
        assert!(links("write to help@www.example.com today").is_empty());
        assert!(links("mailto:help@www.example.com").is_empty());
    }

    #[test]
    fn a_url_in_mid_sentence_punctuation_keeps_only_its_own_characters() {
        assert_eq!(
            links("Is it https://www.x.com/a?b=1&c=2? Or 'www.y.org/p'."),
            [
                (
                    "https://www.x.com/a?b=1&c=2".into(),
                    "https://www.x.com/a?b=1&c=2".into()
                ),
                ("www.y.org/p".into(), "https://www.y.org/p".into()),
            ]
        );
    }

    #[test]
    fn several_urls_in_one_message_are_each_a_link() {
        let found = links("www.a.com, then https://b.org and http://c.net");
        let texts: Vec<&str> = found.iter().map(|(t, _)| t.as_str()).collect();
        assert_eq!(texts, ["www.a.com", "https://b.org"]);
        assert_eq!(
            joined("www.a.com, then https://b.org and http://c.net"),
            "www.a.com, then https://b.org and http://c.net"
        );
    }

    #[test]
    fn known_autolinker_attacks_never_make_a_dangerous_link() {
        let attacks = [
            "javascript:alert(1)//www.example.com",
            "javascript://www.example.com/%0Aalert(1)",
            "JaVaScRiPt:alert(document.cookie)",
            "javascript&#58;alert(1)//www.x.com",
            "&#106;avascript:alert(1)",
            "data:text/html;base64,PHNjcmlwdD5hbGVydCgxKTwvc2NyaXB0Pg==",
            "data://www.evil.com/x",
            "vbscript:msgbox(1)//https://x.com",
            "https://www.x.com\"onmouseover=\"alert(1)",
            "https://www.x.com'><script>alert(1)</script>",
            "<a href=\"https://www.x.com\">x</a>",
            "www.x.com<img src=x onerror=alert(1)>",
            "https://",
            "https:///etc/passwd",
            "\u{202e}https://www.x.com",
        ];
        for attack in attacks {
            assert_eq!(joined(attack), attack, "text is kept: {attack}");
            for (text, href) in links(attack) {
                assert!(
                    href.starts_with("https://") || href.starts_with("http://"),
                    "{attack} made {href}"
                );
                assert!(
                    !href.contains(['"', '\'', '<', '>', ' ']),
                    "{attack} made {href} from {text}"
                );
            }
        }
    }

    proptest! {
        #[test]
        fn segmenting_keeps_every_character_and_only_makes_web_links(message in any::<String>()) {
            prop_assert_eq!(joined(&message), message.clone());
            for (_, href) in links(&message) {
                prop_assert!(href.starts_with("https://") || href.starts_with("http://"));
            }
        }

        #[test]
        fn url_like_text_segments_safely(message in "[a-zA-Z:/.@w &#;<>\"'()0-9-]{0,60}") {
            prop_assert_eq!(joined(&message), message.clone());
            for (_, href) in links(&message) {
                prop_assert!(href.starts_with("https://") || href.starts_with("http://"));
            }
        }
    }
}
