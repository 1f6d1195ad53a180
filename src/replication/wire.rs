//! The consumer's side of the wire: its requests are encoded by
//! ldap3_proto; the provider's responses are read here, because
//! ldap3_proto 0.9 rejects the Sync Info `newcookie` slapd sends (a
//! primitive [0], which it expects constructed) and drops the cookie of a
//! `refreshPresent` without `refreshDone`.

use ldap3_lber::common::TagClass;
use ldap3_lber::structure::{PL, StructureTag};
use tokio::io::{AsyncRead, AsyncReadExt};

use crate::directory::{Attribute, Dn, Entry};

/// Deepest BER nesting read in a response.
const MAX_DEPTH: usize = 64;
const SYNC_STATE: &str = "1.3.6.1.4.1.4203.1.9.1.2";
const SYNC_DONE: &str = "1.3.6.1.4.1.4203.1.9.1.3";
const SYNC_INFO: &str = "1.3.6.1.4.1.4203.1.9.1.4";

/// A response, as the consumer acts on it.
#[derive(Debug)]
pub enum Response {
    Bind {
        code: u32,
        message: String,
    },
    /// A SearchResultEntry with its Sync State control, if any:
    /// (state, entryUUID, cookie).
    Entry {
        entry: Entry,
        state: Option<(u8, [u8; 16], Option<Vec<u8>>)>,
    },
    /// A Sync Info message (RFC 4533 §2.5).
    Info(Info),
    /// SearchResultDone, with its Sync Done control's cookie and refreshDeletes.
    Done {
        code: u32,
        message: String,
        cookie: Option<Vec<u8>>,
        refresh_deletes: bool,
    },
    /// Anything else (a referral, a notice of disconnection): ignored.
    Other {
        code: Option<u32>,
        message: String,
    },
}

#[derive(Debug)]
pub enum Info {
    NewCookie(Vec<u8>),
    /// The end of the refresh stage (refreshDelete when `deletes`).
    RefreshDone {
        deletes: bool,
        cookie: Option<Vec<u8>>,
        done: bool,
    },
    IdSet {
        cookie: Option<Vec<u8>>,
        deletes: bool,
        uuids: Vec<[u8; 16]>,
    },
}

/// Read one LDAPMessage of at most `max` bytes.
pub async fn read_message(r: &mut (impl AsyncRead + Unpin), max: usize) -> std::io::Result<Vec<u8>> {
    let bad = |why: &str| std::io::Error::new(std::io::ErrorKind::InvalidData, why.to_string());
    let mut head = [0u8; 2];
    r.read_exact(&mut head).await?;
    if head[0] != 0x30 {
        return Err(bad("the provider sent something that is not an LDAP message"));
    }
    let mut msg = head.to_vec();
    let len = if head[1] & 0x80 == 0 {
        usize::from(head[1])
    } else {
        let n = usize::from(head[1] & 0x7f);
        if n == 0 || n > 4 {
            return Err(bad("an LDAP message length the consumer does not read"));
        }
        let mut b = vec![0u8; n];
        r.read_exact(&mut b).await?;
        msg.extend_from_slice(&b);
        b.iter().fold(0usize, |acc, &x| (acc << 8) | usize::from(x))
    };
    if len > max {
        return Err(bad("a message from the provider is over the PDU size limit"));
    }
    let start = msg.len();
    msg.resize(start + len, 0);
    r.read_exact(&mut msg[start..]).await?;
    Ok(msg)
}

fn prim(t: StructureTag) -> Option<Vec<u8>> {
    t.expect_primitive()
}

fn text(t: StructureTag) -> String {
    prim(t).map(|b| String::from_utf8_lossy(&b).into_owned()).unwrap_or_default()
}

fn uint(t: StructureTag) -> Option<u32> {
    let b = prim(t)?;
    Some(b.iter().fold(0u32, |acc, &x| (acc << 8) | u32::from(x)))
}

fn boolean(t: StructureTag) -> bool {
    prim(t).is_some_and(|b| b.first().is_some_and(|&x| x != 0))
}

fn uuid16(b: &[u8]) -> Option<[u8; 16]> {
    b.try_into().ok()
}

/// Decode one message read by [`read_message`]: its id and what it says.
pub fn decode(msg: &[u8]) -> Option<(i32, Response)> {
    let (_, tag) = ldap3_lber::parse::parse_tag(msg, MAX_DEPTH).ok()?;
    let mut items = tag.expect_constructed()?.into_iter();
    let id = uint(items.next()?)? as i32;
    let op = items.next()?;
    let controls: Vec<(String, Option<Vec<u8>>)> = items
        .next()
        .filter(|t| t.class == TagClass::Context && t.id == 0)
        .and_then(|t| t.expect_constructed())
        .unwrap_or_default()
        .into_iter()
        .filter_map(|c| {
            let mut parts = c.expect_constructed()?.into_iter();
            let oid = text(parts.next()?);
            let value = parts.filter(|p| p.id == 4).find_map(prim);
            Some((oid, value))
        })
        .collect();
    let control = |oid: &str| controls.iter().find(|(o, _)| o == oid).and_then(|(_, v)| v.clone());
    if op.class != TagClass::Application {
        return Some((id, Response::Other { code: None, message: String::new() }));
    }
    let app = op.id;
    let PL::C(parts) = op.payload else { return Some((id, Response::Other { code: None, message: String::new() })) };
    let mut parts = parts.into_iter();
    let response = match app {
        1 | 5 => {
            let code = parts.next().and_then(uint).unwrap_or(80);
            let _matched = parts.next();
            let message = parts.next().map(text).unwrap_or_default();
            if app == 1 {
                Response::Bind { code, message }
            } else {
                let (cookie, refresh_deletes) = control(SYNC_DONE).map(|v| sync_done(&v)).unwrap_or((None, false));
                Response::Done { code, message, cookie, refresh_deletes }
            }
        }
        4 => {
            let dn = text(parts.next()?);
            let mut entry = Entry::new(Dn::parse(&dn).ok()?);
            for a in parts.next()?.expect_constructed()? {
                let mut av = a.expect_constructed()?.into_iter();
                let name = text(av.next()?);
                let values = av.next()?.expect_constructed()?.into_iter().filter_map(prim).collect();
                entry.attrs.push(Attribute { name, values });
            }
            let state = control(SYNC_STATE).and_then(|v| sync_state(&v));
            Response::Entry { entry, state }
        }
        25 => {
            let mut name = None;
            let mut value = None;
            for p in parts {
                match p.id {
                    0 => name = Some(text(p)),
                    1 => value = prim(p),
                    _ => {}
                }
            }
            match (name.as_deref(), value) {
                (Some(SYNC_INFO), Some(v)) => Response::Info(sync_info(&v)?),
                _ => Response::Other { code: None, message: String::new() },
            }
        }
        _ => Response::Other { code: None, message: String::new() },
    };
    Some((id, response))
}

fn sync_state(v: &[u8]) -> Option<(u8, [u8; 16], Option<Vec<u8>>)> {
    let (_, tag) = ldap3_lber::parse::parse_tag(v, MAX_DEPTH).ok()?;
    let mut parts = tag.expect_constructed()?.into_iter();
    let state = uint(parts.next()?)? as u8;
    let uuid = uuid16(&prim(parts.next()?)?)?;
    let cookie = parts.next().and_then(prim);
    Some((state, uuid, cookie))
}

fn sync_done(v: &[u8]) -> (Option<Vec<u8>>, bool) {
    let Some(parts) = ldap3_lber::parse::parse_tag(v, MAX_DEPTH).ok().and_then(|(_, t)| t.expect_constructed()) else {
        return (None, false);
    };
    let (mut cookie, mut deletes) = (None, false);
    for p in parts {
        match p.id {
            4 => cookie = prim(p),
            1 => deletes = boolean(p),
            _ => {}
        }
    }
    (cookie, deletes)
}

fn sync_info(v: &[u8]) -> Option<Info> {
    let (_, tag) = ldap3_lber::parse::parse_tag(v, MAX_DEPTH).ok()?;
    if tag.class != TagClass::Context {
        return None;
    }
    let choice = tag.id;
    let inner = match tag.payload {
        // newcookie [0] is primitive: the cookie itself.
        PL::P(cookie) => return (choice == 0).then_some(Info::NewCookie(cookie)),
        PL::C(inner) => inner,
    };
    let (mut cookie, mut flag, mut uuids) = (None, None, Vec::new());
    for p in inner {
        match (p.class, p.id) {
            (TagClass::Universal, 4) => cookie = prim(p),
            (TagClass::Universal, 1) => flag = Some(boolean(p)),
            (TagClass::Universal, 17) => {
                uuids = p.expect_constructed()?.into_iter().filter_map(|u| uuid16(&prim(u)?)).collect();
            }
            _ => {}
        }
    }
    Some(match choice {
        0 => Info::NewCookie(cookie?),
        // refreshDone DEFAULT TRUE; refreshDeletes DEFAULT FALSE.
        1 => Info::RefreshDone { deletes: true, cookie, done: flag.unwrap_or(true) },
        2 => Info::RefreshDone { deletes: false, cookie, done: flag.unwrap_or(true) },
        3 => Info::IdSet { cookie, deletes: flag.unwrap_or(false), uuids },
        _ => return None,
    })
}
