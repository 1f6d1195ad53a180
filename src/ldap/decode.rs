//! Direct BER decoding of the requests every login sends: a SearchRequest
//! (RFC 4511 §4.5.1) or a simple BindRequest (§4.2), without controls, read
//! straight from the frame into ldap3_proto's types. ldap3_proto first builds
//! a tree of every element, each with its own allocation, then converts the
//! tree: a fifth of an indexed search's work.
//!
//! Everything else — other operations, controls, SASL, extensible filters,
//! unusual encodings, anything malformed or incomplete — is left to
//! ldap3_proto's codec, so what is accepted, refused or awaited stays exactly
//! what it decides. The fast path takes only frames it understands whole and
//! decodes them as ldap3_proto would; a property test holds it to that on
//! generated and corrupted messages.

use std::io;

use bytes::{Buf, BytesMut};
use ldap3_proto::LdapCodec;
use ldap3_proto::proto::{
    LdapBindCred, LdapBindRequest, LdapDerefAliases, LdapFilter, LdapMsg, LdapOp, LdapSearchRequest, LdapSearchScope,
    LdapSubstringFilter,
};
use tokio_util::codec::Decoder;

use super::ber::{BIND_REQUEST, SEARCH_REQUEST};

/// Filters nested deeper than this go to ldap3_proto (whose own limit, 127,
/// then applies): no login sends one, and the recursion here stays shallow.
const MAX_FILTER_DEPTH: usize = 32;

/// The largest PDU limit honoured: ldap3_proto doubles the limit without
/// checking for overflow, and no LDAP message comes near a gibibyte.
const PDU_CEILING: usize = 1 << 30;

/// The LDAP request decoder of a connection.
pub struct RequestCodec {
    general: LdapCodec,
    max_pdu: usize,
}

impl RequestCodec {
    pub fn new(max_pdu: usize) -> RequestCodec {
        let max_pdu = max_pdu.min(PDU_CEILING);
        RequestCodec { general: LdapCodec::new(Some(max_pdu), None), max_pdu }
    }
}

impl Decoder for RequestCodec {
    type Item = LdapMsg;
    type Error = io::Error;

    fn decode(&mut self, buf: &mut BytesMut) -> io::Result<Option<LdapMsg>> {
        // ldap3_proto refuses a buffer over twice the PDU limit before it
        // parses anything, and a PDU over the limit: both left to it.
        if buf.len() <= self.max_pdu.saturating_mul(2)
            && let Some((msg, used)) = hot_request(buf)
            && used <= self.max_pdu
        {
            buf.advance(used);
            return Ok(Some(msg));
        }
        self.general.decode(buf)
    }
}

/// The message at the start of `buf` and its length in bytes, when it is a
/// search or a simple bind without controls, whole and well formed.
pub fn hot_request(buf: &[u8]) -> Option<(LdapMsg, usize)> {
    let mut stream = Elements(buf);
    let message = stream.expect(0x30)?;
    let used = buf.len() - stream.0.len();
    let mut m = Elements(message);
    // ldap3_proto truncates the message ID to 32 bits; the session refuses
    // IDs out of range (RFC 4511 §4.1.1.1).
    let msgid = integer(m.expect(0x02)?)? as i32;
    let (tag, op) = m.next()?;
    if !m.is_empty() {
        return None; // controls
    }
    let op = match tag {
        SEARCH_REQUEST => LdapOp::SearchRequest(search(op)?),
        BIND_REQUEST => LdapOp::BindRequest(bind(op)?),
        _ => return None,
    };
    Some((LdapMsg { msgid, op, ctrl: Vec::new() }, used))
}

/// Consecutive BER elements (X.690 §8.1): single-byte tags, definite lengths
/// of at most four bytes.
struct Elements<'a>(&'a [u8]);

impl<'a> Elements<'a> {
    /// The next element's tag byte and content; `None` when no whole element follows.
    fn next(&mut self) -> Option<(u8, &'a [u8])> {
        let (&tag, rest) = self.0.split_first()?;
        if tag & 0x1f == 0x1f {
            return None;
        }
        let (&first, mut rest) = rest.split_first()?;
        let len = if first < 0x80 {
            usize::from(first)
        } else {
            let n = usize::from(first & 0x7f);
            if n == 0 || n > 4 || rest.len() < n {
                return None;
            }
            let (bytes, tail) = rest.split_at(n);
            rest = tail;
            bytes.iter().fold(0usize, |len, &b| (len << 8) | usize::from(b))
        };
        if rest.len() < len {
            return None;
        }
        let (content, tail) = rest.split_at(len);
        self.0 = tail;
        Some((tag, content))
    }

    fn expect(&mut self, tag: u8) -> Option<&'a [u8]> {
        let (t, content) = self.next()?;
        (t == tag).then_some(content)
    }

    fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

/// An INTEGER or ENUMERATED as ldap3_proto reads it: up to eight bytes,
/// big-endian, zero-filled on the left.
fn integer(b: &[u8]) -> Option<i64> {
    if b.len() > 8 {
        return None;
    }
    let mut raw = [0u8; 8];
    raw[8 - b.len()..].copy_from_slice(b);
    Some(i64::from_be_bytes(raw))
}

fn text(b: &[u8]) -> Option<String> {
    std::str::from_utf8(b).ok().map(str::to_owned)
}

fn search(content: &[u8]) -> Option<LdapSearchRequest> {
    let mut r = Elements(content);
    let base = text(r.expect(0x04)?)?;
    let scope = LdapSearchScope::try_from(integer(r.expect(0x0a)?)?).ok()?;
    let aliases = LdapDerefAliases::try_from(integer(r.expect(0x0a)?)?).ok()?;
    let sizelimit = integer(r.expect(0x02)?)? as i32;
    let timelimit = integer(r.expect(0x02)?)? as i32;
    let typesonly = *r.expect(0x01)?.first()? != 0;
    let (tag, f) = r.next()?;
    let filter = filter(tag, f, MAX_FILTER_DEPTH)?;
    let mut list = Elements(r.expect(0x30)?);
    let mut attrs = Vec::new();
    while !list.is_empty() {
        attrs.push(text(list.expect(0x04)?)?);
    }
    if !r.is_empty() {
        return None;
    }
    Some(LdapSearchRequest { base, scope, aliases, sizelimit, timelimit, typesonly, filter, attrs })
}

fn bind(content: &[u8]) -> Option<LdapBindRequest> {
    let mut r = Elements(content);
    let version = integer(r.expect(0x02)?)?;
    let dn = text(r.expect(0x04)?)?;
    let password = text(r.expect(0x80)?)?;
    if !r.is_empty() {
        return None;
    }
    Some(LdapBindRequest { version, dn, cred: LdapBindCred::Simple(password) })
}

/// RFC 4511 §4.5.1.7. The extensible match ([9]) is left to ldap3_proto.
fn filter(tag: u8, content: &[u8], depth: usize) -> Option<LdapFilter> {
    let depth = depth.checked_sub(1)?;
    let mut r = Elements(content);
    let f = match tag {
        0xa0 | 0xa1 => {
            let mut set = Vec::new();
            while !r.is_empty() {
                let (t, c) = r.next()?;
                set.push(filter(t, c, depth)?);
            }
            return Some(if tag == 0xa0 { LdapFilter::And(set) } else { LdapFilter::Or(set) });
        }
        0xa2 => {
            let (t, c) = r.next()?;
            LdapFilter::Not(Box::new(filter(t, c, depth)?))
        }
        0xa3 | 0xa5 | 0xa6 | 0xa8 => {
            let attr = text(r.expect(0x04)?)?;
            let value = text(r.expect(0x04)?)?;
            match tag {
                0xa3 => LdapFilter::Equality(attr, value),
                0xa5 => LdapFilter::GreaterOrEqual(attr, value),
                0xa6 => LdapFilter::LessOrEqual(attr, value),
                _ => LdapFilter::Approx(attr, value),
            }
        }
        0xa4 => {
            let attr = text(r.expect(0x04)?)?;
            let mut parts = Elements(r.expect(0x30)?);
            let mut sub = LdapSubstringFilter::default();
            let mut first = true;
            while let Some((t, c)) = parts.next() {
                // `initial` only first, `final` only last (§4.5.1.7.2).
                match t {
                    0x80 if first => sub.initial = Some(text(c)?),
                    0x81 => sub.any.push(text(c)?),
                    0x82 if parts.is_empty() => sub.final_ = Some(text(c)?),
                    _ => return None,
                }
                first = false;
            }
            if !parts.is_empty() {
                return None;
            }
            LdapFilter::Substring(attr, sub)
        }
        0x87 => return Some(LdapFilter::Present(text(content)?)),
        _ => return None,
    };
    r.is_empty().then_some(f)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use ldap3_proto::control::LdapControl;
    use ldap3_proto::proto::SaslCredentials;
    use proptest::prelude::*;
    use tokio_util::codec::Encoder;

    fn wire(msg: LdapMsg) -> BytesMut {
        let mut out = BytesMut::new();
        LdapCodec::default().encode(msg, &mut out).unwrap();
        out
    }

    /// What ldap3_proto makes of `bytes`: the message and the bytes it took,
    /// `None` when it waits for more, `Err` when it refuses them.
    fn general(bytes: &[u8]) -> Result<Option<(LdapMsg, usize)>, ()> {
        let mut buf = BytesMut::from(bytes);
        match LdapCodec::new(Some(1 << 20), None).decode(&mut buf) {
            Ok(Some(m)) => Ok(Some((m, bytes.len() - buf.len()))),
            Ok(None) => Ok(None),
            Err(_) => Err(()),
        }
    }

    /// Whenever the fast path decodes, ldap3_proto decodes the same message
    /// from the same bytes.
    fn agrees(bytes: &[u8]) -> Result<(), TestCaseError> {
        if let Some(fast) = hot_request(bytes) {
            prop_assert_eq!(general(bytes), Ok(Some(fast)), "bytes {:02x?}", bytes);
        }
        Ok(())
    }

    fn text() -> impl Strategy<Value = String> {
        prop_oneof![Just(String::new()), "[a-zA-Z0-9=,é*() ]{1,12}", "x{130}"]
    }

    fn filter() -> impl Strategy<Value = LdapFilter> {
        let leaf = prop_oneof![
            (text(), text()).prop_map(|(a, v)| LdapFilter::Equality(a, v)),
            (text(), text()).prop_map(|(a, v)| LdapFilter::GreaterOrEqual(a, v)),
            (text(), text()).prop_map(|(a, v)| LdapFilter::LessOrEqual(a, v)),
            (text(), text()).prop_map(|(a, v)| LdapFilter::Approx(a, v)),
            text().prop_map(LdapFilter::Present),
            (
                text(),
                proptest::option::of(text()),
                proptest::collection::vec(text(), 0..3),
                proptest::option::of(text())
            )
                .prop_map(|(a, initial, any, final_)| LdapFilter::Substring(
                    a,
                    LdapSubstringFilter { initial, any, final_ }
                )),
        ];
        leaf.prop_recursive(4, 24, 4, |inner| {
            prop_oneof![
                proptest::collection::vec(inner.clone(), 0..4).prop_map(LdapFilter::And),
                proptest::collection::vec(inner.clone(), 0..4).prop_map(LdapFilter::Or),
                inner.prop_map(|f| LdapFilter::Not(Box::new(f))),
            ]
        })
    }

    fn request() -> impl Strategy<Value = LdapMsg> {
        let scope = prop_oneof![
            Just(LdapSearchScope::Base),
            Just(LdapSearchScope::OneLevel),
            Just(LdapSearchScope::Subtree),
            Just(LdapSearchScope::Children)
        ];
        let aliases = prop_oneof![
            Just(LdapDerefAliases::Never),
            Just(LdapDerefAliases::InSearching),
            Just(LdapDerefAliases::FindingBaseObj),
            Just(LdapDerefAliases::Always)
        ];
        // RFC 4511 limits are INTEGER (0 .. maxInt); ldap3_proto reads a negative
        // one as its unsigned bytes (the corrupted-message test covers that).
        let search = (text(), scope, aliases, 0..=i32::MAX, 0..=i32::MAX, any::<bool>(), filter())
            .prop_flat_map(|s| (Just(s), proptest::collection::vec(text(), 0..4)))
            .prop_map(|((base, scope, aliases, sizelimit, timelimit, typesonly, filter), attrs)| {
                LdapOp::SearchRequest(LdapSearchRequest {
                    base,
                    scope,
                    aliases,
                    sizelimit,
                    timelimit,
                    typesonly,
                    filter,
                    attrs,
                })
            });
        let cred = prop_oneof![
            text().prop_map(LdapBindCred::Simple),
            text().prop_map(|m| LdapBindCred::SASL(SaslCredentials { mechanism: m, credentials: Vec::new() })),
        ];
        let bind = (0..=i64::MAX, text(), cred)
            .prop_map(|(version, dn, cred)| LdapOp::BindRequest(LdapBindRequest { version, dn, cred }));
        let ctrl = proptest::collection::vec(Just(LdapControl::ManageDsaIT { criticality: false }), 0..2);
        (1..i32::MAX, prop_oneof![search, bind], ctrl).prop_map(|(msgid, op, ctrl)| LdapMsg { msgid, op, ctrl })
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(2000))]

        #[test]
        fn requests_decode_as_ldap3_proto_decodes_them(msg in request()) {
            let bytes = wire(msg.clone());
            if let Some((fast, used)) = hot_request(&bytes) {
                prop_assert_eq!(used, bytes.len());
                prop_assert_eq!(&fast, &msg);
            } else {
                // Only what the fast path leaves to ldap3_proto.
                let sasl = matches!(msg.op, LdapOp::BindRequest(LdapBindRequest { cred: LdapBindCred::SASL(_), .. }));
                prop_assert!(!msg.ctrl.is_empty() || sasl);
            }
            agrees(&bytes)?;
        }

        #[test]
        fn corrupted_requests_are_decoded_as_ldap3_proto_decodes_them(
            msg in request(),
            edits in proptest::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..4),
            cut in any::<prop::sample::Index>(),
        ) {
            let mut bytes = wire(msg).to_vec();
            for (at, b) in edits {
                let i = at.index(bytes.len());
                bytes[i] = b;
            }
            agrees(&bytes)?;
            // Truncated, and followed by another message.
            let end = cut.index(bytes.len());
            agrees(&bytes[..end])?;
            let mut two = bytes.clone();
            two.extend_from_slice(&bytes);
            agrees(&two)?;
        }
    }

    fn tlv(tag: u8, parts: &[&[u8]]) -> Vec<u8> {
        let content = parts.concat();
        let mut out = vec![tag];
        if content.len() < 0x80 {
            out.push(content.len() as u8);
        } else {
            out.extend_from_slice(&[0x82, (content.len() >> 8) as u8, content.len() as u8]);
        }
        out.extend_from_slice(&content);
        out
    }

    /// A search for `filter` (already encoded) as message 5.
    fn search_for(filter: &[u8]) -> Vec<u8> {
        let op = tlv(
            0x63,
            &[
                &tlv(0x04, &[b"dc=cig"]),
                &[0x0a, 1, 2],
                &[0x0a, 1, 0],
                &[0x02, 1, 0],
                &[0x02, 1, 0],
                &[0x01, 1, 0],
                filter,
                &tlv(0x30, &[]),
            ],
        );
        tlv(0x30, &[&[0x02, 1, 5], &op])
    }

    #[test]
    fn odd_shapes_are_left_to_ldap3_proto() {
        let s = |t: &[u8]| tlv(0x04, &[t]);
        let sub = |parts: &[&[u8]]| tlv(0xa4, &[&s(b"sn"), &tlv(0x30, parts)]);
        let refused_or_odd: Vec<Vec<u8>> = vec![
            // `final` before an `any`, `initial` after one, an unknown part.
            sub(&[&tlv(0x82, &[b"a"]), &tlv(0x81, &[b"b"])]),
            sub(&[&tlv(0x81, &[b"a"]), &tlv(0x80, &[b"b"])]),
            sub(&[&tlv(0x83, &[b"a"])]),
            // An assertion with three parts, a NOT of two filters, an empty NOT.
            tlv(0xa3, &[&s(b"uid"), &s(b"x"), &s(b"y")]),
            tlv(0xa2, &[&tlv(0x87, &[b"cn"]), &tlv(0x87, &[b"sn"])]),
            tlv(0xa2, &[]),
            // An extensible match, a value that is not an OCTET STRING, bytes that are not UTF-8.
            tlv(0xa9, &[&tlv(0x82, &[b"cn"]), &tlv(0x83, &[b"x"])]),
            tlv(0xa3, &[&s(b"uid"), &tlv(0x02, &[b"x"])]),
            tlv(0xa3, &[&s(b"uid"), &s(&[0xff, 0xfe])]),
            // A filter tag of the universal class.
            tlv(0x30, &[&s(b"uid"), &s(b"x")]),
        ];
        for f in &refused_or_odd {
            let bytes = search_for(f);
            assert!(hot_request(&bytes).is_none(), "{f:02x?}");
            agrees(&bytes).unwrap();
        }
        // The shapes it takes, as ldap3_proto reads them.
        let taken: Vec<Vec<u8>> = vec![
            sub(&[]),
            sub(&[&tlv(0x80, &[b"a"]), &tlv(0x81, &[b"b"]), &tlv(0x81, &[b"c"]), &tlv(0x82, &[b"d"])]),
            tlv(0xa0, &[]),
            tlv(0xa1, &[&tlv(0xa2, &[&tlv(0x87, &[b"cn"])]), &tlv(0xa8, &[&s(b"cn"), &s(b"x")])]),
        ];
        for f in &taken {
            let bytes = search_for(f);
            assert!(hot_request(&bytes).is_some(), "{f:02x?}");
            agrees(&bytes).unwrap();
        }
        // typesOnly with no content, a bind with SASL or with a control, an unbind.
        let mut no_bool = search_for(&tlv(0x87, &[b"cn"]));
        let at = no_bool.windows(3).position(|w| w == [0x01, 1, 0]).unwrap();
        no_bool.splice(at..at + 3, [0x01, 0]);
        no_bool[1] -= 1; // the message's length, then the search's
        no_bool[6] -= 1;
        let bind = |cred: &[u8], ctrl: &[u8]| {
            tlv(0x30, &[&[0x02, 1, 1], &tlv(0x60, &[&[0x02, 1, 3], &s(b"cn=x"), cred]), ctrl])
        };
        let others = [
            no_bool,
            bind(&tlv(0xa3, &[&s(b"EXTERNAL")]), &[]),
            bind(&tlv(0x80, &[b"secret"]), &tlv(0xa0, &[&tlv(0x30, &[&s(b"2.16.840.1.113730.3.4.2")])])),
            tlv(0x30, &[&[0x02, 1, 9], &[0x42, 0]]),
        ];
        for bytes in &others {
            assert!(hot_request(bytes).is_none(), "{bytes:02x?}");
            agrees(bytes).unwrap();
        }
        let simple = bind(&tlv(0x80, &[b"secret"]), &[]);
        assert!(hot_request(&simple).is_some());
        agrees(&simple).unwrap();
    }

    #[test]
    fn filters_nested_past_the_limit_are_left_to_ldap3_proto() {
        let nested = |depth: usize| {
            let mut f = tlv(0x87, &[b"cn"]);
            for _ in 1..depth {
                f = tlv(0xa2, &[&f]);
            }
            search_for(&f)
        };
        for depth in [MAX_FILTER_DEPTH, MAX_FILTER_DEPTH + 1, 120, 130] {
            let bytes = nested(depth);
            assert_eq!(hot_request(&bytes).is_some(), depth <= MAX_FILTER_DEPTH, "depth {depth}");
            agrees(&bytes).unwrap();
        }
    }

    #[test]
    fn the_size_limits_are_ldap3_proto_s() {
        let one = search_for(&tlv(0x87, &[b"cn"]));
        // Exactly at the limit: taken.
        let mut at = RequestCodec::new(one.len());
        assert!(at.decode(&mut BytesMut::from(&one[..])).unwrap().is_some());
        // A small whole message at the front of a buffer over twice the
        // limit: the buffer is refused, as ldap3_proto refuses it.
        let mut flood = BytesMut::from(&one[..]);
        flood.extend_from_slice(&vec![0x30; 2 * one.len()]);
        let mut codec = RequestCodec::new(one.len());
        assert!(codec.decode(&mut flood).is_err());
        assert!(LdapCodec::new(Some(one.len()), None).decode(&mut BytesMut::from(&flood[..])).is_err());
        // A limit too large to double is brought down, not overflowed.
        let mut huge = RequestCodec::new(usize::MAX);
        assert!(huge.decode(&mut BytesMut::from(&one[..])).unwrap().is_some());
    }

    #[test]
    fn the_codec_takes_one_message_at_a_time_and_refuses_what_is_too_large() {
        let search = LdapMsg::new(
            7,
            LdapOp::SearchRequest(LdapSearchRequest {
                base: "dc=cig,dc=fr".into(),
                scope: LdapSearchScope::Subtree,
                aliases: LdapDerefAliases::Never,
                sizelimit: 0,
                timelimit: 0,
                typesonly: false,
                filter: LdapFilter::Equality("uid".into(), "agent00042".into()),
                attrs: vec!["cn".into()],
            }),
        );
        let one = wire(search.clone());
        let mut buf = one.clone();
        buf.extend_from_slice(&one[..5]);
        let mut codec = RequestCodec::new(1024);
        assert_eq!(codec.decode(&mut buf).unwrap(), Some(search.clone()));
        assert_eq!(codec.decode(&mut buf).unwrap(), None, "half a message waits for the rest");
        assert_eq!(buf.len(), 5);
        // Over the PDU limit: refused, as ldap3_proto refuses it.
        let mut small = RequestCodec::new(one.len() - 1);
        assert!(small.decode(&mut one.clone()).is_err());
        // OpenLDAP's liblber writes four-byte lengths.
        let mut long = vec![0x30, 0x84, 0, 0, 0, (one.len() - 2) as u8];
        long.extend_from_slice(&one[2..]);
        assert_eq!(hot_request(&long).map(|(m, n)| (m, n == long.len())), Some((search, true)));
    }
}
