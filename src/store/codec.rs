//! On-disk record encoding, versioned by a leading byte. It is deliberately
//! separate from `directory::Entry`: changing the in-memory model never changes
//! what is on disk without a new version here.
//!
//! Layout (version 1): `01`, varint parent id, string DN, string normalised DN,
//! varint attribute count, then per attribute a string name, a varint value
//! count and the length-prefixed values. Values are kept as runs of
//! length-prefixed bytes so that answering a search copies them out directly.
//! Version 2 adds, after the parent id, the entry's CSN (16 bytes, big-endian):
//! the store stamps it when it writes the entry ([`Record::stamped`]); the
//! directory core encodes version 1 and never sees the difference.

use super::{Csn, Result, StoreError};

const RECORD_V1: u8 = 1;
const RECORD_V2: u8 = 2;
const CHANGE_V1: u8 = 1;
const CHANGE_V2: u8 = 2;

/// An entry as stored.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Record {
    /// Parent entry id; 0 for a suffix entry.
    pub parent: u64,
    /// The DN as the client wrote it.
    pub dn: String,
    /// The normalised DN (the `dn2id` key), kept to test scope without parsing.
    pub ndn: String,
    pub attrs: Vec<(String, Vec<Vec<u8>>)>,
    /// When it last changed; `None` for a record written before CSNs.
    pub csn: Option<Csn>,
}

/// One changelog record: who changed what, when. Never carries values.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ChangeRecord {
    pub time: String,
    pub actor: String,
    pub op: String,
    pub dn: String,
    /// Attribute names changed (never values: passwords must not reach the trail),
    /// or the new DN of a rename.
    pub attrs: Vec<String>,
    /// Where the request came from.
    pub peer: String,
    /// `success`, or the refusal (result name and message).
    pub result: String,
    /// The normalised DN of the organisation the target belongs to, if any.
    pub org: String,
}

/// A SCIM bearer token as stored: never the secret, only what it grants.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct TokenRecord {
    /// Short public identifier, for `token list` / `token revoke`.
    pub id: String,
    pub name: String,
    /// The DN of the organisation it is bound to; empty for the CIG as a whole.
    pub scope: String,
    pub created: String,
    /// When a request last presented it (GeneralizedTime, to the minute);
    /// empty: never.
    pub last_used: String,
}

const TOKEN_V1: u8 = 1;
/// Version 2 adds `last_used`; version 1 records read as never used.
const TOKEN_V2: u8 = 2;

impl TokenRecord {
    pub fn encode(&self) -> Vec<u8> {
        let mut out = vec![TOKEN_V2];
        for s in [&self.id, &self.name, &self.scope, &self.created, &self.last_used] {
            put_bytes(&mut out, s.as_bytes());
        }
        out
    }

    pub fn decode(b: &[u8]) -> Result<TokenRecord> {
        let mut c = Cursor { b };
        let version = c.byte()?;
        if version != TOKEN_V1 && version != TOKEN_V2 {
            return Err(StoreError::Corrupt("unknown token record version".into()));
        }
        let mut rec = TokenRecord {
            id: c.string()?,
            name: c.string()?,
            scope: c.string()?,
            created: c.string()?,
            ..TokenRecord::default()
        };
        if version == TOKEN_V2 {
            rec.last_used = c.string()?;
        }
        Ok(rec)
    }
}

pub(super) fn put_varint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

pub(super) fn put_bytes(out: &mut Vec<u8>, b: &[u8]) {
    put_varint(out, b.len() as u64);
    out.extend_from_slice(b);
}

pub(super) struct Cursor<'a> {
    pub(super) b: &'a [u8],
}

impl<'a> Cursor<'a> {
    fn corrupt(what: &str) -> StoreError {
        StoreError::Corrupt(what.to_string())
    }

    pub(super) fn byte(&mut self) -> Result<u8> {
        let (&x, rest) = self.b.split_first().ok_or_else(|| Self::corrupt("truncated"))?;
        self.b = rest;
        Ok(x)
    }

    pub(super) fn varint(&mut self) -> Result<u64> {
        let mut v = 0u64;
        for shift in (0..64).step_by(7) {
            let x = self.byte()?;
            v |= u64::from(x & 0x7f) << shift;
            if x & 0x80 == 0 {
                return Ok(v);
            }
        }
        Err(Self::corrupt("varint too long"))
    }

    pub(super) fn bytes(&mut self) -> Result<&'a [u8]> {
        let n = usize::try_from(self.varint()?).map_err(|_| Self::corrupt("length"))?;
        if n > self.b.len() {
            return Err(Self::corrupt("length beyond record"));
        }
        let (x, rest) = self.b.split_at(n);
        self.b = rest;
        Ok(x)
    }

    fn str(&mut self) -> Result<&'a str> {
        std::str::from_utf8(self.bytes()?).map_err(|_| Self::corrupt("string is not UTF-8"))
    }

    pub(super) fn string(&mut self) -> Result<String> {
        String::from_utf8(self.bytes()?.to_vec()).map_err(|_| Self::corrupt("string is not UTF-8"))
    }
}

impl Record {
    /// `encoded` (either version) as stored with `csn`, under `parent` when
    /// given (else its own): the version-2 header, the body copied once.
    pub fn stamped(encoded: &[u8], parent: Option<u64>, csn: Csn) -> Result<Vec<u8>> {
        let view = RecordView::parse(encoded)?;
        let body = encoded.get(view.body_at..).unwrap_or_default();
        let mut out = Vec::with_capacity(body.len() + 27);
        out.push(RECORD_V2);
        put_varint(&mut out, parent.unwrap_or(view.parent));
        out.extend_from_slice(&csn.0.to_be_bytes());
        out.extend_from_slice(body);
        Ok(out)
    }

    /// The encoding of this record under another parent: `encoded` is
    /// [`Record::encode`] of a record with parent 0 (one byte), so that a
    /// record can be encoded before its parent's id is known.
    pub fn with_parent(encoded: &[u8], parent: u64) -> Vec<u8> {
        let body = encoded.get(2..).unwrap_or_default();
        let mut out = Vec::with_capacity(body.len() + 10);
        out.push(RECORD_V1);
        put_varint(&mut out, parent);
        out.extend_from_slice(body);
        out
    }

    /// Version 1, whatever `csn` holds: the store stamps the CSN as it writes.
    pub fn encode(&self) -> Vec<u8> {
        Record::encode_parts(
            self.parent,
            &self.dn,
            &self.ndn,
            self.attrs.iter().map(|(n, v)| (n.as_str(), v.as_slice())),
        )
    }

    /// The encoding of a record from borrowed parts: an entry is written
    /// without copying its values into a `Record` first.
    pub fn encode_parts<'a>(
        parent: u64,
        dn: &str,
        ndn: &str,
        attrs: impl Iterator<Item = (&'a str, &'a [Vec<u8>])> + Clone,
    ) -> Vec<u8> {
        let size: usize = attrs.clone().map(|(n, v)| n.len() + 4 + v.iter().map(|x| x.len() + 2).sum::<usize>()).sum();
        let count = attrs.clone().count();
        let mut out = Vec::with_capacity(16 + dn.len() + ndn.len() + size);
        out.push(RECORD_V1);
        put_varint(&mut out, parent);
        put_bytes(&mut out, dn.as_bytes());
        put_bytes(&mut out, ndn.as_bytes());
        put_varint(&mut out, count as u64);
        for (name, values) in attrs {
            put_bytes(&mut out, name.as_bytes());
            put_varint(&mut out, values.len() as u64);
            for v in values {
                put_bytes(&mut out, v);
            }
        }
        out
    }

    /// Decode only the DN (the record's header).
    pub fn decode_dn(b: &[u8]) -> Result<String> {
        Ok(RecordView::parse(b)?.dn.to_string())
    }

    pub fn decode(b: &[u8]) -> Result<Record> {
        Record::decode_keeping(b, |_| true)
    }

    /// Decode with only the attributes whose stored name `keep` accepts: a
    /// search asking for three attributes need not copy out the other dozen.
    /// The name is handed over as stored bytes: only a kept name is checked
    /// for UTF-8 (a record holds some twenty).
    pub fn decode_keeping(b: &[u8], keep: impl Fn(&[u8]) -> bool) -> Result<Record> {
        let view = RecordView::parse(b)?;
        let mut c = Cursor { b: view.attrs };
        let n = c.varint()?;
        let mut attrs = Vec::with_capacity(n.min(256) as usize);
        for _ in 0..n {
            let name = c.bytes()?;
            let nv = c.varint()?;
            if !keep(name) {
                for _ in 0..nv {
                    c.bytes()?;
                }
                continue;
            }
            let mut values = Vec::with_capacity(nv.min(1024) as usize);
            for _ in 0..nv {
                values.push(c.bytes()?.to_vec());
            }
            let name = std::str::from_utf8(name).map_err(|_| Cursor::corrupt("string is not UTF-8"))?;
            attrs.push((name.to_string(), values));
        }
        Ok(Record { parent: view.parent, dn: view.dn.to_string(), ndn: view.ndn.to_string(), attrs, csn: view.csn })
    }
}

/// An entry as stored, read in place: the header decoded, the attributes
/// walked on demand without copying a value. A bind reads three attributes of
/// twenty; decoding the whole record was most of its cost.
pub struct RecordView<'a> {
    pub parent: u64,
    pub dn: &'a str,
    pub ndn: &'a str,
    pub csn: Option<Csn>,
    attrs: &'a [u8],
    /// Where the DN starts: what follows the header (see [`Record::stamped`]).
    body_at: usize,
}

impl<'a> RecordView<'a> {
    pub fn parse(b: &'a [u8]) -> Result<RecordView<'a>> {
        let mut c = Cursor { b };
        let version = c.byte()?;
        let parent = c.varint()?;
        let csn = match version {
            RECORD_V1 => None,
            RECORD_V2 => {
                let (raw, rest) = c.b.split_at_checked(16).ok_or_else(|| Cursor::corrupt("truncated"))?;
                c.b = rest;
                let raw: [u8; 16] = raw.try_into().map_err(|_| Cursor::corrupt("truncated"))?;
                Some(Csn(u128::from_be_bytes(raw)))
            }
            v => return Err(StoreError::Corrupt(format!("unknown record version {v}"))),
        };
        let body_at = b.len() - c.b.len();
        let dn = c.str()?;
        let ndn = c.str()?;
        Ok(RecordView { parent, dn, ndn, csn, attrs: c.b, body_at })
    }

    /// Every attribute as stored: its name's bytes and its values. Names are
    /// compared by callers, not decoded: a bind skips over a dozen of them.
    pub fn for_each_attr(&self, mut f: impl FnMut(&'a [u8], &mut dyn Iterator<Item = Result<&'a [u8]>>)) -> Result<()> {
        let mut c = Cursor { b: self.attrs };
        let n = c.varint()?;
        for _ in 0..n {
            let name = c.bytes()?;
            let nv = c.varint()?;
            let mut left = nv;
            let mut values = std::iter::from_fn(|| {
                (left > 0).then(|| {
                    left -= 1;
                    c.bytes()
                })
            });
            f(name, &mut values);
            // Values the callback did not read are skipped.
            for v in values.by_ref() {
                v?;
            }
        }
        Ok(())
    }
}

impl ChangeRecord {
    pub fn encode(&self) -> Vec<u8> {
        let mut out = vec![CHANGE_V2];
        for s in [&self.time, &self.actor, &self.op, &self.dn] {
            put_bytes(&mut out, s.as_bytes());
        }
        put_varint(&mut out, self.attrs.len() as u64);
        for a in &self.attrs {
            put_bytes(&mut out, a.as_bytes());
        }
        for s in [&self.peer, &self.result, &self.org] {
            put_bytes(&mut out, s.as_bytes());
        }
        out
    }

    pub fn decode(b: &[u8]) -> Result<ChangeRecord> {
        let mut c = Cursor { b };
        let version = c.byte()?;
        if version != CHANGE_V1 && version != CHANGE_V2 {
            return Err(StoreError::Corrupt("unknown change record version".into()));
        }
        let time = c.string()?;
        let actor = c.string()?;
        let op = c.string()?;
        let dn = c.string()?;
        let n = c.varint()?;
        let mut attrs = Vec::new();
        for _ in 0..n {
            attrs.push(c.string()?);
        }
        // Version 1 (before the audit trail) had no peer, result or organisation.
        let (peer, result, org) = if version == CHANGE_V2 {
            (c.string()?, c.string()?, c.string()?)
        } else {
            (String::new(), "success".to_string(), String::new())
        };
        Ok(ChangeRecord { time, actor, op, dn, attrs, peer, result, org })
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn record_round_trips(parent in any::<u64>(), dn in ".{0,20}", attrs in proptest::collection::vec(
            ("[a-z]{1,8}", proptest::collection::vec(proptest::collection::vec(any::<u8>(), 0..40), 0..4)), 0..6)) {
            let r = Record { parent, ndn: dn.to_lowercase(), dn, attrs, csn: None };
            prop_assert_eq!(Record::decode(&r.encode()).unwrap(), r);
        }

        #[test]
        fn a_record_encoded_before_its_parent_is_known_is_the_same(parent in any::<u64>(), dn in ".{0,20}",
            attrs in proptest::collection::vec(("[a-z]{1,8}", proptest::collection::vec(proptest::collection::vec(any::<u8>(), 0..40), 0..4)), 0..6)) {
            let r = Record { parent, ndn: dn.to_lowercase(), dn, attrs, csn: None };
            let orphan = Record { parent: 0, ..r.clone() }.encode();
            prop_assert_eq!(Record::with_parent(&orphan, parent), r.encode());
        }

        #[test]
        fn record_view_reads_what_decode_reads(parent in any::<u64>(), dn in ".{0,20}", attrs in proptest::collection::vec(
            ("[a-z]{1,8}", proptest::collection::vec(proptest::collection::vec(any::<u8>(), 0..40), 0..4)), 0..6),
            read_first_only in any::<bool>()) {
            let r = Record { parent, ndn: dn.to_lowercase(), dn, attrs, csn: None };
            let bytes = r.encode();
            let v = RecordView::parse(&bytes).unwrap();
            prop_assert_eq!((v.parent, v.dn, v.ndn), (r.parent, r.dn.as_str(), r.ndn.as_str()));
            let mut seen = Vec::new();
            v.for_each_attr(|name, values| {
                // Values left unread are skipped without losing the next attribute.
                let got: Vec<Vec<u8>> = if read_first_only {
                    values.next().map(|x| x.unwrap().to_vec()).into_iter().collect()
                } else {
                    values.map(|x| x.unwrap().to_vec()).collect()
                };
                seen.push((String::from_utf8(name.to_vec()).unwrap(), got));
            }).unwrap();
            let want: Vec<(String, Vec<Vec<u8>>)> = r.attrs.iter().map(|(n, vs)| {
                (n.clone(), if read_first_only { vs.iter().take(1).cloned().collect() } else { vs.clone() })
            }).collect();
            prop_assert_eq!(seen, want);
        }

        #[test]
        fn a_stamped_record_reads_as_it_was_with_its_csn(parent in any::<u64>(), other in any::<u64>(), dn in ".{0,20}",
            attrs in proptest::collection::vec(("[a-z]{1,8}", proptest::collection::vec(proptest::collection::vec(any::<u8>(), 0..40), 0..4)), 0..6),
            csn in any::<u128>(), again in any::<u128>()) {
            let r = Record { parent, ndn: dn.to_lowercase(), dn, attrs, csn: None };
            let stamped = Record::stamped(&r.encode(), None, Csn(csn)).unwrap();
            prop_assert_eq!(Record::decode(&stamped).unwrap(), Record { csn: Some(Csn(csn)), ..r.clone() });
            let moved = Record::stamped(&stamped, Some(other), Csn(again)).unwrap();
            prop_assert_eq!(Record::decode(&moved).unwrap(), Record { parent: other, csn: Some(Csn(again)), ..r });
        }

        #[test]
        fn decoding_garbage_never_panics(b in proptest::collection::vec(any::<u8>(), 0..64)) {
            let _ = Record::decode(&b);
        }
    }
}
