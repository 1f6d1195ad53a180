//! Posted fields, the messages tied to them, and the conversions between
//! what a form shows (a date) and what the directory stores.

/// The fields of a posted form, in their order (checkboxes repeat a name).
pub struct Fields(Vec<(String, String)>);

impl Fields {
    pub fn new(pairs: Vec<(String, String)>) -> Fields {
        Fields(pairs)
    }

    /// The first value of `name`, trimmed; empty when absent.
    pub fn get(&self, name: &str) -> &str {
        self.0.iter().find(|(k, _)| k == name).map(|(_, v)| v.trim()).unwrap_or("")
    }

    /// The value of `name` as typed (a password: spaces are part of it).
    pub fn raw(&self, name: &str) -> &str {
        self.0.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str()).unwrap_or("")
    }

    /// Every value of `name`.
    pub fn all(&self, name: &str) -> Vec<&str> {
        self.0.iter().filter(|(k, _)| k == name).map(|(_, v)| v.trim()).collect()
    }
}

/// Messages tied to the fields of a form (RGAA 11.10: each error next to
/// its field, and its field's `aria-describedby`).
#[derive(Default, Debug)]
pub struct FieldErrors(pub Vec<(&'static str, String)>);

impl FieldErrors {
    pub fn add(&mut self, field: &'static str, message: impl Into<String>) {
        self.0.push((field, message.into()));
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The message of one field, empty when it has none.
    pub fn of(&self, field: &str) -> &str {
        self.0.iter().find(|(f, _)| *f == field).map(|(_, m)| m.as_str()).unwrap_or("")
    }
}

/// A form's `AAAA-MM-JJ` as the GeneralizedTime of the start of that day
/// (UTC); `end` gives its last second instead, so that "valid until the
/// 31st" includes the 31st.
pub fn date_to_generalized(date: &str, end: bool) -> Option<String> {
    // `31/12/2026`, as a person or a spreadsheet writes it, is the same day.
    let swapped;
    let date = match date.split('/').collect::<Vec<_>>()[..] {
        [d, m, y] if d.len() == 2 && m.len() == 2 && y.len() == 4 => {
            swapped = format!("{y}-{m}-{d}");
            swapped.as_str()
        }
        _ => date,
    };
    let b = date.as_bytes();
    if b.len() != 10 || b[4] != b'-' || b[7] != b'-' {
        return None;
    }
    let digits = |r: std::ops::Range<usize>| date.get(r).filter(|s| s.bytes().all(|c| c.is_ascii_digit()));
    let (y, m, d) = (digits(0..4)?, digits(5..7)?, digits(8..10)?);
    let (mi, di): (u32, u32) = (m.parse().ok()?, d.parse().ok()?);
    let yi: u32 = y.parse().ok()?;
    let leap = yi.is_multiple_of(4) && (!yi.is_multiple_of(100) || yi.is_multiple_of(400));
    let days = [31, if leap { 29 } else { 28 }, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31];
    if !(1..=12).contains(&mi) || di == 0 || di > days[(mi - 1) as usize] {
        return None;
    }
    Some(format!("{y}{m}{d}{}", if end { "235959Z" } else { "000000Z" }))
}

/// The `AAAA-MM-JJ` of a stored GeneralizedTime, for a date field.
pub fn generalized_to_date(value: &str) -> String {
    match (value.get(0..4), value.get(4..6), value.get(6..8)) {
        (Some(y), Some(m), Some(d)) => format!("{y}-{m}-{d}"),
        _ => String::new(),
    }
}

/// A stored GeneralizedTime as a French reader reads it: `31/12/2026`.
pub fn generalized_to_french(value: &str) -> String {
    match (value.get(0..4), value.get(4..6), value.get(6..8)) {
        (Some(y), Some(m), Some(d)) => format!("{d}/{m}/{y}"),
        _ => value.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_form_date_becomes_the_first_or_last_second_of_its_day() {
        assert_eq!(date_to_generalized("2026-12-31", false).as_deref(), Some("20261231000000Z"));
        assert_eq!(date_to_generalized("2026-12-31", true).as_deref(), Some("20261231235959Z"));
        assert_eq!(date_to_generalized("2028-02-29", true).as_deref(), Some("20280229235959Z"));
        assert_eq!(date_to_generalized("31/12/2026", false).as_deref(), Some("20261231000000Z"));
    }

    #[test]
    fn an_impossible_date_is_no_date() {
        for bad in ["2026-02-29", "2026-13-01", "2026-00-10", "31/12/26", "1/1/2026", "2026-1-1", "", "2026-12-3x"] {
            assert_eq!(date_to_generalized(bad, false), None, "{bad}");
        }
    }

    #[test]
    fn stored_times_read_back_as_the_dates_typed() {
        assert_eq!(generalized_to_date("20261231235959Z"), "2026-12-31");
        assert_eq!(generalized_to_french("20261231235959Z"), "31/12/2026");
    }
}
