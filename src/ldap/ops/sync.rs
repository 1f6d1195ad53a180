//! A search with the Sync Request control (RFC 4533): the refresh stage on
//! the blocking pool, then for refreshAndPersist the persist stage, which
//! sends each change as it commits, in commit order, until the search is
//! abandoned or the connection ends.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use ldap3_proto::proto::SyncRequestMode;

use super::search::FLUSH_BYTES;
use super::{InFlight, Reply, Session, Shape};
use crate::directory::sync::{Refresh, SyncItem};
use crate::directory::{DirectoryError, SearchRequest};
use crate::ldap::result::{from_error, success};
use crate::ldap::syncrepl::{self, Cookie, State};
use crate::ldap::{Conn, ber};
use crate::store::Csn;

/// How often an idle persist stage looks whether it was abandoned or its
/// connection closed.
const PERSIST_POLL: Duration = Duration::from_secs(1);

pub(super) fn sync_search(
    conn: &Arc<Conn>,
    session: Session,
    id: i32,
    req: SearchRequest,
    mode: SyncRequestMode,
    cookie: Option<Vec<u8>>,
) -> Reply {
    let op = InFlight::new(conn, id, Shape::Result(ber::SEARCH_RESULT_DONE));
    let req = SearchRequest { cancel: Some(op.cancel.clone()), ..req };
    let conn = conn.clone();
    let cookie = cookie.as_deref().map(Cookie::parse).unwrap_or_default();
    let persist = mode == SyncRequestMode::RefreshAndPersist;
    Reply::Pending(tokio::spawn(async move {
        // Subscribed before the refresh's snapshot: nothing committed after
        // it can be missed.
        let mut commits = conn.ctx.directory.commits();
        let refresh = {
            let (conn, session, req, cookie) = (conn.clone(), session.clone(), req.clone(), cookie.clone());
            let cancel = op.cancel.clone();
            tokio::task::spawn_blocking(move || refresh(&conn, &session, id, &req, &cookie, persist, &cancel)).await
        };
        let (out, upto) = match refresh {
            Ok(Ok(done)) => done,
            Ok(Err(DirectoryError::Abandoned)) => return,
            Ok(Err(e)) => {
                op.answer(conn.result_pdu(id, ber::SEARCH_RESULT_DONE, &from_error(&e), &[]));
                return;
            }
            Err(_) => return,
        };
        if !persist {
            op.answer(out);
            return;
        }
        conn.send(out);
        let mut after = upto.unwrap_or_default();
        let dir = conn.ctx.directory.clone();
        let following = dir.follow(&session.peer, &session.bound_dn, &req.base, upto);
        loop {
            if op.cancelled() || conn.closing.load(Ordering::Relaxed) {
                return;
            }
            let _ = tokio::time::timeout(PERSIST_POLL, commits.changed()).await;
            let step = {
                let (conn, session, req, cookie) = (conn.clone(), session.clone(), req.clone(), cookie.clone());
                tokio::task::spawn_blocking(move || persist_step(&conn, &session, id, &req, &cookie, after)).await
            };
            match step {
                Ok(Ok((out, reached))) => {
                    conn.send(out);
                    after = reached;
                    following.reached(reached);
                }
                Ok(Err(e)) => {
                    op.answer(conn.result_pdu(id, ber::SEARCH_RESULT_DONE, &from_error(&e), &[]));
                    return;
                }
                Err(_) => return,
            }
        }
    }))
}

/// The refresh stage, encoded: what changed since the cookie, then the
/// deletions or what is present, then its end (the SearchResultDone with
/// the Sync Done control, or the refreshDelete / refreshPresent message
/// when the search persists).
fn refresh(
    conn: &Conn,
    session: &Session,
    id: i32,
    req: &SearchRequest,
    cookie: &Cookie,
    persist: bool,
    cancel: &std::sync::atomic::AtomicBool,
) -> Result<(Vec<u8>, Option<Csn>), DirectoryError> {
    let dir = &conn.ctx.directory;
    let mut out = Vec::new();
    let mut gone: Vec<[u8; 16]> = Vec::new();
    let batch = conn.ctx.sync_batch;
    let (upto, kind) = dir.sync_refresh(&session.principal, req, cookie.csn, batch, |item| {
        if cancel.load(Ordering::Relaxed) {
            return Err(DirectoryError::Abandoned);
        }
        match item {
            // RFC 4533 §3.3.1: every entry of the refresh stage is an add.
            SyncItem::Entry { entry, uuid, .. } => syncrepl::entry(&mut out, id, &entry, State::Add, &uuid, None),
            SyncItem::Present(uuids) => syncrepl::id_set(&mut out, id, &uuids, false, None),
            SyncItem::Gone { uuid, .. } => {
                gone.push(uuid);
                if gone.len() >= batch {
                    syncrepl::id_set(&mut out, id, &std::mem::take(&mut gone), true, None);
                }
            }
        }
        if out.len() >= FLUSH_BYTES {
            conn.send(std::mem::take(&mut out));
        }
        Ok(())
    })?;
    if !gone.is_empty() {
        syncrepl::id_set(&mut out, id, &gone, true, None);
    }
    let new_cookie = cookie.render(conn.ctx.server_id, upto);
    let deletes = kind == Refresh::Deletes;
    if persist {
        syncrepl::refresh_done(&mut out, id, deletes, Some(&new_cookie));
    } else {
        let done = syncrepl::done_control(Some(&new_cookie), deletes);
        out.extend(conn.result_pdu(id, ber::SEARCH_RESULT_DONE, &success(), &[done]));
    }
    Ok((out, upto))
}

/// One step of the persist stage: the changes after `after`, each with the
/// cookie of its own CSN (RFC 4533 §3.4), so that a replica stopped at any
/// point resumes from the last change it applied.
fn persist_step(
    conn: &Conn,
    session: &Session,
    id: i32,
    req: &SearchRequest,
    cookie: &Cookie,
    mut after: Csn,
) -> Result<(Vec<u8>, Csn), DirectoryError> {
    let dir = &conn.ctx.directory;
    let sid = conn.ctx.server_id;
    let mut out = Vec::new();
    loop {
        let reached = dir.sync_changes(&session.principal, req, after, conn.ctx.sync_batch, |item| {
            match item {
                SyncItem::Entry { entry, uuid, csn, added } => {
                    let state = if added { State::Add } else { State::Modify };
                    syncrepl::entry(&mut out, id, &entry, state, &uuid, Some(&cookie.render(sid, Some(csn))));
                }
                SyncItem::Gone { uuid, ndn, csn } => {
                    syncrepl::deleted(&mut out, id, &ndn, &uuid, Some(&cookie.render(sid, Some(csn))));
                }
                SyncItem::Present(_) => {}
            }
            if out.len() >= FLUSH_BYTES {
                conn.send(std::mem::take(&mut out));
            }
            Ok(())
        })?;
        if reached == after {
            return Ok((out, after));
        }
        // Changes the replica may not see (another organisation's) move its
        // cookie on all the same, so that a restart does not read them again.
        if out.is_empty() {
            syncrepl::new_cookie(&mut out, id, &cookie.render(sid, Some(reached)));
        }
        after = reached;
    }
}
