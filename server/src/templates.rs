//! Liquid variables in agent responses (`{{customer.first_name}}`, `{{agent.name}}`,
//! `{{case.id}}` …), filled in on the server when the message is sent. Only agents'
//! text is ever treated as a template; a customer's never is.
//!
//! Limits: the template is a chat message (at most `MAX_MESSAGE_CHARS`), the output must
//! fit in one too, and the work is bounded by leaving out every tag that loops or builds
//! values (`for`, `tablerow`, `cycle`, `assign`, `capture`, `include`, …): what remains
//! (`if`, `unless`, `case`, `raw`, `comment` and the standard filters) does work in
//! proportion to the template's size.

use liquid::model::Value;
use liquid_lib::stdlib;
use parlor_protocol::{CaseId, MAX_MESSAGE_CHARS};

/// What a response can refer to.
#[derive(Clone, Debug)]
pub struct Context<'a> {
    pub customer_name: &'a str,
    pub customer_email: Option<&'a str>,
    pub agent_name: &'a str,
    pub case_id: CaseId,
    pub case_subject: &'a str,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum TemplateError {
    #[error("The Liquid in this message could not be read: {0}")]
    Invalid(String),
    #[error("With its variables filled in, the message is over {MAX_MESSAGE_CHARS} characters.")]
    TooLong,
}

/// The Liquid dialect of chat responses, built once.
pub struct Templates {
    parser: liquid::Parser,
}

impl Templates {
    pub fn new() -> Result<Self, liquid::Error> {
        let parser = liquid::ParserBuilder::new()
            .filter(stdlib::Abs)
            .filter(stdlib::Append)
            .filter(stdlib::AtLeast)
            .filter(stdlib::AtMost)
            .filter(stdlib::Capitalize)
            .filter(stdlib::Ceil)
            .filter(stdlib::Date)
            .filter(stdlib::Default)
            .filter(stdlib::DividedBy)
            .filter(stdlib::Downcase)
            .filter(stdlib::First)
            .filter(stdlib::Floor)
            .filter(stdlib::Last)
            .filter(stdlib::Lstrip)
            .filter(stdlib::Minus)
            .filter(stdlib::Modulo)
            .filter(stdlib::Plus)
            .filter(stdlib::Prepend)
            .filter(stdlib::Remove)
            .filter(stdlib::RemoveFirst)
            .filter(stdlib::Replace)
            .filter(stdlib::ReplaceFirst)
            .filter(stdlib::Round)
            .filter(stdlib::Rstrip)
            .filter(stdlib::Size)
            .filter(stdlib::Slice)
            .filter(stdlib::Strip)
            .filter(stdlib::StripNewlines)
            .filter(stdlib::Times)
            .filter(stdlib::Truncate)
            .filter(stdlib::TruncateWords)
            .filter(stdlib::Upcase)
            .block(stdlib::RawBlock)
            .block(stdlib::IfBlock)
            .block(stdlib::UnlessBlock)
            .block(stdlib::CommentBlock)
            .block(stdlib::CaseBlock)
            .build()?;
        Ok(Self { parser })
    }

    /// The message with its variables filled in. Text without `{{` or `{%` is returned
    /// as it is, without parsing.
    pub fn render(&self, body: &str, context: &Context<'_>) -> Result<String, TemplateError> {
        if !body.contains("{{") && !body.contains("{%") {
            return Ok(body.to_owned());
        }
        let template = self
            .parser
            .parse(body)
            .map_err(|e| TemplateError::Invalid(first_line(&e.to_string())))?;
        let first_name = context
            .customer_name
            .split_whitespace()
            .next()
            .unwrap_or_default();
        let agent_first_name = context
            .agent_name
            .split_whitespace()
            .next()
            .unwrap_or_default();
        let globals = liquid::object!({
            "customer": {
                "name": context.customer_name,
                "first_name": first_name,
                "email": context.customer_email.map_or(Value::Nil, |e| Value::scalar(e.to_owned())),
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
        let output = template
            .render(&globals)
            .map_err(|e| TemplateError::Invalid(first_line(&e.to_string())))?;
        if output.chars().count() > MAX_MESSAGE_CHARS {
            return Err(TemplateError::TooLong);
        }
        Ok(output)
    }
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

    fn context() -> Context<'static> {
        Context {
            customer_name: "grace brewster hopper",
            customer_email: Some("grace@example.com"),
            agent_name: "Ada Lovelace",
            case_id: 42,
            case_subject: "Order 1042 is late",
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
    fn an_unknown_variable_is_refused_with_its_name() {
        match render("Hi {{ customer.frist_name }}") {
            Err(TemplateError::Invalid(message)) => {
                assert!(message.contains("Unknown"), "{message}")
            }
            other => panic!("expected an error, got {other:?}"),
        }
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
        let long_name = "x".repeat(1000);
        let big = Context {
            customer_name: &long_name,
            ..context()
        };
        let template = "{{customer.name}}".repeat(5);
        assert_eq!(
            templates().render(&template, &big),
            Err(TemplateError::TooLong)
        );
    }
}
