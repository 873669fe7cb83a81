//! Random and hostile input thrown at every frame decoder (serde's and the widget's
//! own codec), and at the text rules: nothing panics, nothing nests without bound, the
//! codec reads nothing serde would read differently, and no text keeps a character
//! that disguises it.

use parlor_protocol::json;
use parlor_protocol::{
    AgentFrame, ToAgent, ToVisitor, VisitorFrame, check_message, is_spoofing, one_line,
};
use proptest::prelude::*;

/// Every decoder a socket or the widget runs on text from the other side.
fn decode_everything(text: &str) {
    let _ = serde_json::from_str::<VisitorFrame>(text);
    let _ = serde_json::from_str::<AgentFrame>(text);
    let _ = serde_json::from_str::<ToAgent>(text);
    let from_serde = serde_json::from_str::<ToVisitor>(text);
    if let Some(from_codec) = json::decode::<ToVisitor>(text) {
        // The widget's codec reads nothing that serde would read otherwise.
        assert_eq!(from_serde.ok(), Some(from_codec), "{text}");
    }
}

/// Pieces of frames: real kinds and field names, odd values, broken structure.
const PIECES: &[&str] = &[
    "{",
    "}",
    "[",
    "]",
    ",",
    ":",
    "\"",
    "null",
    "true",
    "false",
    "0",
    "-1",
    "1e999",
    "9223372036854775808",
    "-0.0",
    "\"welcome\"",
    "\"message\"",
    "\"error\"",
    "\"hello\"",
    "\"send\"",
    "\"token\"",
    "\"chat\"",
    "\"case\"",
    "\"messages\"",
    "\"seq\"",
    "\"body\"",
    "\"author\"",
    "\"customer\"",
    "\"agent\"",
    "\"system\"",
    "\"code\"",
    "\"client_id\"",
    "\"ping\"",
    "\"pong\"",
    "\"typing\"",
    "\"\\u0000\"",
    "\"\\ud800\"",
    "\"\\\"\"",
    "\" \"",
    "\"\u{202E}\"",
    "\"x\"",
    " ",
    "\n",
];

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn random_text_never_panics_a_decoder(text in any::<String>()) {
        decode_everything(&text);
    }

    #[test]
    fn random_frame_shaped_text_never_panics_a_decoder(
        picks in proptest::collection::vec(0..PIECES.len(), 0..60)
    ) {
        let text: String = picks.iter().map(|&i| PIECES[i]).collect();
        decode_everything(&text);
    }

    #[test]
    fn checked_text_never_keeps_a_disguising_character(text in any::<String>()) {
        if let Ok(kept) = check_message(&text) {
            prop_assert!(!kept.chars().any(is_spoofing));
        }
        if let Ok(kept) = one_line(&text, "name", 100) {
            prop_assert!(!kept.chars().any(is_spoofing));
            prop_assert!(!kept.contains('\n'));
        }
    }
}

#[test]
fn deep_nesting_is_refused_without_exhausting_the_stack() {
    for depth in [100, 10_000, 1_000_000] {
        let text = format!("{}{}", "[".repeat(depth), "]".repeat(depth));
        decode_everything(&text);
        let text = format!("{}{}", "{\"welcome\":".repeat(depth), "}".repeat(depth));
        decode_everything(&text);
    }
}
