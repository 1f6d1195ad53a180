//! RFC 4533 on the wire: the cookie OpenLDAP's consumers send and parse,
//! and the Sync State control, the Sync Done control and the Sync Info
//! intermediate response, encoded as slapd's syncprov encodes them (a
//! BOOLEAN at its DEFAULT is left out; `newcookie` is a primitive [0]).

use super::ber::{self, ResponseControl, put_header, put_int, put_octets, tlv};
use super::oids;
use crate::directory::Entry;
use crate::store::Csn;

/// IntermediateResponse (RFC 4511 §4.13).
const INTERMEDIATE_RESPONSE: u8 = 0x79;
/// syncInfoValue choices (RFC 4533 §2.5).
const NEW_COOKIE: u8 = 0x80;
const REFRESH_DELETE: u8 = 0xa1;
const REFRESH_PRESENT: u8 = 0xa2;
const SYNC_ID_SET: u8 = 0xa3;

/// A cookie as slapd writes it: `rid=NNN,sid=SSS,csn=CSN[;CSN…]`. What
/// cannot be read is no cookie at all: the consumer gets a full refresh
/// rather than an error (RFC 4533 §3.2 leaves the cookie to the server).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Cookie {
    /// The consumer's replica id, echoed back.
    pub rid: Option<u16>,
    /// The latest CSN the consumer holds.
    pub csn: Option<Csn>,
}

impl Cookie {
    pub fn parse(raw: &[u8]) -> Cookie {
        let Ok(text) = std::str::from_utf8(raw) else { return Cookie::default() };
        let mut cookie = Cookie::default();
        for part in text.split(',') {
            let Some((key, value)) = part.split_once('=') else { continue };
            match key.trim() {
                "rid" => cookie.rid = value.trim().parse().ok().filter(|&r| r <= 999),
                // One CSN per provider's server id: the latest is where the
                // replica stands (this server keeps its providers' CSNs).
                "csn" => cookie.csn = value.split(';').filter_map(|c| Csn::parse(c.trim())).max(),
                _ => {}
            }
        }
        cookie
    }

    /// The cookie of a replica at `csn`, for this server's id.
    pub fn render(&self, sid: u16, csn: Option<Csn>) -> Vec<u8> {
        let mut s = String::new();
        if let Some(rid) = self.rid {
            s.push_str(&format!("rid={rid:03},"));
        }
        s.push_str(&format!("sid={sid:03x}"));
        if let Some(csn) = csn {
            s.push_str(&format!(",csn={csn}"));
        }
        s.into_bytes()
    }
}

/// syncStateValue's state (RFC 4533 §2.3).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum State {
    Present = 0,
    Add = 1,
    Modify = 2,
    Delete = 3,
}

/// The Sync State control's value (§2.3).
pub fn state_value(state: State, uuid: &[u8; 16], cookie: Option<&[u8]>) -> Vec<u8> {
    let body = tlv(1) + tlv(16) + cookie.map_or(0, |c| tlv(c.len()));
    let mut v = Vec::with_capacity(tlv(body));
    put_header(&mut v, 0x30, body);
    put_int(&mut v, 0x0a, state as i64);
    put_octets(&mut v, 0x04, uuid);
    if let Some(c) = cookie {
        put_octets(&mut v, 0x04, c);
    }
    v
}

fn state_control(state: State, uuid: &[u8; 16], cookie: Option<&[u8]>) -> ResponseControl {
    ResponseControl { oid: oids::SYNC_STATE, value: Some(state_value(state, uuid, cookie)) }
}

/// The Sync Done control's value (§2.4).
pub fn done_value(cookie: Option<&[u8]>, refresh_deletes: bool) -> Vec<u8> {
    let mut body = Vec::new();
    if let Some(c) = cookie {
        put_octets(&mut body, 0x04, c);
    }
    if refresh_deletes {
        put_octets(&mut body, 0x01, &[0xff]);
    }
    let mut v = Vec::with_capacity(tlv(body.len()));
    put_header(&mut v, 0x30, body.len());
    v.extend_from_slice(&body);
    v
}

/// The Sync Done control of a refreshOnly search's SearchResultDone (§2.4).
pub fn done_control(cookie: Option<&[u8]>, refresh_deletes: bool) -> ResponseControl {
    ResponseControl { oid: oids::SYNC_DONE, value: Some(done_value(cookie, refresh_deletes)) }
}

/// One LDAPMessage: `op` (a whole protocolOp TLV), then the controls.
fn message(out: &mut Vec<u8>, msgid: i32, op: &[u8], controls: &[ResponseControl]) {
    let items: Vec<usize> =
        controls.iter().map(|c| tlv(c.oid.len()) + c.value.as_ref().map_or(0, |v| tlv(v.len()))).collect();
    let ctrls_len: usize = items.iter().map(|&n| tlv(n)).sum();
    let mut len = tlv(ber::int_len(msgid.into())) + op.len();
    if !controls.is_empty() {
        len += tlv(ctrls_len);
    }
    put_header(out, 0x30, len);
    put_int(out, 0x02, msgid.into());
    out.extend_from_slice(op);
    ber::put_controls(out, controls, &items, ctrls_len);
}

/// A SearchResultEntry with its Sync State control (§3.4: cookie in persist).
pub fn entry(out: &mut Vec<u8>, msgid: i32, entry: &Entry, state: State, uuid: &[u8; 16], cookie: Option<&[u8]>) {
    let mut op = Vec::new();
    ber::put_entry_op(&mut op, &entry.dn.text(), entry);
    message(out, msgid, &op, &[state_control(state, uuid, cookie)]);
}

/// An entry gone from the content: its DN, no attributes, state delete (§3.4).
pub fn deleted(out: &mut Vec<u8>, msgid: i32, dn: &str, uuid: &[u8; 16], cookie: Option<&[u8]>) {
    let mut op = Vec::new();
    put_header(&mut op, ber::SEARCH_RESULT_ENTRY, tlv(dn.len()) + tlv(0));
    put_octets(&mut op, 0x04, dn.as_bytes());
    put_header(&mut op, 0x30, 0);
    message(out, msgid, &op, &[state_control(State::Delete, uuid, cookie)]);
}

fn info(out: &mut Vec<u8>, msgid: i32, value: &[u8]) {
    let body = tlv(oids::SYNC_INFO.len()) + tlv(value.len());
    let mut op = Vec::with_capacity(tlv(body));
    put_header(&mut op, INTERMEDIATE_RESPONSE, body);
    put_octets(&mut op, 0x80, oids::SYNC_INFO.as_bytes());
    put_octets(&mut op, 0x81, value);
    message(out, msgid, &op, &[]);
}

/// syncIdSet (§2.5): UUIDs present (`deletes` false) or deleted.
pub fn id_set(out: &mut Vec<u8>, msgid: i32, uuids: &[[u8; 16]], deletes: bool, cookie: Option<&[u8]>) {
    info(out, msgid, &id_set_value(uuids, deletes, cookie));
}

/// The Sync Info value of a syncIdSet.
pub fn id_set_value(uuids: &[[u8; 16]], deletes: bool, cookie: Option<&[u8]>) -> Vec<u8> {
    let mut body = Vec::new();
    if let Some(c) = cookie {
        put_octets(&mut body, 0x04, c);
    }
    if deletes {
        put_octets(&mut body, 0x01, &[0xff]);
    }
    put_header(&mut body, 0x31, uuids.len() * tlv(16));
    for u in uuids {
        put_octets(&mut body, 0x04, u);
    }
    let mut v = Vec::with_capacity(tlv(body.len()));
    put_header(&mut v, SYNC_ID_SET, body.len());
    v.extend_from_slice(&body);
    v
}

/// The end of a refreshAndPersist search's refresh stage (§3.4):
/// refreshDelete or refreshPresent with the cookie, refreshDone TRUE.
pub fn refresh_done(out: &mut Vec<u8>, msgid: i32, deletes: bool, cookie: Option<&[u8]>) {
    info(out, msgid, &refresh_done_value(deletes, cookie));
}

/// The Sync Info value of a refreshDelete / refreshPresent with refreshDone TRUE.
pub fn refresh_done_value(deletes: bool, cookie: Option<&[u8]>) -> Vec<u8> {
    let mut body = Vec::new();
    if let Some(c) = cookie {
        put_octets(&mut body, 0x04, c);
    }
    let mut v = Vec::new();
    put_header(&mut v, if deletes { REFRESH_DELETE } else { REFRESH_PRESENT }, body.len());
    v.extend_from_slice(&body);
    v
}

/// newcookie (§2.5): where the replica stands, with nothing else to send.
pub fn new_cookie(out: &mut Vec<u8>, msgid: i32, cookie: &[u8]) {
    let mut v = Vec::new();
    put_octets(&mut v, NEW_COOKIE, cookie);
    info(out, msgid, &v);
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::indexing_slicing)]
mod tests {
    use super::*;

    #[test]
    fn a_cookie_from_slapd_is_read_and_a_foreign_one_is_none() {
        let c = Cookie::parse(b"rid=001,sid=002,csn=20261207221500.123456Z#000000#002#000000");
        assert_eq!(c.rid, Some(1));
        assert_eq!(c.csn.map(|c| c.to_string()).as_deref(), Some("20261207221500.123456Z#000000#002#000000"));
        let several = Cookie::parse(
            b"rid=7,csn=20261207221500.000000Z#000000#001#000000;20261207221501.000000Z#000000#002#000000",
        );
        assert_eq!(several.csn.unwrap().sid(), 2);
        assert_eq!(Cookie::parse(b"\xff\xfe garbage"), Cookie::default());
        assert_eq!(Cookie::parse(b"rid=001,csn=yesterday").csn, None);
        assert_eq!(c.render(0, c.csn), b"rid=001,sid=000,csn=20261207221500.123456Z#000000#002#000000".to_vec());
    }

    #[test]
    fn a_new_cookie_is_a_primitive_context_tag_as_slapd_expects() {
        let mut out = Vec::new();
        new_cookie(&mut out, 3, b"rid=001,sid=000");
        // …[1] value: 80 0f "rid=001,sid=000"
        let value_at = out.windows(2).position(|w| w == [0x80, 0x0f]).unwrap();
        assert_eq!(&out[value_at + 2..], b"rid=001,sid=000");
        assert_eq!(out[out.len() - 17 - 2], 0x81);
    }
}
