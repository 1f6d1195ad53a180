//! LDAP syntaxes (RFC 4517 §3.3) and matching rules (RFC 4517 §4.2): value
//! validation, normalisation and ordering. String preparation follows RFC 4518
//! in the parts that matter for real data: insignificant space handling and
//! case folding (full Unicode lower-casing, so `Œuvre` matches `œuvre`).

use std::cmp::Ordering;

/// The matching rules the server implements (RFC 4517 §4.2, RFC 4530).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MatchingRule {
    CaseIgnore,
    CaseExact,
    CaseIgnoreIa5,
    CaseExactIa5,
    DistinguishedName,
    UniqueMember,
    NumericString,
    TelephoneNumber,
    Integer,
    Boolean,
    GeneralizedTime,
    OctetString,
    ObjectIdentifier,
    Uuid,
    BitString,
    CaseIgnoreList,
}

impl MatchingRule {
    /// Map a rule name (equality, ordering or substrings variant) to its family.
    pub fn from_name(name: &str) -> Option<MatchingRule> {
        use MatchingRule::*;
        Some(match name.to_ascii_lowercase().as_str() {
            "caseignorematch" | "caseignoreorderingmatch" | "caseignoresubstringsmatch" => CaseIgnore,
            "directorystringfirstcomponentmatch" => CaseIgnore,
            "caseexactmatch" | "caseexactorderingmatch" | "caseexactsubstringsmatch" => CaseExact,
            "caseignoreia5match" | "caseignoreia5substringsmatch" => CaseIgnoreIa5,
            "caseexactia5match" | "caseexactia5substringsmatch" => CaseExactIa5,
            "distinguishednamematch" => DistinguishedName,
            "uniquemembermatch" => UniqueMember,
            "numericstringmatch" | "numericstringorderingmatch" | "numericstringsubstringsmatch" => NumericString,
            "telephonenumbermatch" | "telephonenumbersubstringsmatch" => TelephoneNumber,
            "integermatch" | "integerorderingmatch" | "integerfirstcomponentmatch" => Integer,
            "booleanmatch" => Boolean,
            "generalizedtimematch" | "generalizedtimeorderingmatch" => GeneralizedTime,
            "octetstringmatch" | "octetstringorderingmatch" | "certificateexactmatch" => OctetString,
            "protocolinformationmatch" | "presentationaddressmatch" => OctetString,
            "objectidentifiermatch" | "objectidentifierfirstcomponentmatch" => ObjectIdentifier,
            "uuidmatch" | "uuidorderingmatch" => Uuid,
            "bitstringmatch" => BitString,
            "caseignorelistmatch" | "caseignorelistsubstringsmatch" => CaseIgnoreList,
            _ => return None,
        })
    }

    /// The equality rule's RFC name, for error messages and extensible match.
    pub fn by_oid(oid: &str) -> Option<MatchingRule> {
        use MatchingRule::*;
        Some(match oid {
            "2.5.13.2" | "2.5.13.3" | "2.5.13.4" => CaseIgnore,
            "2.5.13.5" | "2.5.13.6" | "2.5.13.7" => CaseExact,
            "1.3.6.1.4.1.1466.109.114.2" | "1.3.6.1.4.1.1466.109.114.3" => CaseIgnoreIa5,
            "1.3.6.1.4.1.1466.109.114.1" => CaseExactIa5,
            "2.5.13.1" => DistinguishedName,
            "2.5.13.8" | "2.5.13.9" | "2.5.13.10" => NumericString,
            "2.5.13.14" | "2.5.13.15" => Integer,
            "2.5.13.13" => Boolean,
            "2.5.13.27" | "2.5.13.28" => GeneralizedTime,
            "2.5.13.17" | "2.5.13.18" => OctetString,
            "2.5.13.0" => ObjectIdentifier,
            "2.5.13.20" | "2.5.13.21" => TelephoneNumber,
            "2.5.13.23" => UniqueMember,
            _ => return None,
        })
    }

    /// Whether two normalised values are ordered by this rule in a way other than bytes.
    pub fn compare(self, a: &[u8], b: &[u8]) -> Ordering {
        match self {
            MatchingRule::Integer => compare_integers(a, b),
            _ => a.cmp(b),
        }
    }
}

/// The syntaxes the server validates (RFC 4517 §3.3); `Other` accepts any value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Syntax {
    DirectoryString,
    Ia5String,
    PrintableString,
    NumericString,
    CountryString,
    Integer,
    Boolean,
    GeneralizedTime,
    Dn,
    NameAndOptionalUid,
    TelephoneNumber,
    Oid,
    Uuid,
    BitString,
    PostalAddress,
    OctetString,
    Other,
}

impl Syntax {
    pub fn from_oid(oid: &str) -> Syntax {
        match oid.strip_prefix("1.3.6.1.4.1.1466.115.121.1.") {
            Some("15") => Syntax::DirectoryString,
            Some("26") => Syntax::Ia5String,
            Some("44") => Syntax::PrintableString,
            Some("36") => Syntax::NumericString,
            Some("11") => Syntax::CountryString,
            Some("27") => Syntax::Integer,
            Some("7") => Syntax::Boolean,
            Some("24") => Syntax::GeneralizedTime,
            Some("12") => Syntax::Dn,
            Some("34") => Syntax::NameAndOptionalUid,
            Some("50") => Syntax::TelephoneNumber,
            Some("38") => Syntax::Oid,
            Some("6") => Syntax::BitString,
            Some("41") => Syntax::PostalAddress,
            Some("40") | Some("5") | Some("28") | Some("8") => Syntax::OctetString,
            _ if oid == "1.3.6.1.1.16.1" => Syntax::Uuid,
            _ => Syntax::Other,
        }
    }

    /// Check a value against the syntax; `Err` says why in words.
    pub fn validate(self, v: &[u8]) -> Result<(), String> {
        let text = || std::str::from_utf8(v).map_err(|_| "value is not valid UTF-8".to_string());
        match self {
            Syntax::DirectoryString | Syntax::PostalAddress => {
                let s = text()?;
                if s.is_empty() {
                    return Err("empty value is not a Directory String".into());
                }
                // RFC 4518 §2.3: NUL is prohibited in the strings LDAP compares.
                if s.contains('\0') {
                    return Err("a NUL character is not allowed".into());
                }
                Ok(())
            }
            Syntax::Ia5String => {
                if v.is_ascii() {
                    Ok(())
                } else {
                    Err("value is not IA5 (ASCII)".into())
                }
            }
            Syntax::PrintableString | Syntax::CountryString => {
                let ok = !v.is_empty() && v.iter().all(|&b| b.is_ascii_alphanumeric() || b" '()+,-./:?=".contains(&b));
                if !ok {
                    return Err("value is not a Printable String".into());
                }
                if self == Syntax::CountryString && v.len() != 2 {
                    return Err("a country code has two letters".into());
                }
                Ok(())
            }
            Syntax::NumericString => {
                if !v.is_empty() && v.iter().all(|&b| b.is_ascii_digit() || b == b' ') {
                    Ok(())
                } else {
                    Err("value is not a Numeric String (digits and spaces)".into())
                }
            }
            Syntax::Integer => parse_integer(text()?).map(|_| ()),
            Syntax::Boolean => match v {
                b"TRUE" | b"FALSE" => Ok(()),
                _ => Err("a Boolean is TRUE or FALSE".into()),
            },
            Syntax::GeneralizedTime => parse_generalized_time(text()?).map(|_| ()),
            Syntax::Dn => crate::directory::dn::Dn::parse(text()?).map(|_| ()).map_err(|e| e.to_string()),
            Syntax::NameAndOptionalUid => {
                let s = text()?;
                let dn = match s.rfind("#'") {
                    Some(i) if s.ends_with("'B") => &s[..i],
                    _ => s,
                };
                crate::directory::dn::Dn::parse(dn).map(|_| ()).map_err(|e| e.to_string())
            }
            Syntax::TelephoneNumber => {
                if !v.is_empty() && v.is_ascii() {
                    Ok(())
                } else {
                    Err("bad telephone number".into())
                }
            }
            Syntax::Oid => {
                let s = text()?;
                let numeric = s.split('.').all(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()));
                let descr = s.bytes().next().is_some_and(|b| b.is_ascii_alphabetic())
                    && s.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-');
                if numeric || descr { Ok(()) } else { Err("value is not an OID or descriptor".into()) }
            }
            Syntax::Uuid => {
                let s = text()?;
                if uuid::Uuid::try_parse(s).is_ok() && s.len() == 36 {
                    Ok(())
                } else {
                    Err("value is not a UUID (RFC 4122 string form)".into())
                }
            }
            Syntax::BitString => {
                let s = text()?;
                let ok = s.len() >= 3
                    && s.starts_with('\'')
                    && s.ends_with("'B")
                    && s[1..s.len() - 2].bytes().all(|b| b == b'0' || b == b'1');
                if ok { Ok(()) } else { Err("value is not a Bit String ('0101'B)".into()) }
            }
            Syntax::OctetString | Syntax::Other => Ok(()),
        }
    }
}

/// RFC 4518 insignificant space handling: trim, and collapse inner runs to one space.
fn collapse_spaces(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for word in s.split(' ').filter(|w| !w.is_empty()) {
        if !out.is_empty() {
            out.push(' ');
        }
        out.push_str(word);
    }
    out
}

/// Normalise a value by a rule that does not need the schema.
pub fn normalize(rule: MatchingRule, v: &[u8]) -> Result<Vec<u8>, String> {
    let text = || std::str::from_utf8(v).map_err(|_| "value is not valid UTF-8".to_string());
    Ok(match rule {
        MatchingRule::CaseIgnore | MatchingRule::CaseIgnoreIa5 | MatchingRule::CaseIgnoreList => {
            let s = text()?;
            if s.is_ascii() {
                // One allocation: lower-cased in place once collapsed.
                let mut folded = collapse_spaces(s);
                folded.make_ascii_lowercase();
                folded.into_bytes()
            } else {
                collapse_spaces(&s.to_lowercase()).into_bytes()
            }
        }
        MatchingRule::CaseExact | MatchingRule::CaseExactIa5 => collapse_spaces(text()?).into_bytes(),
        MatchingRule::NumericString => text()?.chars().filter(|c| *c != ' ').collect::<String>().into_bytes(),
        MatchingRule::TelephoneNumber => text()?
            .chars()
            .filter(|c| *c != ' ' && *c != '-')
            .flat_map(char::to_lowercase)
            .collect::<String>()
            .into_bytes(),
        MatchingRule::Integer => parse_integer(text()?)?.into_bytes(),
        MatchingRule::Boolean => match text()?.trim().to_ascii_uppercase().as_str() {
            b @ ("TRUE" | "FALSE") => b.as_bytes().to_vec(),
            _ => return Err("a Boolean is TRUE or FALSE".into()),
        },
        MatchingRule::GeneralizedTime => parse_generalized_time(text()?)?.into_bytes(),
        MatchingRule::Uuid => text()?.trim().to_ascii_lowercase().into_bytes(),
        MatchingRule::OctetString | MatchingRule::BitString => v.to_vec(),
        // Rules needing the schema are handled by `Schema::normalize`.
        MatchingRule::DistinguishedName | MatchingRule::UniqueMember | MatchingRule::ObjectIdentifier => {
            text()?.to_ascii_lowercase().into_bytes()
        }
    })
}

/// Canonical decimal form of an INTEGER (RFC 4517 §3.3.16), no leading zeros.
fn parse_integer(s: &str) -> Result<String, String> {
    let s = s.trim();
    let (neg, digits) = match s.strip_prefix('-') {
        Some(d) => (true, d),
        None => (false, s),
    };
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return Err(format!("'{s}' is not an INTEGER"));
    }
    let trimmed = digits.trim_start_matches('0');
    Ok(match (neg, trimmed) {
        (_, "") => "0".to_string(),
        (true, t) => format!("-{t}"),
        (false, t) => t.to_string(),
    })
}

/// Order two canonical integers without overflow.
fn compare_integers(a: &[u8], b: &[u8]) -> Ordering {
    let neg_a = a.first() == Some(&b'-');
    let neg_b = b.first() == Some(&b'-');
    match (neg_a, neg_b) {
        (true, false) => Ordering::Less,
        (false, true) => Ordering::Greater,
        (false, false) => a.len().cmp(&b.len()).then_with(|| a.cmp(b)),
        (true, true) => b.len().cmp(&a.len()).then_with(|| b.cmp(a)),
    }
}

/// Parse a GeneralizedTime (RFC 4517 §3.3.13) and return its canonical UTC
/// form `YYYYMMDDHHMMSS[.fff]Z`, which sorts as text in time order.
pub fn parse_generalized_time(s: &str) -> Result<String, String> {
    let bad = || format!("'{s}' is not a GeneralizedTime (YYYYMMDDHH[MM[SS]][.f](Z|±hhmm))");
    let b = s.as_bytes();
    let num = |r: std::ops::Range<usize>| -> Option<i64> {
        let part = b.get(r)?;
        if part.iter().all(|c| c.is_ascii_digit()) { std::str::from_utf8(part).ok()?.parse().ok() } else { None }
    };
    let year = num(0..4).ok_or_else(bad)?;
    let month = num(4..6).ok_or_else(bad)?;
    let day = num(6..8).ok_or_else(bad)?;
    let hour = num(8..10).ok_or_else(bad)?;
    let mut pos = 10;
    let mut minute = 0;
    let mut second = 0;
    if let Some(m) = num(pos..pos + 2) {
        minute = m;
        pos += 2;
        if let Some(sec) = num(pos..pos + 2) {
            second = sec;
            pos += 2;
        }
    }
    let mut fraction = String::new();
    if matches!(b.get(pos), Some(b'.') | Some(b',')) {
        pos += 1;
        while let Some(c) = b.get(pos).filter(|c| c.is_ascii_digit()) {
            fraction.push(*c as char);
            pos += 1;
        }
        if fraction.is_empty() {
            return Err(bad());
        }
    }
    let offset_minutes = match b.get(pos) {
        Some(b'Z') if pos + 1 == b.len() => 0,
        Some(sign @ (b'+' | b'-')) => {
            let hh = num(pos + 1..pos + 3).ok_or_else(bad)?;
            let mm = if b.len() == pos + 5 { num(pos + 3..pos + 5).ok_or_else(bad)? } else { 0 };
            if b.len() != pos + 3 && b.len() != pos + 5 || hh > 23 || mm > 59 {
                return Err(bad());
            }
            let off = hh * 60 + mm;
            if *sign == b'+' { off } else { -off }
        }
        _ => return Err(bad()),
    };
    if !(1..=12).contains(&month)
        || day < 1
        || day > days_in_month(year, month)
        || hour > 23
        || minute > 59
        || second > 60
    {
        return Err(bad());
    }
    let epoch = crate::calendar::days_from_civil(year, month, day) * 86400 + hour * 3600 + minute * 60 + second
        - offset_minutes * 60;
    let fraction = fraction.trim_end_matches('0');
    let mut out = format_epoch(epoch);
    if !fraction.is_empty() {
        out.insert_str(14, &format!(".{fraction}"));
    }
    Ok(out)
}

fn days_in_month(y: i64, m: i64) -> i64 {
    match m {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        _ if (y % 4 == 0 && y % 100 != 0) || y % 400 == 0 => 29,
        _ => 28,
    }
}

/// Seconds since the Unix epoch of a canonical time (`YYYYMMDDHHMMSS`, what
/// [`parse_generalized_time`] starts with); `None` when it is not one.
pub fn epoch_of(t: &str) -> Option<i64> {
    let num =
        |r: std::ops::Range<usize>| t.get(r).filter(|p| p.bytes().all(|c| c.is_ascii_digit()))?.parse::<i64>().ok();
    let days = crate::calendar::days_from_civil(num(0..4)?, num(4..6)?, num(6..8)?);
    Some(days * 86400 + num(8..10)? * 3600 + num(10..12)? * 60 + num(12..14)?)
}

/// `YYYYMMDDHHMMSSZ` for seconds since the Unix epoch.
pub fn format_epoch(secs: i64) -> String {
    let (y, m, d) = crate::calendar::civil_from_days(secs.div_euclid(86400));
    let rem = secs.rem_euclid(86400);
    let (h, min, s) = (rem / 3600, rem % 3600 / 60, rem % 60);
    if !(0..=9999).contains(&y) {
        return format!("{y:04}{m:02}{d:02}{h:02}{min:02}{s:02}Z");
    }
    // Digits written in place: every write stamps two of these, and `format!`
    // costs ten times as much.
    let mut out = String::with_capacity(15);
    for (n, width) in [(y, 4), (m, 2), (d, 2), (h, 2), (min, 2), (s, 2)] {
        for p in (0..width).rev() {
            out.push(char::from(b'0' + (n / 10_i64.pow(p) % 10) as u8));
        }
    }
    out.push('Z');
    out
}

/// The current time as a GeneralizedTime.
pub fn now_generalized() -> String {
    let secs =
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs() as i64).unwrap_or(0);
    format_epoch(secs)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn generalized_time_is_canonicalised_to_utc() {
        assert_eq!(parse_generalized_time("20261123213000Z").unwrap(), "20261123213000Z");
        assert_eq!(parse_generalized_time("202611232130+0100").unwrap(), "20261123203000Z");
        assert_eq!(parse_generalized_time("2026112321Z").unwrap(), "20261123210000Z");
        assert_eq!(parse_generalized_time("20261123213000.500Z").unwrap(), "20261123213000.5Z");
        for bad in ["2026", "20261323000000Z", "20260230000000Z", "20261123213000", "x0261123213000Z"] {
            assert!(parse_generalized_time(bad).is_err(), "{bad}");
        }
        assert_eq!(format_epoch(0), "19700101000000Z");
        assert_eq!(epoch_of("20261207150000"), Some(1_796_655_600));
        assert_eq!(format_epoch(epoch_of("20240229235959").unwrap()), "20240229235959Z");
        assert_eq!(format_epoch(1_795_989_599), "20261129215959Z");
        assert_eq!(format_epoch(253_402_300_799), "99991231235959Z");
        assert_eq!(format_epoch(-1), "19691231235959Z");
    }

    #[test]
    fn case_ignore_folds_unicode_and_spaces() {
        assert_eq!(
            normalize(MatchingRule::CaseIgnore, "  Œuvre   Hélène ".as_bytes()).unwrap(),
            "œuvre hélène".as_bytes()
        );
    }

    #[test]
    fn integers_normalise_and_order() {
        assert_eq!(normalize(MatchingRule::Integer, b"007").unwrap(), b"7");
        assert_eq!(normalize(MatchingRule::Integer, b"-0").unwrap(), b"0");
        assert!(normalize(MatchingRule::Integer, b"12a").is_err());
        assert_eq!(compare_integers(b"-12", b"3"), Ordering::Less);
        assert_eq!(compare_integers(b"100", b"99"), Ordering::Greater);
        assert_eq!(compare_integers(b"-100", b"-99"), Ordering::Less);
    }
}
