//! Change sequence numbers: when an entry last changed, in the form OpenLDAP
//! writes and its syncrepl consumers compare (`entryCSN`, `contextCSN`):
//! `YYYYmmddHHMMSS.uuuuuuZ#cccccc#sss#mmmmmm`, the time to the microsecond,
//! a count among CSNs of the same microsecond, the server id and a
//! modification number, fixed width so that text order is time order.
//!
//! Held as one `u128` whose numeric order is that text order: the key of the
//! store's change index and deletion log.

use std::fmt;

/// Most CSNs in one microsecond before the next microsecond is taken.
const MAX_COUNT: u32 = 0xff_ffff;
/// The highest server id the three hex digits hold.
pub const MAX_SERVER_ID: u16 = 0xfff;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Csn(pub u128);

impl Csn {
    pub fn new(micros: u64, count: u32, sid: u16, modn: u32) -> Csn {
        Csn((u128::from(micros) << 64)
            | (u128::from(count & MAX_COUNT) << 40)
            | (u128::from(sid & MAX_SERVER_ID) << 24)
            | u128::from(modn & 0xff_ffff))
    }

    /// Microseconds since the Unix epoch.
    pub fn micros(self) -> u64 {
        (self.0 >> 64) as u64
    }

    pub fn count(self) -> u32 {
        ((self.0 >> 40) as u32) & MAX_COUNT
    }

    pub fn sid(self) -> u16 {
        ((self.0 >> 24) as u16) & MAX_SERVER_ID
    }

    fn modn(self) -> u32 {
        (self.0 as u32) & 0xff_ffff
    }

    /// The CSN after `last` for a change made now (`now_micros`) by server
    /// `sid`: later than `last` whatever the clock says (it may step back).
    pub fn next(last: Csn, now_micros: u64, sid: u16) -> Csn {
        let (micros, count) = if now_micros > last.micros() {
            (now_micros, 0)
        } else if last.count() < MAX_COUNT {
            (last.micros(), last.count() + 1)
        } else {
            (last.micros() + 1, 0)
        };
        Csn::new(micros, count, sid, 0)
    }

    /// Read the text form; `None` for anything else (a foreign cookie).
    pub fn parse(s: &str) -> Option<Csn> {
        let b = s.as_bytes();
        if b.len() != 40 || b[14] != b'.' || b[21] != b'Z' || b[22] != b'#' || b[29] != b'#' || b[33] != b'#' {
            return None;
        }
        let num = |r: std::ops::Range<usize>| -> Option<u64> { s.get(r)?.parse().ok() };
        let hex = |r: std::ops::Range<usize>| -> Option<u32> { u32::from_str_radix(s.get(r)?, 16).ok() };
        let (year, month, day) = (num(0..4)?, num(4..6)?, num(6..8)?);
        let (hour, minute, second, micro) = (num(8..10)?, num(10..12)?, num(12..14)?, num(15..21)?);
        if !(1..=12).contains(&month) || !(1..=31).contains(&day) || hour > 23 || minute > 59 || second > 60 {
            return None;
        }
        if s.get(0..21)?.bytes().enumerate().any(|(i, c)| i != 14 && !c.is_ascii_digit()) {
            return None;
        }
        let days = crate::calendar::days_from_civil(year as i64, month as i64, day as i64);
        let secs = u64::try_from(days).ok()? * 86_400 + hour * 3_600 + minute * 60 + second;
        let sid = u16::try_from(hex(30..33)?).ok()?;
        Some(Csn::new(secs * 1_000_000 + micro, hex(23..29)?, sid, hex(34..40)?))
    }
}

impl fmt::Display for Csn {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let micros = self.micros();
        let secs = micros / 1_000_000;
        let (y, m, d) = crate::calendar::civil_from_days((secs / 86_400) as i64);
        let rem = secs % 86_400;
        write!(
            f,
            "{y:04}{m:02}{d:02}{:02}{:02}{:02}.{:06}Z#{:06x}#{:03x}#{:06x}",
            rem / 3_600,
            rem % 3_600 / 60,
            rem % 60,
            micros % 1_000_000,
            self.count(),
            self.sid(),
            self.modn()
        )
    }
}

/// Microseconds since the Unix epoch, now.
pub fn now_micros() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_micros() as u64)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn a_csn_is_written_as_openldap_writes_it() {
        let c = Csn::parse("20261207221500.123456Z#000002#001#000000").unwrap();
        assert_eq!(c.to_string(), "20261207221500.123456Z#000002#001#000000");
        assert_eq!((c.count(), c.sid()), (2, 1));
        assert!(Csn::parse("20261207221500Z#000002#001#000000").is_none());
        assert!(Csn::parse("2026120722150x.123456Z#000002#001#000000").is_none());
    }

    #[test]
    fn the_next_csn_is_later_even_when_the_clock_steps_back() {
        let last = Csn::new(2_000_000, 5, 1, 0);
        let back = Csn::next(last, 1_000_000, 1);
        assert!(back > last);
        assert_eq!((back.micros(), back.count()), (2_000_000, 6));
        let full = Csn::new(2_000_000, MAX_COUNT, 1, 0);
        assert!(Csn::next(full, 0, 1) > full);
        assert_eq!(Csn::next(last, 3_000_000, 1), Csn::new(3_000_000, 0, 1, 0));
    }

    proptest! {
        #[test]
        fn text_order_is_numeric_order(a in 0u64..8_000_000_000_000_000, b in 0u64..8_000_000_000_000_000,
                                       ca in 0u32..0xffffff, cb in 0u32..0xffffff, sid in 0u16..0xfff) {
            let (x, y) = (Csn::new(a, ca, sid, 0), Csn::new(b, cb, sid, 0));
            prop_assert_eq!(Csn::parse(&x.to_string()), Some(x));
            prop_assert_eq!(x.cmp(&y), x.to_string().cmp(&y.to_string()));
        }
    }
}
