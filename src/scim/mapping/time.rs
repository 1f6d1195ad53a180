//! SCIM dateTimes (RFC 7643 §2.3.5, RFC 3339) ⇄ LDAP GeneralizedTime.

/// `20261123213000Z` → `2026-11-23T21:30:00Z` (RFC 7643 §2.3.5 dateTime).
pub fn iso_time(gt: &str) -> String {
    let b = gt.as_bytes();
    if b.len() < 15 || !b[..14].iter().all(u8::is_ascii_digit) {
        return gt.to_string();
    }
    let mut out = String::with_capacity(20);
    for (piece, sep) in [(0..4, "-"), (4..6, "-"), (6..8, "T"), (8..10, ":"), (10..12, ":"), (12..14, "Z")] {
        out.push_str(&gt[piece]);
        out.push_str(sep);
    }
    out
}

/// An RFC 3339 dateTime (any offset) → `YYYYmmddHHMMSSZ` in UTC, to the
/// second (as the directory keeps its timestamps), for comparisons on meta
/// times; `None` when it is not one. The directory's GeneralizedTime parser
/// does the calendar.
pub fn generalized_time(iso: &str) -> Option<String> {
    let s = iso.trim();
    let b = s.as_bytes();
    if b.len() < 19
        || b.get(4) != Some(&b'-')
        || b.get(7) != Some(&b'-')
        || !matches!(b.get(10), Some(b'T' | b't' | b' '))
    {
        return None;
    }
    let digits = |r: std::ops::Range<usize>| s.get(r).filter(|p| p.bytes().all(|c| c.is_ascii_digit()));
    let (y, mo, d, h, mi, sec) =
        (digits(0..4)?, digits(5..7)?, digits(8..10)?, digits(11..13)?, digits(14..16)?, digits(17..19)?);
    let mut rest = &s[19..];
    if let Some(frac) = rest.strip_prefix('.') {
        rest = &frac[frac.bytes().take_while(u8::is_ascii_digit).count()..];
    }
    let zone = match rest {
        "Z" | "z" | "" => "Z".to_string(),
        o if o.len() == 6 && (o.starts_with('+') || o.starts_with('-')) && o.as_bytes()[3] == b':' => {
            format!("{}{}{}", &o[..1], &o[1..3], &o[4..6])
        }
        _ => return None,
    };
    crate::directory::schema::syntax::parse_generalized_time(&format!("{y}{mo}{d}{h}{mi}{sec}{zone}")).ok()
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn date_times_with_offsets_compare_in_utc() {
        assert_eq!(generalized_time("2026-11-23T21:30:00Z").unwrap(), "20261123213000Z");
        assert_eq!(generalized_time("2026-11-23T22:30:00+01:00").unwrap(), "20261123213000Z");
        assert_eq!(generalized_time("2026-01-01T00:30:00.123+01:00").unwrap(), "20251231233000Z");
        assert_eq!(generalized_time("2024-02-29T23:00:00-02:00").unwrap(), "20240301010000Z");
        assert!(generalized_time("demain").is_none());
        assert_eq!(iso_time("20261123213000Z"), "2026-11-23T21:30:00Z");
    }
}
