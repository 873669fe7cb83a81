//! The approximate location on a screen pop, from what Parlor can know without asking an
//! outside service: a geo header set by the reverse proxy in front of it, if the admin
//! named one, else the time zone and language the visitor's browser reports.

/// A short, honest description: always says it is approximate and where it came from.
pub fn approximate(
    proxy_geo: Option<&str>,
    time_zone: Option<&str>,
    language: Option<&str>,
) -> String {
    let clean = |s: Option<&str>| {
        s.map(|s| {
            s.trim()
                .chars()
                .filter(|c| !c.is_control())
                .take(64)
                .collect::<String>()
        })
        .filter(|s| !s.is_empty())
    };
    if let Some(geo) = clean(proxy_geo) {
        return format!("{geo} (from network)");
    }
    match (clean(time_zone), clean(language)) {
        (Some(tz), Some(lang)) => format!("{tz} time zone, {lang} (from browser)"),
        (Some(tz), None) => format!("{tz} time zone (from browser)"),
        (None, Some(lang)) => format!("{lang} (from browser)"),
        (None, None) => "Unknown".to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_proxy_header_wins_when_present() {
        assert_eq!(
            approximate(Some("FR"), Some("Europe/Paris"), Some("fr")),
            "FR (from network)"
        );
    }

    #[test]
    fn the_browser_time_zone_and_language_are_the_fallback() {
        assert_eq!(
            approximate(None, Some("Europe/Paris"), Some("fr-FR")),
            "Europe/Paris time zone, fr-FR (from browser)"
        );
        assert_eq!(approximate(Some("  "), None, None), "Unknown");
    }

    #[test]
    fn reported_values_are_bounded_and_stripped_of_control_characters() {
        let long = "x".repeat(500);
        let text = approximate(None, Some(&format!("Bad\n{long}")), None);
        assert!(!text.contains('\n'));
        assert!(text.len() < 120);
    }
}
