//! Paged (RFC 2696) and sorted (RFC 2891) searches, served a page at a time
//! from a cursor of the connection: in the directory's order, each page read
//! where the last one ended; sorted (or size-limited), the matching DNs
//! gathered once.

use ldap3_proto::proto::{LdapResult, LdapResultCode};

use super::Session;
use super::search::SearchControls;
use crate::directory::{Directory, DirectoryError, Dn, Entry, Page, Scope, SearchRequest};
use crate::ldap::ber::{self, ResponseControl};
use crate::ldap::paging::{Cursor, Position};
use crate::ldap::result::{from_error, result, success};
use crate::ldap::{Conn, oids};

/// Paged and/or sorted search: one page read where the last one ended, or
/// (sorted, size-limited, or the changelog) the matching DNs gathered once
/// and served a page at a time.
pub(super) fn result_set_search(
    conn: &Conn,
    session: &Session,
    id: i32,
    mut sreq: SearchRequest,
    c: SearchControls,
) -> Vec<u8> {
    let dir = &conn.ctx.directory;
    // The kind of cursor follows from the sort and the size limit: both in it.
    let fingerprint = format!(
        "{}|{:?}|{}|{:?}|{}|{}",
        sreq.base,
        sreq.scope,
        sreq.filter,
        sreq.attrs,
        c.sort.is_some(),
        sreq.size_limit
    );
    let mut response_controls = Vec::new();
    let finish = |res: &LdapResult, ctrls: &[ResponseControl]| conn.result_pdu(id, ber::SEARCH_RESULT_DONE, res, ctrls);
    let (page_size, cookie) = c.paged.clone().unwrap_or((0, Vec::new()));
    let page_size = usize::try_from(page_size).unwrap_or(0);

    // A continuation: the cookie names a cursor of this connection.
    let cursor = if cookie.is_empty() {
        None
    } else {
        let taken = conn.cursors.lock().ok().and_then(|mut cs| cs.take(&cookie));
        match taken {
            Some(cur) if cur.fingerprint == fingerprint => Some(cur),
            _ => {
                return finish(
                    &result(LdapResultCode::UnwillingToPerform, "paged results cookie is invalid or expired"),
                    &[],
                );
            }
        }
    };
    // RFC 2696 §3: a page size of 0 with a cookie abandons the paged search.
    if cursor.is_some() && page_size == 0 {
        let paged = ResponseControl { oid: oids::PAGED_RESULTS, value: Some(ber::paged_value(0, b"")) };
        return finish(&success(), &[paged]);
    }
    // Unsorted and unlimited: one page read from where the last one ended.
    if c.sort.is_none() && sreq.size_limit == 0 && !dir.is_changelog(&sreq.base) {
        let after = match cursor.map(|c| c.position) {
            Some(Position::After(id)) => id,
            _ => 0,
        };
        let size = if page_size == 0 { usize::MAX } else { page_size };
        let mut out = Vec::new();
        let r = dir.search_page(&session.principal, &sreq, Page { after, size }, |e| {
            ber::search_entry(&mut out, id, &e);
            Ok(())
        });
        let end = match r {
            Ok(end) => end,
            Err(e) => {
                out.extend(finish(&from_error(&e), &[]));
                return out;
            }
        };
        let next_cookie = match end.next {
            Some(after) => {
                let cursor = Cursor { fingerprint, position: Position::After(after) };
                conn.cursors.lock().map(|mut cs| cs.insert(cursor)).unwrap_or_default()
            }
            None => Vec::new(),
        };
        // RFC 2696 §2: the size is an estimate, 0 when the server does not know it.
        let paged = ResponseControl { oid: oids::PAGED_RESULTS, value: Some(ber::paged_value(0, &next_cookie)) };
        out.extend(finish(&success(), &[paged]));
        return out;
    }
    let (dns, mut next) = match cursor.map(|c| c.position) {
        Some(Position::Listed { dns, next }) => (dns, next),
        _ => {
            // Gather the DNs (with the sort keys' values when sorting).
            let wanted_attrs = std::mem::take(&mut sreq.attrs);
            let mut gather = sreq.clone();
            gather.attrs = vec!["1.1".into()];
            if let Some(keys) = &c.sort {
                gather.attrs.extend(keys.iter().map(|k| k.attr.clone()));
            }
            sreq.attrs = wanted_attrs;
            let mut found: Vec<Entry> = Vec::new();
            let r = dir.search(&session.principal, &gather, |e| {
                found.push(e);
                Ok(())
            });
            let mut partial_error = None;
            match r {
                Ok(_) => {}
                Err(DirectoryError::SizeLimitExceeded) => partial_error = Some(DirectoryError::SizeLimitExceeded),
                Err(e) => return finish(&from_error(&e), &[]),
            }
            if let Some(keys) = &c.sort {
                let unknown = keys.iter().find(|k| dir.schema().attr_id(&k.attr).is_none());
                let code = match unknown {
                    // RFC 2891 §2.2: unsorted results with noSuchAttribute when the control is not critical.
                    Some(_) => 16,
                    None => {
                        crate::ldap::paging::sort(dir.schema(), &mut found, keys);
                        0
                    }
                };
                response_controls
                    .push(ResponseControl { oid: oids::SORT_RESPONSE, value: Some(ber::sort_value(code)) });
            }
            if let Some(e) = partial_error {
                // The size limit applies to the whole set: send what fits, then say so.
                let mut out = Vec::new();
                for e in found {
                    if let Some(entry) = reread(dir, session, &sreq, &e.dn) {
                        ber::search_entry(&mut out, id, &entry);
                    }
                }
                out.extend(finish(&from_error(&e), &response_controls));
                return out;
            }
            (found.into_iter().map(|e| e.dn).collect::<Vec<_>>(), 0)
        }
    };
    let end = if page_size == 0 { dns.len() } else { (next + page_size).min(dns.len()) };
    let mut out = Vec::new();
    for dn in &dns[next.min(end)..end] {
        if let Some(entry) = reread(dir, session, &sreq, dn) {
            ber::search_entry(&mut out, id, &entry);
        }
    }
    next = end;
    if c.paged.is_some() {
        let total = dns.len() as i64;
        let next_cookie = if next < dns.len() {
            let cursor = Cursor { fingerprint, position: Position::Listed { dns, next } };
            conn.cursors.lock().map(|mut cs| cs.insert(cursor)).unwrap_or_default()
        } else {
            Vec::new()
        };
        response_controls
            .push(ResponseControl { oid: oids::PAGED_RESULTS, value: Some(ber::paged_value(total, &next_cookie)) });
    }
    out.extend(finish(&success(), &response_controls));
    out
}

/// Read one entry of a result set again, as the original search would return it.
pub(super) fn reread(dir: &Directory, session: &Session, sreq: &SearchRequest, dn: &Dn) -> Option<Entry> {
    let mut one = SearchRequest::new(dn.clone(), Scope::Base, sreq.filter.clone());
    one.attrs = sreq.attrs.clone();
    one.types_only = sreq.types_only;
    let mut found = None;
    dir.search(&session.principal, &one, |e| {
        found = Some(e);
        Ok(())
    })
    .ok()?;
    found
}
