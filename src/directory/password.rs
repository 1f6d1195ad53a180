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

/// argon2id cost parameters for new hashes (config `password.argon2_*`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Argon2Params {
    /// Memory in KiB.
    pub memory_kib: u32,
    pub iterations: u32,
    pub parallelism: u32,
}

impl Default for Argon2Params {
    /// RFC 9106 §4's second recommended option, as OWASP lists it: 19 MiB, t=2, p=1.
    fn default() -> Self {
        Argon2Params { memory_kib: 19_456, iterations: 2, parallelism: 1 }
    }
}

/// Hash a new password with argon2id and the default parameters.
pub fn hash(password: &[u8]) -> Result<String, String> {
    hash_with(password, &Argon2Params::default())
}

/// Hash a new password with argon2id, in the `{ARGON2}$argon2id$…` form
/// OpenLDAP's argon2 module uses.
pub fn hash_with(password: &[u8], p: &Argon2Params) -> Result<String, String> {
    let mut salt = [0u8; 16];
    getrandom::fill(&mut salt).map_err(|e| e.to_string())?;
    let salt = SaltString::encode_b64(&salt).map_err(|e| e.to_string())?;
    let params = argon2::Params::new(p.memory_kib, p.iterations, p.parallelism, None).map_err(|e| e.to_string())?;
    let hasher = argon2::Argon2::new(argon2::Algorithm::Argon2id, argon2::Version::V0x13, params);
    let phc = hasher.hash_password(password, &salt).map_err(|e| e.to_string())?;
    Ok(format!("{{ARGON2}}{phc}"))
}

/// Whether a stored value should be replaced by an argon2id hash after a
/// successful bind: every other scheme (and plain text) is older or weaker.
pub fn needs_rehash(stored: &[u8]) -> bool {
    let upper: Vec<u8> = stored.iter().take(8).map(u8::to_ascii_uppercase).collect();
    !upper.starts_with(b"{ARGON2}")
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
        // RFC 2307 {CRYPT}: crypt(3) strings, `$1$` md5-crypt, `$5$` / `$6$`
        // sha-crypt, `$2a$` / `$2b$` / `$2y$` bcrypt, and traditional DES.
        "CRYPT" => std::str::from_utf8(password).is_ok() && pwhash::unix::verify(password, rest),
        // OpenLDAP's contrib pw-pbkdf2: `{PBKDF2-SHA256}<rounds>$<ab64 salt>$<ab64 key>`.
        "PBKDF2" | "PBKDF2-SHA1" => pbkdf2_openldap(Prf::Sha1, rest, password),
        "PBKDF2-SHA256" => pbkdf2_openldap(Prf::Sha256, rest, password),
        "PBKDF2-SHA512" => pbkdf2_openldap(Prf::Sha512, rest, password),
        // 389-DS: base64 of rounds (4 bytes, big-endian), a 64-byte salt and a 256-byte key.
        "PBKDF2_SHA256" => pbkdf2_389ds(rest, password),
        _ => false,
    }
}

/// The "adapted base64" of passlib and OpenLDAP's pw-pbkdf2: `.` for `+`, no padding.
fn ab64(s: &str) -> Option<Vec<u8>> {
    let std: String = s.trim().replace('.', "+");
    base64::engine::general_purpose::STANDARD_NO_PAD.decode(std.trim_end_matches('=')).ok()
}

#[derive(Clone, Copy)]
enum Prf {
    Sha1,
    Sha256,
    Sha512,
}

fn pbkdf2_openldap(prf: Prf, rest: &str, password: &[u8]) -> bool {
    let mut parts = rest.split('$');
    let (Some(rounds), Some(salt), Some(key), None) = (parts.next(), parts.next(), parts.next(), parts.next()) else {
        return false;
    };
    let (Ok(rounds), Some(salt), Some(key)) = (rounds.parse::<u32>(), ab64(salt), ab64(key)) else {
        return false;
    };
    if rounds == 0 || key.is_empty() || key.len() > 128 {
        return false;
    }
    let mut out = vec![0u8; key.len()];
    match prf {
        Prf::Sha1 => pbkdf2::pbkdf2_hmac::<sha1::Sha1>(password, &salt, rounds, &mut out),
        Prf::Sha256 => pbkdf2::pbkdf2_hmac::<sha2::Sha256>(password, &salt, rounds, &mut out),
        Prf::Sha512 => pbkdf2::pbkdf2_hmac::<sha2::Sha512>(password, &salt, rounds, &mut out),
    }
    constant_eq(&out, &key)
}

fn pbkdf2_389ds(rest: &str, password: &[u8]) -> bool {
    let Ok(raw) = B64.decode(rest.trim()) else { return false };
    if raw.len() != 4 + 64 + 256 {
        return false;
    }
    let rounds = u32::from_be_bytes([raw[0], raw[1], raw[2], raw[3]]);
    if rounds == 0 {
        return false;
    }
    let (salt, key) = raw[4..].split_at(64);
    let mut out = vec![0u8; 256];
    pbkdf2::pbkdf2_hmac::<sha2::Sha256>(password, salt, rounds, &mut out);
    constant_eq(&out, key)
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

    #[test]
    fn verifies_the_crypt_forms_openldap_and_389ds_directories_carry() {
        let sha512 = pwhash::sha512_crypt::hash_with("$6$saltsalt", "secret").unwrap();
        assert!(verify(format!("{{CRYPT}}{sha512}").as_bytes(), b"secret"));
        #[allow(deprecated)]
        let md5 = pwhash::md5_crypt::hash_with("$1$saltsalt", "secret").unwrap();
        assert!(verify(format!("{{CRYPT}}{md5}").as_bytes(), b"secret"));
        let bcrypt = pwhash::bcrypt::hash_with(
            pwhash::bcrypt::BcryptSetup {
                cost: Some(4),
                variant: Some(pwhash::bcrypt::BcryptVariant::V2b),
                salt: None,
            },
            "secret",
        )
        .unwrap();
        assert!(verify(format!("{{CRYPT}}{bcrypt}").as_bytes(), b"secret"));
        assert!(!verify(format!("{{CRYPT}}{bcrypt}").as_bytes(), b"secreT"));
    }

    #[test]
    fn verifies_pbkdf2_sha256_as_openldap_writes_it() {
        let salt = b"0123456789abcdef";
        let mut key = [0u8; 32];
        pbkdf2::pbkdf2_hmac::<sha2::Sha256>(b"secret", salt, 1000, &mut key);
        let enc = |b: &[u8]| base64::engine::general_purpose::STANDARD_NO_PAD.encode(b).replace('+', ".");
        let stored = format!("{{PBKDF2-SHA256}}1000${}${}", enc(salt), enc(&key));
        assert!(verify(stored.as_bytes(), b"secret"));
        assert!(!verify(stored.as_bytes(), b"Secret"));
        assert!(needs_rehash(stored.as_bytes()));
        assert!(!needs_rehash(hash(b"x").unwrap().as_bytes()));
    }
}
