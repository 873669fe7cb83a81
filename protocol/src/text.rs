//! What a valid piece of chat text is. The server enforces these rules; the widget and
//! the console apply the same ones before sending, so a person sees the problem at once.

use std::borrow::Cow;
use std::fmt;

/// The longest chat message, in characters.
pub const MAX_MESSAGE_CHARS: usize = 4000;
/// The longest name a customer can give.
pub const MAX_NAME_CHARS: usize = 100;
/// The longest chat subject.
pub const MAX_SUBJECT_CHARS: usize = 200;
/// The longest client-chosen message id.
pub const MAX_CLIENT_ID_CHARS: usize = 64;

/// Why a text was refused. `Display` is the sentence shown to the person.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum TextError {
    Empty { field: &'static str },
    TooLong { field: &'static str, max: usize },
    ControlCharacters { field: &'static str },
    BadClientId,
}

impl fmt::Display for TextError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Empty { field } => write!(f, "The {field} is empty."),
            Self::TooLong { field, max } => {
                write!(f, "The {field} is too long (at most {max} characters).")
            }
            Self::ControlCharacters { field } => {
                write!(f, "The {field} contains characters that cannot be shown.")
            }
            Self::BadClientId => write!(
                f,
                "The message id must be 1 to {MAX_CLIENT_ID_CHARS} letters, digits, '-' or '_'."
            ),
        }
    }
}

impl std::error::Error for TextError {}

/// Whether a character changes how text around it is shown while being invisible
/// itself: the bidirectional overrides, embeddings and isolates (U+202E makes
/// `gpj.exe` of `exe.jpg`) and the zero-width and soft characters that hide inside a
/// name or an address (`Ad\u{200B}min`). The joiners (U+200C, U+200D) and the plain
/// direction marks (U+200E, U+200F) stay: scripts and emoji need them, and they reorder
/// nothing.
pub fn is_spoofing(c: char) -> bool {
    matches!(
        c,
        '\u{202A}'..='\u{202E}'
            | '\u{2066}'..='\u{2069}'
            | '\u{200B}'
            | '\u{2060}'..='\u{2064}'
            | '\u{FEFF}'
            | '\u{00AD}'
            | '\u{180E}'
    )
}

/// The text without the characters of [`is_spoofing`].
pub fn neutralise(text: &str) -> Cow<'_, str> {
    if text.chars().any(is_spoofing) {
        Cow::Owned(text.chars().filter(|&c| !is_spoofing(c)).collect())
    } else {
        Cow::Borrowed(text)
    }
}

/// A chat message body: not blank, at most [`MAX_MESSAGE_CHARS`]. It is kept as written
/// (line breaks included), less the characters that would disguise it
/// ([`neutralise`]); nothing in it is ever markup. Returns the body to keep.
pub fn check_message(body: &str) -> Result<String, TextError> {
    const FIELD: &str = "message";
    let body = neutralise(body);
    if body.trim().is_empty() {
        return Err(TextError::Empty { field: FIELD });
    }
    if body.chars().count() > MAX_MESSAGE_CHARS {
        return Err(TextError::TooLong {
            field: FIELD,
            max: MAX_MESSAGE_CHARS,
        });
    }
    if body
        .chars()
        .any(|c| c.is_control() && c != '\n' && c != '\t')
    {
        return Err(TextError::ControlCharacters { field: FIELD });
    }
    Ok(body.into_owned())
}

/// A one-line field (a name, a subject): trimmed, not empty, no line breaks, and without
/// the characters that would disguise it ([`neutralise`]).
pub fn one_line(value: &str, field: &'static str, max: usize) -> Result<String, TextError> {
    let value = neutralise(value);
    let value = value.trim();
    if value.is_empty() {
        return Err(TextError::Empty { field });
    }
    if value.chars().count() > max {
        return Err(TextError::TooLong { field, max });
    }
    if value.chars().any(char::is_control) {
        return Err(TextError::ControlCharacters { field });
    }
    Ok(value.to_owned())
}

/// A client-chosen message id.
pub fn check_client_id(id: &str) -> Result<(), TextError> {
    let valid = !id.is_empty()
        && id.len() <= MAX_CLIENT_ID_CHARS
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
    if valid {
        Ok(())
    } else {
        Err(TextError::BadClientId)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_blank_message_is_refused() {
        assert_eq!(
            check_message(" \n\t "),
            Err(TextError::Empty { field: "message" })
        );
    }

    #[test]
    fn a_message_keeps_its_line_breaks_and_markup_characters() {
        assert_eq!(
            check_message("line one\nline <b>two</b> *x*").as_deref(),
            Ok("line one\nline <b>two</b> *x*")
        );
    }

    #[test]
    fn a_message_over_the_limit_is_refused_counting_characters_not_bytes() {
        let at_limit = "é".repeat(MAX_MESSAGE_CHARS);
        assert!(check_message(&at_limit).is_ok());
        let over = format!("{at_limit}é");
        assert!(matches!(
            check_message(&over),
            Err(TextError::TooLong { .. })
        ));
    }

    #[test]
    fn control_characters_are_refused() {
        assert!(check_message("bell\u{7}").is_err());
        assert!(one_line("Ada\nLovelace", "name", MAX_NAME_CHARS).is_err());
    }

    #[test]
    fn one_line_fields_are_trimmed() {
        assert_eq!(
            one_line("  Ada  ", "name", MAX_NAME_CHARS),
            Ok("Ada".to_owned())
        );
        assert_eq!(
            one_line("   ", "subject", MAX_SUBJECT_CHARS),
            Err(TextError::Empty { field: "subject" })
        );
    }

    #[test]
    fn client_ids_are_short_and_plain() {
        assert!(check_client_id("m-1a2b_3").is_ok());
        assert!(check_client_id("").is_err());
        assert!(check_client_id("has space").is_err());
        assert!(check_client_id(&"x".repeat(MAX_CLIENT_ID_CHARS + 1)).is_err());
    }

    #[test]
    fn errors_read_as_sentences() {
        let error = TextError::TooLong {
            field: "subject",
            max: 200,
        };
        assert_eq!(
            error.to_string(),
            "The subject is too long (at most 200 characters)."
        );
    }

    #[test]
    fn characters_that_disguise_text_are_taken_out_of_messages_and_names() {
        assert_eq!(
            check_message("see invoice_\u{202E}fdp.exe").as_deref(),
            Ok("see invoice_fdp.exe")
        );
        assert_eq!(
            check_message("www.exam\u{200B}ple.com \u{2066}x\u{2069}").as_deref(),
            Ok("www.example.com x")
        );
        assert_eq!(
            one_line("Ad\u{200B}min\u{FEFF}", "name", 100).as_deref(),
            Ok("Admin")
        );
        assert_eq!(
            one_line("\u{202E} \u{200B}", "name", 100),
            Err(TextError::Empty { field: "name" })
        );
        // Joiners and direction marks are part of scripts and emoji.
        let family =
            "\u{1F468}\u{200D}\u{1F469}\u{200D}\u{1F467} \u{0645}\u{200C}\u{0646} \u{200F}";
        assert_eq!(check_message(family).as_deref(), Ok(family));
    }
}
