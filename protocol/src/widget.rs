//! What an admin sets for the widget (its look, the pre-chat form, which sites may embed
//! it, what happens when nobody can take a chat) and the one check of a pre-chat form's
//! answers, run by the widget before it sends and by the server before it stores.

use std::collections::BTreeMap;
use std::fmt;

use serde::{Deserialize, Serialize};

use crate::frames::{Answer, Group, GroupId};
use crate::text::{MAX_NAME_CHARS, MAX_SUBJECT_CHARS, TextError, one_line};

/// How a pre-chat field shows.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FieldRule {
    Hidden,
    #[default]
    Optional,
    Required,
}

impl FieldRule {
    pub const ALL: [Self; 3] = [Self::Hidden, Self::Optional, Self::Required];

    pub fn shown(self) -> bool {
        self != Self::Hidden
    }

    pub fn label(self) -> &'static str {
        match self {
            Self::Hidden => "Hidden",
            Self::Optional => "Optional",
            Self::Required => "Required",
        }
    }
}

/// A question of the admin's own in the pre-chat form (an order number, a plan, …).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CustomField {
    /// The answer's name for the JS API and Liquid: `a-z`, `0-9` and `_`.
    pub key: String,
    pub label: String,
    pub required: bool,
}

/// Which fields the pre-chat form shows and which must be filled in. The first message
/// is always asked for.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct PrechatFields {
    pub name: FieldRule,
    pub email: FieldRule,
    pub subject: FieldRule,
    /// Shown only when there are groups.
    pub group: FieldRule,
    pub custom: Vec<CustomField>,
}

impl Default for PrechatFields {
    fn default() -> Self {
        Self {
            name: FieldRule::Required,
            email: FieldRule::Optional,
            subject: FieldRule::Required,
            group: FieldRule::Optional,
            custom: Vec::new(),
        }
    }
}

/// Which side of the page the launcher and panel sit on.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Side {
    #[default]
    Right,
    Left,
}

/// The widget as the admin sets it on the Appearance page.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct WidgetSettings {
    /// The panel's title.
    pub title: String,
    /// Shown above the pre-chat form.
    pub greeting: String,
    /// `#rrggbb`: the launcher, the panel's header, buttons and the customer's messages.
    pub brand_color: String,
    pub position: Side,
    pub fields: PrechatFields,
    /// Origins (`https://shop.example.com`) allowed to embed the widget; none means any.
    pub allowed_origins: Vec<String>,
    /// When no agent can take a chat: `true` queues it anyway, `false` offers the
    /// message form instead.
    pub queue_when_offline: bool,
}

impl Default for WidgetSettings {
    fn default() -> Self {
        Self {
            title: "Chat with us".to_owned(),
            greeting: "Tell us who you are and what you need; an agent will join you.".to_owned(),
            brand_color: "#2456d3".to_owned(),
            position: Side::Right,
            fields: PrechatFields::default(),
            allowed_origins: Vec::new(),
            queue_when_offline: false,
        }
    }
}

pub const MAX_TITLE_CHARS: usize = 60;
pub const MAX_GREETING_CHARS: usize = 300;
pub const MAX_CUSTOM_FIELDS: usize = 10;
pub const MAX_FIELD_KEY_CHARS: usize = 32;
pub const MAX_FIELD_LABEL_CHARS: usize = 60;
pub const MAX_ANSWER_CHARS: usize = 200;
pub const MAX_EMAIL_CHARS: usize = 254;
pub const MAX_ALLOWED_ORIGINS: usize = 50;

/// A problem with a form, naming the field it is about (`name`, `email`, a custom key,
/// or a settings field) so a form can show it there.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct FormProblem {
    pub field: String,
    pub message: String,
}

impl FormProblem {
    fn new(field: &str, message: impl Into<String>) -> Self {
        Self {
            field: field.to_owned(),
            message: message.into(),
        }
    }

    fn text(field: &str, error: TextError) -> Self {
        Self::new(field, error.to_string())
    }
}

impl fmt::Display for FormProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for FormProblem {}

/// `scheme://host[:port]` with an `http` or `https` scheme, lower-cased, nothing after.
pub fn normalize_origin(origin: &str) -> Option<String> {
    let origin = origin.trim().trim_end_matches('/').to_ascii_lowercase();
    let rest = origin
        .strip_prefix("https://")
        .or_else(|| origin.strip_prefix("http://"))?;
    let (host, port) = match rest.rsplit_once(':') {
        Some((host, port)) if !rest.ends_with(']') => (host, Some(port)),
        _ => (rest, None),
    };
    let host_ok = !host.is_empty()
        && host
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-.[]:".contains(&b));
    let port_ok =
        port.is_none_or(|p| p.bytes().all(|b| b.is_ascii_digit()) && p.parse::<u16>().is_ok());
    (host_ok && port_ok).then_some(origin)
}

fn is_colour(value: &str) -> bool {
    value.len() == 7 && value.starts_with('#') && value[1..].bytes().all(|b| b.is_ascii_hexdigit())
}

fn is_field_key(key: &str) -> bool {
    !key.is_empty()
        && key.len() <= MAX_FIELD_KEY_CHARS
        && key
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
}

impl WidgetSettings {
    /// The settings as stored: trimmed, origins normalized; or what is wrong, by field.
    pub fn checked(mut self) -> Result<Self, FormProblem> {
        self.title = one_line(&self.title, "title", MAX_TITLE_CHARS)
            .map_err(|e| FormProblem::text("title", e))?;
        self.greeting = self.greeting.trim().to_owned();
        if self.greeting.chars().count() > MAX_GREETING_CHARS {
            return Err(FormProblem::text(
                "greeting",
                TextError::TooLong {
                    field: "greeting",
                    max: MAX_GREETING_CHARS,
                },
            ));
        }
        self.brand_color = self.brand_color.trim().to_ascii_lowercase();
        if !is_colour(&self.brand_color) {
            return Err(FormProblem::new(
                "brand_color",
                "The brand colour must be written #rrggbb, e.g. #2456d3.",
            ));
        }
        if self.fields.custom.len() > MAX_CUSTOM_FIELDS {
            return Err(FormProblem::new(
                "fields",
                format!("At most {MAX_CUSTOM_FIELDS} questions of your own."),
            ));
        }
        let mut keys = Vec::new();
        for field in &mut self.fields.custom {
            field.key = field.key.trim().to_owned();
            if !is_field_key(&field.key)
                || ["name", "email", "subject", "group"].contains(&field.key.as_str())
            {
                return Err(FormProblem::new(
                    "fields",
                    format!(
                        "A question's key must be 1 to {MAX_FIELD_KEY_CHARS} of a-z, 0-9 and _, \
                         and not name, email, subject or group (\"{}\").",
                        field.key
                    ),
                ));
            }
            if keys.contains(&field.key) {
                return Err(FormProblem::new(
                    "fields",
                    format!("Two questions have the key \"{}\".", field.key),
                ));
            }
            keys.push(field.key.clone());
            field.label = one_line(&field.label, "question", MAX_FIELD_LABEL_CHARS)
                .map_err(|e| FormProblem::text("fields", e))?;
        }
        if self.allowed_origins.len() > MAX_ALLOWED_ORIGINS {
            return Err(FormProblem::new(
                "allowed_origins",
                format!("At most {MAX_ALLOWED_ORIGINS} sites."),
            ));
        }
        let mut origins = Vec::new();
        for origin in self.allowed_origins.iter().filter(|o| !o.trim().is_empty()) {
            let normal = normalize_origin(origin).ok_or_else(|| {
                FormProblem::new(
                    "allowed_origins",
                    format!(
                        "\"{}\" is not a site's origin: write it as https://shop.example.com \
                         (a port may follow; no path).",
                        origin.trim()
                    ),
                )
            })?;
            if !origins.contains(&normal) {
                origins.push(normal);
            }
        }
        self.allowed_origins = origins;
        Ok(self)
    }

    /// Whether a page of `origin` may embed the widget.
    pub fn allows(&self, origin: &str) -> bool {
        self.allowed_origins.is_empty()
            || normalize_origin(origin).is_some_and(|o| self.allowed_origins.contains(&o))
    }
}

/// What a customer typed in the pre-chat form, before the check.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct PrechatAnswers {
    pub name: String,
    pub email: String,
    pub subject: String,
    /// Answers to the admin's own questions, by key.
    pub custom: BTreeMap<String, String>,
}

/// Answers that passed the check: what the case keeps.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CheckedAnswers {
    /// The name given, or "Visitor".
    pub name: String,
    pub email: Option<String>,
    pub subject: String,
    /// Only the admin's current questions, answered ones only, in the admin's order.
    pub custom: Vec<Answer>,
}

/// The name a customer who gave none goes by.
pub const ANONYMOUS_NAME: &str = "Visitor";

/// A plausible e-mail address: one `@`, something before it, a dotted domain after it,
/// no spaces. (Whether it reaches anyone only sending to it can tell.)
pub fn is_email(value: &str) -> bool {
    let Some((local, domain)) = value.split_once('@') else {
        return false;
    };
    value.len() <= MAX_EMAIL_CHARS
        && !local.is_empty()
        && !domain.contains('@')
        && domain.contains('.')
        && !domain.starts_with('.')
        && !domain.ends_with('.')
        && !value.chars().any(|c| c.is_whitespace() || c.is_control())
}

/// One optional-or-required one-line answer: `None` when left empty and allowed to be.
fn answer(
    value: &str,
    rule: FieldRule,
    field: &str,
    label: &'static str,
    max: usize,
) -> Result<Option<String>, FormProblem> {
    if rule == FieldRule::Hidden || (value.trim().is_empty() && rule == FieldRule::Optional) {
        return Ok(None);
    }
    one_line(value, label, max)
        .map(Some)
        .map_err(|e| FormProblem::text(field, e))
}

impl PrechatFields {
    /// The offline form: the same questions, with an email required, since the answer
    /// goes there.
    pub fn for_message(&self) -> Self {
        Self {
            email: FieldRule::Required,
            ..self.clone()
        }
    }

    /// Checks answers against this form: required fields filled in, an e-mail that looks
    /// like one, lengths; answers to hidden fields and to unknown questions are dropped.
    pub fn check(&self, answers: &PrechatAnswers) -> Result<CheckedAnswers, FormProblem> {
        let name = answer(&answers.name, self.name, "name", "name", MAX_NAME_CHARS)?;
        let email = answer(
            &answers.email,
            self.email,
            "email",
            "email",
            MAX_EMAIL_CHARS,
        )?;
        if let Some(email) = &email
            && !is_email(email)
        {
            return Err(FormProblem::new(
                "email",
                "The email does not look like an address (name@example.com).",
            ));
        }
        let subject = answer(
            &answers.subject,
            self.subject,
            "subject",
            "subject",
            MAX_SUBJECT_CHARS,
        )?;
        let mut custom = Vec::new();
        for field in &self.custom {
            let value = answers.custom.get(&field.key).map_or("", String::as_str);
            if value.trim().is_empty() {
                if field.required {
                    return Err(FormProblem::new(
                        &field.key,
                        format!("Please answer \"{}\".", field.label),
                    ));
                }
                continue;
            }
            let value = one_line(value, "answer", MAX_ANSWER_CHARS)
                .map_err(|e| FormProblem::text(&field.key, e))?;
            custom.push(Answer {
                key: field.key.clone(),
                label: field.label.clone(),
                value,
            });
        }
        Ok(CheckedAnswers {
            name: name.unwrap_or_else(|| ANONYMOUS_NAME.to_owned()),
            email,
            subject: subject.unwrap_or_default(),
            custom,
        })
    }

    /// The group a new chat is for, out of the `groups` there are: one of them, given
    /// when the form requires it (and there is one to choose), dropped when it hides it.
    pub fn checked_group(
        &self,
        chosen: Option<GroupId>,
        groups: &[Group],
    ) -> Result<Option<GroupId>, FormProblem> {
        if self.group == FieldRule::Hidden {
            return Ok(None);
        }
        match chosen {
            Some(id) if !groups.iter().any(|g| g.id == id) => {
                Err(FormProblem::new("group", "There is no such group."))
            }
            None if self.group == FieldRule::Required && !groups.is_empty() => {
                Err(FormProblem::new("group", "Please choose a group."))
            }
            chosen => Ok(chosen),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_group_must_exist_is_required_only_when_there_are_some_and_is_dropped_when_hidden() {
        let groups = [Group {
            id: 3,
            name: "Sales".into(),
        }];
        let mut form = PrechatFields {
            group: FieldRule::Required,
            ..PrechatFields::default()
        };
        assert_eq!(form.checked_group(Some(3), &groups), Ok(Some(3)));
        assert_eq!(
            form.checked_group(None, &groups).map_err(|p| p.message),
            Err("Please choose a group.".to_owned())
        );
        assert_eq!(form.checked_group(None, &[]), Ok(None));
        assert_eq!(
            form.checked_group(Some(9), &groups).map_err(|p| p.field),
            Err("group".to_owned())
        );
        form.group = FieldRule::Optional;
        assert_eq!(form.checked_group(None, &groups), Ok(None));
        form.group = FieldRule::Hidden;
        assert_eq!(form.checked_group(Some(9), &groups), Ok(None));
    }

    fn answers(name: &str, email: &str, subject: &str) -> PrechatAnswers {
        PrechatAnswers {
            name: name.into(),
            email: email.into(),
            subject: subject.into(),
            custom: BTreeMap::new(),
        }
    }

    #[test]
    fn required_fields_must_be_filled_in_and_hidden_ones_are_dropped() {
        let form = PrechatFields {
            name: FieldRule::Required,
            email: FieldRule::Required,
            subject: FieldRule::Hidden,
            ..PrechatFields::default()
        };
        let problem = form.check(&answers("Ada", " ", "x")).expect_err("refused");
        assert_eq!(problem.field, "email");
        let checked = form
            .check(&answers(" Ada ", "ada@example.com", "ignored"))
            .expect("accepted");
        assert_eq!(checked.name, "Ada");
        assert_eq!(checked.email.as_deref(), Some("ada@example.com"));
        assert_eq!(checked.subject, "");
    }

    #[test]
    fn an_optional_name_left_empty_becomes_visitor() {
        let form = PrechatFields {
            name: FieldRule::Optional,
            subject: FieldRule::Optional,
            ..PrechatFields::default()
        };
        let checked = form.check(&answers("", "", "")).expect("accepted");
        assert_eq!(checked.name, ANONYMOUS_NAME);
        assert_eq!(checked.email, None);
    }

    #[test]
    fn an_email_must_look_like_an_address() {
        for bad in [
            "ada",
            "ada@",
            "@example.com",
            "ada@example",
            "a b@example.com",
            "a@b@c.com",
            "ada@.com",
        ] {
            assert!(!is_email(bad), "{bad}");
        }
        assert!(is_email("ada.lovelace+chat@example.co.uk"));
        let form = PrechatFields::default();
        assert_eq!(
            form.check(&answers("Ada", "nope", "Hi"))
                .expect_err("refused")
                .field,
            "email"
        );
    }

    #[test]
    fn custom_questions_are_checked_in_the_admins_order_and_unknown_answers_dropped() {
        let form = PrechatFields {
            custom: vec![
                CustomField {
                    key: "order".into(),
                    label: "Order number".into(),
                    required: true,
                },
                CustomField {
                    key: "plan".into(),
                    label: "Plan".into(),
                    required: false,
                },
            ],
            ..PrechatFields::default()
        };
        let mut given = answers("Ada", "", "Late order");
        given.custom.insert("plan".into(), "Pro".into());
        let problem = form.check(&given).expect_err("refused");
        assert_eq!(problem.field, "order");
        assert!(problem.message.contains("Order number"));
        given.custom.insert("order".into(), " 1042 ".into());
        given.custom.insert("sneaky".into(), "x".into());
        let checked = form.check(&given).expect("accepted");
        let answered: Vec<_> = checked
            .custom
            .iter()
            .map(|a| (a.key.as_str(), a.label.as_str(), a.value.as_str()))
            .collect();
        assert_eq!(
            answered,
            vec![("order", "Order number", "1042"), ("plan", "Plan", "Pro")]
        );
    }

    #[test]
    fn settings_are_normalized_or_refused_by_field() {
        let settings = WidgetSettings {
            brand_color: "#AABBCC".into(),
            allowed_origins: vec![
                "https://Shop.Example.com/".into(),
                " ".into(),
                "https://shop.example.com".into(),
                "http://localhost:3000".into(),
            ],
            ..WidgetSettings::default()
        }
        .checked()
        .expect("accepted");
        assert_eq!(settings.brand_color, "#aabbcc");
        assert_eq!(
            settings.allowed_origins,
            vec!["https://shop.example.com", "http://localhost:3000"]
        );
        assert!(settings.allows("https://shop.example.com"));
        assert!(!settings.allows("https://evil.example.com"));
        assert!(WidgetSettings::default().allows("https://anything.example"));

        let refused = |settings: WidgetSettings| settings.checked().expect_err("refused").field;
        let base = WidgetSettings::default;
        assert_eq!(
            refused(WidgetSettings {
                brand_color: "blue".into(),
                ..base()
            }),
            "brand_color"
        );
        assert_eq!(
            refused(WidgetSettings {
                title: " ".into(),
                ..base()
            }),
            "title"
        );
        for origin in [
            "shop.example.com",
            "ftp://x.com",
            "https://x.com/path",
            "https://x.com:99999",
            "javascript:alert(1)",
        ] {
            assert_eq!(
                refused(WidgetSettings {
                    allowed_origins: vec![origin.into()],
                    ..base()
                }),
                "allowed_origins",
                "{origin}"
            );
        }
        let twice = CustomField {
            key: "order".into(),
            label: "Order".into(),
            required: false,
        };
        let fields = PrechatFields {
            custom: vec![twice.clone(), twice],
            ..PrechatFields::default()
        };
        assert_eq!(refused(WidgetSettings { fields, ..base() }), "fields");
    }
}
