//! Liquid variables in agent responses (`{{customer.first_name}}`, `{{agent.name}}`,
//! `{{case.id}}` …), filled in on the server when the message is sent. Only agents'
//! text is ever treated as a template; a customer's never is.
//!
//! Limits: the template is a chat message (at most `MAX_MESSAGE_CHARS`), the output must
//! fit in one too, and the work is bounded by leaving out every tag that loops or builds
//! values (`for`, `tablerow`, `cycle`, `assign`, `capture`, `include`, …): what remains
//! (`if`, `unless`, `case`, `raw`, `comment` and the standard filters) does work in
//! proportion to the template's size. Memory is bounded while rendering runs
//! ([`bounded`]): no value, and not the text, may grow past a chat message's size.
//! Rendering runs on the blocking pool, off the workers that serve sockets.

mod bounded;

use std::panic::AssertUnwindSafe;
use std::sync::Arc;

use liquid::model::Value;
use liquid_lib::stdlib;
use parlor_protocol::{CaseId, MAX_MESSAGE_CHARS};

use bounded::{Bounded, Capped, MAX_NESTING, OVER_LIMIT};

/// What a response can refer to.
#[derive(Clone, Debug)]
pub struct Context {
    pub customer_name: String,
    pub customer_email: Option<String>,
    pub agent_name: String,
    pub case_id: CaseId,
    pub case_subject: String,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum TemplateError {
    #[error("The Liquid in this message could not be read: {0}")]
    Invalid(String),
    #[error("With its variables filled in, the message is over {MAX_MESSAGE_CHARS} characters.")]
    TooLong,
    #[error("Blocks (if, unless, case) may nest at most {MAX_NESTING} deep.")]
    TooDeep,
}

/// The Liquid dialect of chat responses, built once.
pub struct Templates {
    parser: liquid::Parser,
}

impl Templates {
    pub fn new() -> Result<Self, liquid::Error> {
        let parser = liquid::ParserBuilder::new()
            .filter(Bounded(stdlib::Abs))
            .filter(Bounded(stdlib::Append))
            .filter(Bounded(stdlib::AtLeast))
            .filter(Bounded(stdlib::AtMost))
            .filter(Bounded(stdlib::Capitalize))
            .filter(Bounded(stdlib::Ceil))
            .filter(Bounded(bounded::Date))
            .filter(Bounded(stdlib::Default))
            .filter(Bounded(stdlib::DividedBy))
            .filter(Bounded(stdlib::Downcase))
            .filter(Bounded(stdlib::First))
            .filter(Bounded(stdlib::Floor))
            .filter(Bounded(stdlib::Last))
            .filter(Bounded(stdlib::Lstrip))
            .filter(Bounded(stdlib::Minus))
            .filter(Bounded(stdlib::Modulo))
            .filter(Bounded(stdlib::Plus))
            .filter(Bounded(stdlib::Prepend))
            .filter(Bounded(stdlib::Remove))
            .filter(Bounded(stdlib::RemoveFirst))
            .filter(Bounded(bounded::Replace))
            .filter(Bounded(stdlib::ReplaceFirst))
            .filter(Bounded(stdlib::Round))
            .filter(Bounded(stdlib::Rstrip))
            .filter(Bounded(stdlib::Size))
            .filter(Bounded(stdlib::Slice))
            .filter(Bounded(stdlib::Strip))
            .filter(Bounded(stdlib::StripNewlines))
            .filter(Bounded(stdlib::Times))
            .filter(Bounded(stdlib::Truncate))
            .filter(Bounded(stdlib::TruncateWords))
            .filter(Bounded(stdlib::Upcase))
            .block(stdlib::RawBlock)
            .block(stdlib::IfBlock)
            .block(stdlib::UnlessBlock)
            .block(stdlib::CommentBlock)
            .block(stdlib::CaseBlock)
            .build()?;
        Ok(Self { parser })
    }

    /// Whether a macro's Liquid reads: the same check as sending it, against a sample
    /// chat (a macro is saved before any chat it will be used in). Only how long the
    /// text would grow is left to the send, where the real names are known.
    pub async fn check_macro(self: &Arc<Self>, body: &str) -> Result<(), TemplateError> {
        let sample = Context {
            customer_name: "Grace Hopper".into(),
            customer_email: Some("grace@example.com".into()),
            agent_name: "Ada Lovelace".into(),
            case_id: 1,
            case_subject: "A subject".into(),
        };
        match self.render_off_workers(body.to_owned(), sample).await {
            Ok(_) | Err(TemplateError::TooLong) => Ok(()),
            Err(error) => Err(error),
        }
    }

    /// The message with its variables filled in, rendered on the blocking pool. Text
    /// without `{{` or `{%` is returned as it is, without parsing.
    pub async fn render_off_workers(
        self: &Arc<Self>,
        body: String,
        context: Context,
    ) -> Result<String, TemplateError> {
        if !has_liquid(&body) {
            return Ok(body);
        }
        let templates = self.clone();
        tokio::task::spawn_blocking(move || templates.render(&body, &context))
            .await
            .unwrap_or_else(|_| Err(TemplateError::Invalid("rendering failed".into())))
    }

    /// The message with its variables filled in. Text without `{{` or `{%` is returned
    /// as it is, without parsing.
    pub fn render(&self, body: &str, context: &Context) -> Result<String, TemplateError> {
        if !has_liquid(body) {
            return Ok(body.to_owned());
        }
        if bounded::nesting(body) > MAX_NESTING {
            return Err(TemplateError::TooDeep);
        }
        // A filter that panics on some argument must not take the caller with it.
        std::panic::catch_unwind(AssertUnwindSafe(|| self.render_bounded(body, context)))
            .unwrap_or_else(|_| Err(TemplateError::Invalid("rendering failed".into())))
    }

    fn render_bounded(&self, body: &str, context: &Context) -> Result<String, TemplateError> {
        let template = self
            .parser
            .parse(body)
            .map_err(|e| TemplateError::Invalid(explain(&e.to_string())))?;
        let first_name = first_word(&context.customer_name);
        let agent_first_name = first_word(&context.agent_name);
        let globals = liquid::object!({
            "customer": {
                "name": context.customer_name,
                "first_name": first_name,
                "email": context.customer_email.clone().map_or(Value::Nil, Value::scalar),
            },
            "agent": {
                "name": context.agent_name,
                "first_name": agent_first_name,
            },
            "case": {
                "id": context.case_id,
                "subject": context.case_subject,
            },
        });
        let mut out = Capped::default();
        if let Err(error) = template.render_to(&mut out, &globals) {
            let error = error.to_string();
            if out.overflowed || error.contains(OVER_LIMIT) {
                return Err(TemplateError::TooLong);
            }
            return Err(TemplateError::Invalid(explain(&error)));
        }
        let output = String::from_utf8(out.bytes)
            .map_err(|_| TemplateError::Invalid("the result is not text".into()))?;
        if output.chars().count() > MAX_MESSAGE_CHARS {
            return Err(TemplateError::TooLong);
        }
        Ok(output)
    }
}

pub fn has_liquid(body: &str) -> bool {
    body.contains("{{") || body.contains("{%")
}

fn first_word(name: &str) -> String {
    name.split_whitespace()
        .next()
        .unwrap_or_default()
        .to_owned()
}

/// Liquid's error as the agent can act on it: which variable or filter is unknown (and
/// what there is instead), or where the syntax goes wrong. Liquid says it over several
/// lines of context; anything else keeps its first line.
fn explain(message: &str) -> String {
    let context = |key: &str| {
        message
            .lines()
            .find_map(|line| line.trim().strip_prefix(key))
            .map(str::trim)
    };
    let first = first_line(message);
    let explained = if first.contains("Unknown index") {
        context("variable=")
            .zip(context("requested index="))
            .map(|(variable, index)| {
                let known = context("available indexes=")
                    .map(|known| {
                        let mut names: Vec<&str> = known.split(", ").collect();
                        names.sort_unstable();
                        format!(" ({variable} has {})", names.join(", "))
                    })
                    .unwrap_or_default();
                format!("{{{{ {variable}.{index} }}}} is not a variable{known}.")
            })
    } else if first.contains("Unknown variable") {
        context("requested variable=").map(|variable| {
            format!("{{{{ {variable} }}}} is not a variable (there are customer, agent and case).")
        })
    } else if first.contains("Unknown filter") {
        context("requested filter=").map(|filter| format!("\"{filter}\" is not a filter."))
    } else {
        // A syntax error: ` --> line:column` and `= what was expected`.
        message.split_once("--> ").map(|(_, rest)| {
            let at = rest.split_whitespace().next().unwrap_or("?");
            let what = context("= ").unwrap_or("a mistake");
            format!(
                "at line:column {at}: {}",
                what.trim_end_matches('.').to_lowercase()
            )
        })
    };
    explained.map_or(first, |text| text.chars().take(300).collect())
}

/// Liquid's errors run over several lines of context; the first says what is wrong.
fn first_line(message: &str) -> String {
    message
        .lines()
        .map(str::trim)
        .find(|l| !l.is_empty())
        .unwrap_or("unknown error")
        .chars()
        .take(200)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn context() -> Context {
        Context {
            customer_name: "grace brewster hopper".into(),
            customer_email: Some("grace@example.com".into()),
            agent_name: "Ada Lovelace".into(),
            case_id: 42,
            case_subject: "Order 1042 is late".into(),
        }
    }

    fn templates() -> Templates {
        Templates::new().expect("the chat dialect builds")
    }

    fn render(body: &str) -> Result<String, TemplateError> {
        templates().render(body, &context())
    }

    #[test]
    fn every_variable_is_filled_in() {
        assert_eq!(
            render("{{customer.first_name}}|{{customer.name}}|{{customer.email}}|{{agent.name}}|{{agent.first_name}}|{{case.id}}|{{case.subject}}"),
            Ok("grace|grace brewster hopper|grace@example.com|Ada Lovelace|Ada|42|Order 1042 is late".into())
        );
    }

    #[test]
    fn filters_work() {
        assert_eq!(
            render("Hi {{ customer.first_name | capitalize }}!"),
            Ok("Hi Grace!".into())
        );
        let anonymous = Context {
            customer_email: None,
            ..context()
        };
        assert_eq!(
            templates().render("{{ customer.email | default: 'no email' }}", &anonymous),
            Ok("no email".into())
        );
    }

    #[test]
    fn conditions_work() {
        assert_eq!(
            render("{% if case.id > 10 %}big{% else %}small{% endif %}"),
            Ok("big".into())
        );
    }

    #[test]
    fn text_without_liquid_is_left_alone() {
        assert_eq!(render("Just {text}"), Ok("Just {text}".into()));
        assert_eq!(
            render("Plain <b>text</b> *x*"),
            Ok("Plain <b>text</b> *x*".into())
        );
    }

    #[test]
    fn an_unknown_variable_is_refused_with_its_name_and_what_there_is() {
        match render("Hi {{ customer.frist_name }}") {
            Err(TemplateError::Invalid(message)) => assert_eq!(
                message,
                "{{ customer.frist_name }} is not a variable (customer has email, first_name, name)."
            ),
            other => panic!("expected an error, got {other:?}"),
        }
        assert_eq!(
            render("{{ custom.name }}"),
            Err(TemplateError::Invalid(
                "{{ custom }} is not a variable (there are customer, agent and case).".into()
            ))
        );
    }

    #[test]
    fn an_unknown_filter_and_a_syntax_error_say_which_and_where() {
        assert_eq!(
            render("{{ customer.name | upcasee }}"),
            Err(TemplateError::Invalid(
                "\"upcasee\" is not a filter.".into()
            ))
        );
        assert_eq!(
            render("{% if %}x"),
            Err(TemplateError::Invalid(
                "at line:column 1:6: value expected".into()
            ))
        );
    }

    #[test]
    fn a_syntax_error_is_refused() {
        assert!(matches!(
            render("Hi {{ customer.name "),
            Err(TemplateError::Invalid(_))
        ));
        assert!(matches!(
            render("{% if %}x"),
            Err(TemplateError::Invalid(_))
        ));
    }

    #[test]
    fn tags_that_loop_or_build_values_are_not_available() {
        for template in [
            "{% for i in (1..1000000000) %}x{% endfor %}",
            "{% assign a = 'x' %}{{ a }}",
            "{% capture a %}x{% endcapture %}",
            "{% cycle 'a', 'b' %}",
            "{% include 'x' %}",
        ] {
            assert!(
                matches!(render(template), Err(TemplateError::Invalid(_))),
                "{template}"
            );
        }
    }

    #[test]
    fn output_over_the_message_limit_is_refused() {
        let big = Context {
            customer_name: "x".repeat(1000),
            ..context()
        };
        let template = "{{customer.name}}".repeat(5);
        assert_eq!(
            templates().render(&template, &big),
            Err(TemplateError::TooLong)
        );
    }

    #[test]
    fn a_wide_date_format_is_refused_with_a_reason() {
        match render("{{ 'now' | date: '%30000000Y' }}") {
            Err(TemplateError::Invalid(message)) => {
                assert!(message.contains("at most 64"), "{message}")
            }
            other => panic!("expected a refusal, got {other:?}"),
        }
        assert!(render("{{ 'now' | date: '%4Y' }}").is_ok());
    }

    #[test]
    fn a_replace_that_would_grow_past_a_message_is_refused() {
        assert_eq!(
            render("{{ customer.name | replace: '', customer.name | replace: '', customer.name }}"),
            Err(TemplateError::TooLong)
        );
        assert_eq!(
            render("{{ customer.first_name | replace: 'r', 'R' }}"),
            Ok("gRace".into())
        );
    }

    #[test]
    fn blocks_nested_too_deep_are_refused() {
        let deep = format!(
            "{}x{}",
            "{% if true %}".repeat(17),
            "{% endif %}".repeat(17)
        );
        assert_eq!(render(&deep), Err(TemplateError::TooDeep));
        let fine = format!(
            "{}x{}",
            "{% if true %}".repeat(16),
            "{% endif %}".repeat(16)
        );
        assert_eq!(render(&fine), Ok("x".into()));
    }

    /// Pieces of Liquid that random templates are made of: tags, filters with large and
    /// odd arguments, variables and plain text.
    const PIECES: &[&str] = &[
        "{{",
        "}}",
        "{%",
        "%}",
        " | ",
        "if ",
        "endif",
        "unless ",
        "endunless",
        "case ",
        "when ",
        "endcase",
        "else",
        "customer.name",
        "case.id",
        "agent.first_name",
        "'x'",
        "''",
        "9223372036854775807",
        "-1",
        "replace: ",
        "append: ",
        "prepend: ",
        "date: ",
        "'%99Y'",
        "'%c'",
        "truncate: ",
        "slice: ",
        "times: ",
        "plus: ",
        "upcase",
        ", ",
        "default: ",
        "size",
        "raw",
        "endraw",
        "{{ customer.name | replace: '', customer.name }}",
        "text ",
        "\n",
    ];

    proptest::proptest! {
        #[test]
        fn random_liquid_renders_within_a_message_or_is_refused(
            picks in proptest::collection::vec(0..PIECES.len(), 0..120)
        ) {
            let template: String = picks.iter().map(|&i| PIECES[i]).collect();
            if let Ok(output) = render(&template) {
                proptest::prop_assert!(output.chars().count() <= MAX_MESSAGE_CHARS);
            }
        }
    }
}
