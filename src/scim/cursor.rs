//! Cursor pagination (RFC 9865). A cursor is the position after (or
//! before) the last resource of a page, in an order that writes do not
//! shift: the sort key, then the id. A later page is the resources past
//! that position, found again by the same search as the caller, so that a
//! page never shows what the caller may not see now (§5.2), and resources
//! created or deleted meanwhile neither shift nor repeat the others.
//!
//! On the wire a cursor is opaque: the position, the query it belongs to,
//! the page size and an expiry, sealed with a key of this process (a forged
//! or altered cursor is `invalidCursor`; one past `cursor_timeout_secs` is
//! `expiredCursor`). A restart makes earlier cursors invalid.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::ScimError;

/// Which way a cursor leads from its position.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Direction {
    /// The resources after the position (`nextCursor`).
    #[serde(rename = "n")]
    After,
    /// The resources before it (`previousCursor`).
    #[serde(rename = "p")]
    Before,
}

/// A position in a listing: (sort key, id).
pub type Position = (Option<String>, String);

#[derive(Debug, Serialize, Deserialize)]
struct Sealed {
    /// The position.
    k: Position,
    d: Direction,
    /// The query it belongs to (filter, sort, projection, resource type, caller).
    q: String,
    /// The page size.
    c: usize,
    /// Expires at, Unix seconds.
    e: u64,
}

/// Seals and opens cursors with this process's key.
pub struct Cursors {
    key: [u8; 32],
    timeout_secs: u64,
}

fn invalid_cursor(detail: &str) -> ScimError {
    ScimError::new(axum::http::StatusCode::BAD_REQUEST, Some("invalidCursor"), detail)
}

fn now() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0)
}

/// What a cursor from a request says.
#[derive(Debug)]
pub struct Opened {
    pub position: Position,
    pub direction: Direction,
    pub count: usize,
}

impl Cursors {
    pub fn new(timeout_secs: u64) -> Cursors {
        let mut key = [0u8; 32];
        if getrandom::fill(&mut key).is_err() {
            // Without randomness, cursors are still sealed, with a key that
            // varies with the start time; they cannot be forged from outside
            // without knowing it.
            let t = now().to_le_bytes();
            key[..8].copy_from_slice(&t);
        }
        Cursors { key, timeout_secs: timeout_secs.max(1) }
    }

    pub fn timeout_secs(&self) -> u64 {
        self.timeout_secs
    }

    fn mac(&self, payload: &[u8]) -> Vec<u8> {
        let mut h = Sha256::new();
        h.update(self.key);
        h.update(payload);
        h.update(self.key);
        h.finalize()[..16].to_vec()
    }

    /// The query a cursor must come back with: everything but the cursor.
    pub fn query_digest(parts: &[&str]) -> String {
        let mut h = Sha256::new();
        for p in parts {
            h.update(p.as_bytes());
            h.update([0]);
        }
        B64.encode(&h.finalize()[..12])
    }

    pub fn seal(&self, position: Position, direction: Direction, query: &str, count: usize) -> String {
        let sealed = Sealed { k: position, d: direction, q: query.to_string(), c: count, e: now() + self.timeout_secs };
        let payload = serde_json::to_vec(&sealed).unwrap_or_default();
        let mac = self.mac(&payload);
        format!("{}.{}", B64.encode(&payload), B64.encode(mac))
    }

    /// Open a cursor a client sent back, for this query.
    pub fn open(&self, cursor: &str, query: &str) -> Result<Opened, ScimError> {
        let (payload, mac) =
            cursor.trim().split_once('.').ok_or_else(|| invalid_cursor("the cursor is not one of this server's"))?;
        let payload = B64.decode(payload).map_err(|_| invalid_cursor("the cursor is not one of this server's"))?;
        let mac = B64.decode(mac).map_err(|_| invalid_cursor("the cursor is not one of this server's"))?;
        if mac != self.mac(&payload) {
            return Err(invalid_cursor("the cursor is not one of this server's (or the server restarted since)"));
        }
        let sealed: Sealed = serde_json::from_slice(&payload).map_err(|_| invalid_cursor("the cursor is damaged"))?;
        if sealed.q != query {
            return Err(invalid_cursor("the cursor belongs to another query: repeat its filter, sort and attributes"));
        }
        if now() > sealed.e {
            return Err(ScimError::new(
                axum::http::StatusCode::BAD_REQUEST,
                Some("expiredCursor"),
                format!("the cursor has expired (cursors last {} seconds)", self.timeout_secs),
            ));
        }
        Ok(Opened { position: sealed.k, direction: sealed.d, count: sealed.c })
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn a_cursor_opens_only_for_its_query_and_unaltered() {
        let c = Cursors::new(60);
        let s = c.seal((Some("dupont".into()), "id-1".into()), Direction::After, "q1", 10);
        let o = c.open(&s, "q1").unwrap();
        assert_eq!(o.position, (Some("dupont".into()), "id-1".into()));
        assert_eq!(o.count, 10);
        assert_eq!(c.open(&s, "q2").unwrap_err().scim_type, Some("invalidCursor"));
        let mut forged = s.clone();
        forged.replace_range(0..1, if s.starts_with('A') { "B" } else { "A" });
        assert_eq!(c.open(&forged, "q1").unwrap_err().scim_type, Some("invalidCursor"));
        assert_eq!(Cursors::new(60).open(&s, "q1").unwrap_err().scim_type, Some("invalidCursor"));
        assert_eq!(c.open("garbage", "q1").unwrap_err().scim_type, Some("invalidCursor"));
    }
}
