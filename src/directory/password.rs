//! Password storage schemes (RFC 2307 `{SCHEME}` prefixes). New passwords are
//! hashed with argon2id; binds verify the schemes an OpenLDAP import carries.

use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use sha1::Digest;

/// Whether a stored `userPassword` value is already a hash (kept as-is on import / write).
pub fn is_hashed(v: &[u8]) -> bool {
    let Ok(s) = std::str::from_utf8(v) else { return false };
    if let Some(rest) = s.strip_prefix('{')
        && let Some(end) = rest.find('}')
    {
        let scheme = &rest[..end];
        return !scheme.is_empty()
            && !scheme.eq_ignore_ascii_case("CLEARTEXT")
            && scheme.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.');
    }
    false
}

/// Hash a new password with argon2id (the crate's default parameters, RFC 9106
/// second recommendation), in the `{ARGON2}$argon2id$…` form OpenLDAP's argon2 module uses.
pub fn hash(password: &[u8]) -> Result<String, String> {
    let mut salt = [0u8; 16];
    getrandom::fill(&mut salt).map_err(|e| e.to_string())?;
    let salt = SaltString::encode_b64(&salt).map_err(|e| e.to_string())?;
    let phc = argon2::Argon2::default().hash_password(password, &salt).map_err(|e| e.to_string())?;
    Ok(format!("{{ARGON2}}{phc}"))
}

/// Whether checking against this stored value takes microseconds (salted
/// digests) rather than milliseconds (argon2, crypt): cheap checks run inline.
pub fn is_cheap(stored: &[u8]) -> bool {
    let upper: Vec<u8> = stored.iter().take(10).map(u8::to_ascii_uppercase).collect();
    ["{SSHA}", "{SSHA256}", "{SSHA512}", "{SMD5}", "{SHA}", "{SHA256}", "{SHA512}", "{MD5}"]
        .iter()
        .any(|p| upper.starts_with(p.as_bytes()))
}

/// Check a password against one stored value. Unknown schemes never match.
pub fn verify(stored: &[u8], password: &[u8]) -> bool {
    let Ok(s) = std::str::from_utf8(stored) else {
        return false;
    };
    let Some((scheme, rest)) = s.strip_prefix('{').and_then(|r| r.split_once('}')) else {
        // A plain-text value (legacy data): compare in constant time.
        return constant_eq(stored, password);
    };
    match scheme.to_ascii_uppercase().as_str() {
        "SSHA" => salted::<sha1::Sha1>(rest, password, 20),
        "SSHA256" => salted::<sha2::Sha256>(rest, password, 32),
        "SSHA512" => salted::<sha2::Sha512>(rest, password, 64),
        "SMD5" => salted::<md5::Md5>(rest, password, 16),
        "SHA" => unsalted::<sha1::Sha1>(rest, password),
        "SHA256" => unsalted::<sha2::Sha256>(rest, password),
        "SHA512" => unsalted::<sha2::Sha512>(rest, password),
        "MD5" => unsalted::<md5::Md5>(rest, password),
        "ARGON2" => match PasswordHash::new(rest) {
            Ok(h) => argon2::Argon2::default().verify_password(password, &h).is_ok(),
            Err(_) => false,
        },
        "CLEARTEXT" => constant_eq(rest.as_bytes(), password),
        _ => false,
    }
}

fn salted<D: Digest>(b64: &str, password: &[u8], digest_len: usize) -> bool {
    let Ok(raw) = B64.decode(b64.trim()) else { return false };
    if raw.len() <= digest_len {
        return false;
    }
    let (digest, salt) = raw.split_at(digest_len);
    let mut h = D::new();
    h.update(password);
    h.update(salt);
    constant_eq(&h.finalize(), digest)
}

fn unsalted<D: Digest>(b64: &str, password: &[u8]) -> bool {
    let Ok(raw) = B64.decode(b64.trim()) else { return false };
    constant_eq(&D::digest(password), &raw)
}

fn constant_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// A stand-in hash, of the scheme new passwords get, verified when the bind
/// DN does not exist: an unknown DN and a wrong password then cost the same
/// (RFC 4513 §6.2 advice against revealing which one was wrong).
pub fn decoy() -> &'static [u8] {
    static DECOY: std::sync::OnceLock<Vec<u8>> = std::sync::OnceLock::new();
    DECOY.get_or_init(|| hash(b"decoy").map(String::into_bytes).unwrap_or_default())
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn ssha(pw: &str, salt: &[u8]) -> String {
        let mut h = sha1::Sha1::new();
        h.update(pw.as_bytes());
        h.update(salt);
        let mut raw = h.finalize().to_vec();
        raw.extend_from_slice(salt);
        format!("{{SSHA}}{}", B64.encode(raw))
    }

    #[test]
    fn verifies_ssha_and_argon2() {
        let s = ssha("pw-123", b"saltsalt");
        assert!(verify(s.as_bytes(), b"pw-123"));
        assert!(!verify(s.as_bytes(), b"pw-124"));
        let a = hash(b"secret").unwrap();
        assert!(a.starts_with("{ARGON2}$argon2id$"));
        assert!(verify(a.as_bytes(), b"secret"));
        assert!(!verify(a.as_bytes(), b"Secret"));
        assert!(is_hashed(a.as_bytes()));
        assert!(!is_hashed(b"plain"));
        assert!(!verify(b"{BOGUS}x", b"x"));
    }
}
