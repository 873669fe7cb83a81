//! Bounds on what a response's Liquid may cost *while* it renders, not after: checking
//! the finished text is too late when one filter can build megabytes first. Every
//! filter refuses an input or an output larger than a chat message may be; the filters
//! whose output grows with an argument (`replace`, the widths of `date`'s format) work
//! out the size before they build anything; blocks nest only so deep; and the text is
//! written to a buffer that stops at the limit.

use std::fmt;
use std::io;

use liquid_core::model::ScalarCow;
use liquid_core::parser::FilterArguments;
use liquid_core::{
    Display_filter, Error, Expression, Filter, FilterParameters, FilterReflection,
    FromFilterParameters, ParseFilter, Result, Runtime, Value, ValueView,
};
use parlor_protocol::MAX_MESSAGE_CHARS;

/// The most bytes any value may hold while a response renders: a whole chat message of
/// four-byte characters.
pub const MAX_BYTES: usize = MAX_MESSAGE_CHARS * 4;

/// How deep `if`, `unless` and `case` blocks may nest.
pub const MAX_NESTING: usize = 16;

/// The widest field a `date` format may ask for (`%64Y`).
pub const MAX_DATE_WIDTH: usize = 64;

/// What a refused render says: a value grew past what a message may hold.
pub const OVER_LIMIT: &str = "grew past the size of a chat message";

fn over_limit() -> Error {
    Error::with_msg(format!("A value {OVER_LIMIT}"))
}

fn within_limit(value: &dyn ValueView) -> Result<()> {
    if value.to_kstr().len() > MAX_BYTES {
        return Err(over_limit());
    }
    Ok(())
}

/// A filter whose input and output are held to [`MAX_BYTES`].
#[derive(Clone)]
pub struct Bounded<F>(pub F);

impl<F: ParseFilter + Clone + 'static> ParseFilter for Bounded<F> {
    fn parse(&self, arguments: FilterArguments<'_>) -> Result<Box<dyn Filter>> {
        Ok(Box::new(BoundedFilter(self.0.parse(arguments)?)))
    }

    fn reflection(&self) -> &dyn FilterReflection {
        self.0.reflection()
    }
}

#[derive(Debug)]
struct BoundedFilter(Box<dyn Filter>);

impl fmt::Display for BoundedFilter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

impl Filter for BoundedFilter {
    fn evaluate(&self, input: &dyn ValueView, runtime: &dyn Runtime) -> Result<Value> {
        within_limit(input)?;
        let output = self.0.evaluate(input, runtime)?;
        within_limit(&output)?;
        Ok(output)
    }
}

#[derive(Debug, FilterParameters)]
struct ReplaceArgs {
    #[parameter(description = "The text to search.", arg_type = "str")]
    search: Expression,
    #[parameter(
        description = "The text to put in its place; without it, the text found is removed.",
        arg_type = "str"
    )]
    replace: Option<Expression>,
}

/// `replace`, which refuses before building a result over the limit: an empty search
/// text or a long replacement multiplies the input's size.
#[derive(Clone, ParseFilter, FilterReflection)]
#[filter(
    name = "replace",
    description = "Replaces every occurrence of `search` with `replace`.",
    parameters(ReplaceArgs),
    parsed(ReplaceFilter)
)]
pub struct Replace;

#[derive(Debug, FromFilterParameters, Display_filter)]
#[name = "replace"]
struct ReplaceFilter {
    #[parameters]
    args: ReplaceArgs,
}

impl Filter for ReplaceFilter {
    fn evaluate(&self, input: &dyn ValueView, runtime: &dyn Runtime) -> Result<Value> {
        let args = self.args.evaluate(runtime)?;
        let input = input.to_kstr();
        let (search, replace) = (
            args.search.as_str(),
            args.replace.as_ref().map_or("", |r| r.as_str()),
        );
        // An empty search text matches between every two characters, as `str::replace` does.
        let found = if search.is_empty() {
            input.chars().count() + 1
        } else {
            input.matches(search).count()
        };
        let bytes = (input.len() - found * search.len())
            .saturating_add(found.saturating_mul(replace.len()));
        if bytes > MAX_BYTES {
            return Err(over_limit());
        }
        Ok(Value::scalar(input.replace(search, replace)))
    }
}

#[derive(Debug, FilterParameters)]
struct DateArgs {
    #[parameter(description = "The format to write the date in.", arg_type = "str")]
    format: Expression,
}

/// `date`, which refuses field widths over [`MAX_DATE_WIDTH`] before formatting: a
/// width is otherwise unbounded (`%30000000Y`).
#[derive(Clone, ParseFilter, FilterReflection)]
#[filter(
    name = "date",
    description = "Writes a date in the given format.",
    parameters(DateArgs),
    parsed(DateFilter)
)]
pub struct Date;

#[derive(Debug, FromFilterParameters, Display_filter)]
#[name = "date"]
struct DateFilter {
    #[parameters]
    args: DateArgs,
}

impl Filter for DateFilter {
    fn evaluate(&self, input: &dyn ValueView, runtime: &dyn Runtime) -> Result<Value> {
        let args = self.args.evaluate(runtime)?;
        let format = args.format.as_str();
        check_date_format(format)?;
        match input
            .as_scalar()
            .and_then(|s: ScalarCow<'_>| s.to_date_time())
        {
            Some(date) if !format.is_empty() => date
                .format(format)
                .map(Value::scalar)
                .map_err(|_| Error::with_msg(format!("Invalid date format: {format}"))),
            _ => Ok(input.to_value()),
        }
    }
}

/// Refuses a `date` format with a field wider than [`MAX_DATE_WIDTH`]
/// (`%[flags][width]conversion`).
fn check_date_format(format: &str) -> Result<()> {
    let mut chars = format.chars().peekable();
    while let Some(c) = chars.next() {
        if c != '%' {
            continue;
        }
        while chars
            .next_if(|c| matches!(c, '-' | '_' | '0' | '^' | '#'))
            .is_some()
        {}
        let mut width = 0_usize;
        while let Some(digit) = chars.next_if(char::is_ascii_digit) {
            let digit = digit.to_digit(10).unwrap_or(0) as usize;
            width = width.saturating_mul(10).saturating_add(digit);
        }
        if width > MAX_DATE_WIDTH {
            return Err(Error::with_msg(format!(
                "A date field may be at most {MAX_DATE_WIDTH} characters wide"
            )));
        }
        // The conversion itself (`Y`, `%`, …).
        chars.next();
    }
    Ok(())
}

/// How deep the template's blocks nest, read from its tags before it is parsed (the
/// parser recurses once per level).
pub fn nesting(template: &str) -> usize {
    let (mut depth, mut deepest) = (0_usize, 0_usize);
    for tag in template.split("{%").skip(1) {
        let name = tag
            .trim_start_matches('-')
            .trim_start()
            .split(|c: char| !c.is_ascii_alphanumeric() && c != '_')
            .next()
            .unwrap_or("");
        match name {
            "if" | "unless" | "case" | "raw" | "comment" => {
                depth += 1;
                deepest = deepest.max(depth);
            }
            _ if name.starts_with("end") => depth = depth.saturating_sub(1),
            _ => {}
        }
    }
    deepest
}

/// Where the text renders to: a buffer that refuses to grow past [`MAX_BYTES`].
#[derive(Default)]
pub struct Capped {
    pub bytes: Vec<u8>,
    pub overflowed: bool,
}

impl io::Write for Capped {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        if self.bytes.len() + buf.len() > MAX_BYTES {
            self.overflowed = true;
            return Err(io::Error::other(OVER_LIMIT));
        }
        self.bytes.extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn date_widths_over_the_limit_are_found_behind_flags() {
        assert!(check_date_format("%Y-%m-%d %H:%M").is_ok());
        assert!(check_date_format("%64Y %-d %%").is_ok());
        assert!(check_date_format("%65Y").is_err());
        assert!(check_date_format("%-_0^#30000000Y").is_err());
        assert!(check_date_format("%99999999999999999999999999Y").is_err());
        assert!(check_date_format("%").is_ok());
    }

    #[test]
    fn nesting_counts_open_blocks() {
        assert_eq!(nesting("plain"), 0);
        assert_eq!(nesting("{% if a %}{% if b %}x{% endif %}{% endif %}"), 2);
        assert_eq!(
            nesting("{%- unless a -%}x{% endunless %}{% if b %}{% endif %}"),
            1
        );
        assert_eq!(nesting(&"{% if a %}".repeat(40)), 40);
    }
}
