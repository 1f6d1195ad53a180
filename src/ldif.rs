//! LDIF, RFC 2849: a streaming reader of content and change records (base64
//! values, folded lines, comments, `changetype: add|delete|modify|modrdn`) and
//! a writer that produces what slapcat produces (76-column folding, base64 for
//! values that are not SAFE-STRINGs). No maintained Rust crate covers both the
//! change records and slapcat's output, so this is our own.

use std::io::{BufRead, Write};

use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;

use crate::directory::{Dn, Entry, ModOp, Modification, Rdn, write::Change};

/// A bad record: the line it starts on (1-based) and what is wrong.
#[derive(Debug, thiserror::Error)]
#[error("line {line}: {reason}")]
pub struct LdifError {
    pub line: usize,
    pub reason: String,
}

/// Reads records one at a time; each comes with the line where it starts.
pub struct LdifReader<R> {
    input: R,
    line_no: usize,
    /// A line read ahead while unfolding.
    pending: Option<(usize, String)>,
    first: bool,
}

impl<R: BufRead> LdifReader<R> {
    pub fn new(input: R) -> Self {
        LdifReader { input, line_no: 0, pending: None, first: true }
    }

    fn raw_line(&mut self) -> Result<Option<(usize, String)>, LdifError> {
        if let Some(p) = self.pending.take() {
            return Ok(Some(p));
        }
        let mut buf = Vec::new();
        let n = self
            .input
            .read_until(b'\n', &mut buf)
            .map_err(|e| LdifError { line: self.line_no + 1, reason: e.to_string() })?;
        if n == 0 {
            return Ok(None);
        }
        self.line_no += 1;
        while matches!(buf.last(), Some(b'\n' | b'\r')) {
            buf.pop();
        }
        let s =
            String::from_utf8(buf).map_err(|_| LdifError { line: self.line_no, reason: "line is not UTF-8".into() })?;
        Ok(Some((self.line_no, s)))
    }

    /// The next logical (unfolded) line; `Some((n, ""))` marks a record separator.
    fn logical_line(&mut self) -> Result<Option<(usize, String)>, LdifError> {
        loop {
            let Some((n, mut line)) = self.raw_line()? else {
                return Ok(None);
            };
            // RFC 2849: a line starting with one space continues the previous one.
            loop {
                match self.raw_line()? {
                    Some((_, next)) if next.starts_with(' ') => line.push_str(&next[1..]),
                    other => {
                        self.pending = other;
                        break;
                    }
                }
            }
            if line.starts_with('#') {
                continue;
            }
            return Ok(Some((n, line)));
        }
    }

    /// The next record's lines, with the line number of each.
    fn record_lines(&mut self) -> Result<Option<Vec<(usize, String)>>, LdifError> {
        let mut lines = Vec::new();
        loop {
            match self.logical_line()? {
                None => break,
                Some((_, l)) if l.trim().is_empty() => {
                    if lines.is_empty() {
                        continue;
                    }
                    break;
                }
                Some(x) => lines.push(x),
            }
        }
        if self.first {
            self.first = false;
            if lines.first().is_some_and(|(_, l)| l.starts_with("version:")) {
                lines.remove(0);
                if lines.is_empty() {
                    return self.record_lines();
                }
            }
        }
        Ok(if lines.is_empty() { None } else { Some(lines) })
    }
}

/// Split `name: value`, `name:: base64` or `name:< file://path`.
fn attr_value(line: usize, l: &str) -> Result<(String, Vec<u8>), LdifError> {
    let err = |reason: &str| LdifError { line, reason: reason.to_string() };
    let colon = l.find(':').ok_or_else(|| err("expected 'attribute: value'"))?;
    let name = l[..colon].trim().to_string();
    if name.is_empty() {
        return Err(err("missing attribute name"));
    }
    let rest = &l[colon + 1..];
    let value = if let Some(b) = rest.strip_prefix(':') {
        B64.decode(b.trim()).map_err(|_| err("bad base64 value"))?
    } else if let Some(url) = rest.strip_prefix('<') {
        let url = url.trim();
        let path = url.strip_prefix("file://").ok_or_else(|| err("only file:// URLs are supported"))?;
        std::fs::read(path).map_err(|e| err(&format!("cannot read {path}: {e}")))?
    } else {
        rest.trim_start_matches(' ').as_bytes().to_vec()
    };
    Ok((name, value))
}

fn text(line: usize, v: Vec<u8>) -> Result<String, LdifError> {
    String::from_utf8(v).map_err(|_| LdifError { line, reason: "value is not UTF-8".into() })
}

fn parse_dn(line: usize, v: Vec<u8>) -> Result<Dn, LdifError> {
    Dn::parse(&text(line, v)?).map_err(|e| LdifError { line, reason: e.to_string() })
}

impl<R: BufRead> Iterator for LdifReader<R> {
    type Item = Result<(usize, Change), LdifError>;

    fn next(&mut self) -> Option<Self::Item> {
        match self.record_lines() {
            Err(e) => Some(Err(e)),
            Ok(None) => None,
            Ok(Some(lines)) => Some(parse_record(lines)),
        }
    }
}

fn parse_record(lines: Vec<(usize, String)>) -> Result<(usize, Change), LdifError> {
    let mut it = lines.into_iter().peekable();
    let Some((start, first)) = it.next() else {
        return Err(LdifError { line: 0, reason: "empty record".into() });
    };
    let (name, value) = attr_value(start, &first)?;
    if !name.eq_ignore_ascii_case("dn") {
        return Err(LdifError { line: start, reason: "a record must start with 'dn:'".into() });
    }
    let dn = parse_dn(start, value)?;
    if let Some((n, _)) = it.peek().filter(|(_, l)| l.to_ascii_lowercase().starts_with("control:")) {
        return Err(LdifError { line: *n, reason: "LDIF controls are not supported".into() });
    }
    let changetype = match it.peek() {
        Some((n, l)) if l.to_ascii_lowercase().starts_with("changetype:") => {
            let (_, v) = attr_value(*n, l)?;
            let n = *n;
            it.next();
            Some((n, text(n, v)?.trim().to_ascii_lowercase()))
        }
        _ => None,
    };
    let change = match changetype {
        None => {
            let mut entry = Entry::new(dn);
            for (n, l) in it {
                let (name, value) = attr_value(n, &l)?;
                entry.add_values(&name, [value]);
            }
            Change::Add(entry)
        }
        Some((n, ct)) => match ct.as_str() {
            "add" => {
                let mut entry = Entry::new(dn);
                for (n, l) in it {
                    let (name, value) = attr_value(n, &l)?;
                    entry.add_values(&name, [value]);
                }
                Change::Add(entry)
            }
            "delete" => {
                if let Some((n, _)) = it.next() {
                    return Err(LdifError { line: n, reason: "a delete record has no other lines".into() });
                }
                Change::Delete(dn)
            }
            "modrdn" | "moddn" => {
                let mut new_rdn = None;
                let mut delete_old_rdn = None;
                let mut new_superior = None;
                for (n, l) in it {
                    let (name, value) = attr_value(n, &l)?;
                    match name.to_ascii_lowercase().as_str() {
                        "newrdn" => {
                            new_rdn = Some(
                                Rdn::parse(&text(n, value)?)
                                    .map_err(|e| LdifError { line: n, reason: e.to_string() })?,
                            )
                        }
                        "deleteoldrdn" => {
                            delete_old_rdn = Some(match value.as_slice() {
                                b"0" => false,
                                b"1" => true,
                                _ => {
                                    return Err(LdifError { line: n, reason: "deleteoldrdn is 0 or 1".into() });
                                }
                            })
                        }
                        "newsuperior" => new_superior = Some(parse_dn(n, value)?),
                        other => {
                            return Err(LdifError { line: n, reason: format!("unexpected '{other}' in modrdn") });
                        }
                    }
                }
                let (Some(new_rdn), Some(delete_old_rdn)) = (new_rdn, delete_old_rdn) else {
                    return Err(LdifError { line: n, reason: "modrdn needs newrdn and deleteoldrdn".into() });
                };
                Change::Rename { dn, new_rdn, delete_old_rdn, new_superior }
            }
            "modify" => {
                let mut mods = Vec::new();
                while let Some((n, l)) = it.next() {
                    let (op, attr) = attr_value(n, &l)?;
                    let op = match op.to_ascii_lowercase().as_str() {
                        "add" => ModOp::Add,
                        "delete" => ModOp::Delete,
                        "replace" => ModOp::Replace,
                        "increment" => ModOp::Increment,
                        other => {
                            return Err(LdifError { line: n, reason: format!("unknown modify operation '{other}'") });
                        }
                    };
                    let attr = text(n, attr)?.trim().to_string();
                    let mut values = Vec::new();
                    loop {
                        match it.next() {
                            None => break,
                            Some((_, l)) if l.trim() == "-" => break,
                            Some((m, l)) => {
                                let (name, v) = attr_value(m, &l)?;
                                if !name.eq_ignore_ascii_case(&attr) {
                                    return Err(LdifError {
                                        line: m,
                                        reason: format!("expected '{attr}' or '-', found '{name}'"),
                                    });
                                }
                                values.push(v);
                            }
                        }
                    }
                    mods.push(Modification { op, attr, values });
                }
                Change::Modify(dn, mods)
            }
            other => {
                return Err(LdifError { line: n, reason: format!("unknown changetype '{other}'") });
            }
        },
    };
    Ok((start, change))
}

/// RFC 2849 SAFE-STRING, and ASCII only (as slapcat, which base64-encodes any 8-bit value).
fn is_safe(v: &[u8]) -> bool {
    match v.first() {
        None => true,
        Some(b' ' | b':' | b'<') => false,
        Some(_) => v.last() != Some(&b' ') && v.iter().all(|&b| b != 0 && b != b'\n' && b != b'\r' && b < 0x80),
    }
}

/// Width at which lines fold, as slapcat.
const FOLD: usize = 76;

fn write_line(out: &mut impl Write, line: &str) -> std::io::Result<()> {
    let b = line.as_bytes();
    if b.len() <= FOLD {
        out.write_all(b)?;
        return out.write_all(b"\n");
    }
    // Lines here are ASCII (names, and values either safe ASCII or base64), so
    // splitting at byte offsets never cuts a character.
    let (head, mut rest) = b.split_at(FOLD);
    out.write_all(head)?;
    out.write_all(b"\n")?;
    while !rest.is_empty() {
        let n = rest.len().min(FOLD - 1);
        let (chunk, r) = rest.split_at(n);
        out.write_all(b" ")?;
        out.write_all(chunk)?;
        out.write_all(b"\n")?;
        rest = r;
    }
    Ok(())
}

fn attr_line(name: &str, v: &[u8]) -> String {
    // slapcat always base64-encodes userPassword (OpenLDAP ldif.c "must b64 encode").
    if is_safe(v) && !name.eq_ignore_ascii_case("userPassword") {
        // is_safe guarantees ASCII
        format!("{name}: {}", String::from_utf8_lossy(v))
    } else {
        format!("{name}:: {}", B64.encode(v))
    }
}

/// Write one entry as an LDIF content record, followed by a blank line.
/// Every entry of one snapshot as LDIF, parents first, in slapcat's format.
pub fn export(dir: &crate::directory::Directory, out: &mut impl Write) -> Result<(), crate::directory::DirectoryError> {
    dir.for_each_entry(|e| {
        let attrs: Vec<(String, Vec<Vec<u8>>)> = e.attrs.iter().map(|a| (a.name.clone(), a.values.clone())).collect();
        write_entry(out, &e.dn.to_string(), &attrs)
            .map_err(|err| crate::directory::DirectoryError::Internal(err.to_string()))
    })
}

pub fn write_entry(out: &mut impl Write, dn: &str, attrs: &[(String, Vec<Vec<u8>>)]) -> std::io::Result<()> {
    write_line(out, &attr_line("dn", dn.as_bytes()))?;
    for (name, values) in attrs {
        for v in values {
            write_line(out, &attr_line(name, v))?;
        }
    }
    out.write_all(b"\n")
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::indexing_slicing, clippy::panic)]
mod tests {
    use super::*;

    fn read(s: &str) -> Vec<Result<(usize, Change), LdifError>> {
        LdifReader::new(s.as_bytes()).collect()
    }

    #[test]
    fn reads_folded_base64_and_comments() {
        let recs = read(
            "version: 1\n\n# a comment\ndn: uid=hdupre,ou=agents,dc=cig,dc=fr\nobjectClass: inetOrgPerson\ncn:: SMOpbMOobmUgRHVwcsOp\ndescrip\n tion: long\n  folded\n\n\ndn: dc=cig,dc=fr\nchangetype: modify\nreplace: description\ndescription: x\n-\nadd: mail\nmail: a@b\nmail: c@d\n-\n",
        );
        assert_eq!(recs.len(), 2);
        let (line, Change::Add(e)) = recs[0].as_ref().unwrap() else { panic!() };
        assert_eq!(*line, 4);
        assert_eq!(e.first_str("cn"), Some("Hélène Dupré"));
        assert_eq!(e.first_str("description"), Some("long folded"));
        let (_, Change::Modify(_, mods)) = recs[1].as_ref().unwrap() else { panic!() };
        assert_eq!(mods.len(), 2);
        assert_eq!(mods[1].values.len(), 2);
    }

    #[test]
    fn reports_the_line_of_a_bad_record() {
        let recs = read("dn: dc=fr\nobjectClass: top\n\ndn: dc=x\nbad line\n");
        assert_eq!(recs[1].as_ref().unwrap_err().line, 5);
        let recs = read("dn: dc=fr\ncn:: !!!\n");
        assert_eq!(recs[0].as_ref().unwrap_err().line, 2);
    }

    #[test]
    fn writes_slapcat_style_and_reads_back() {
        let long = "x".repeat(200);
        let attrs = vec![
            ("cn".to_string(), vec!["Hélène".as_bytes().to_vec(), b" lead".to_vec()]),
            ("description".to_string(), vec![long.clone().into_bytes()]),
        ];
        let mut out = Vec::new();
        write_entry(&mut out, "cn=Hélène,dc=fr", &attrs).unwrap();
        let text = String::from_utf8(out).unwrap();
        assert!(text.lines().all(|l| l.len() <= FOLD));
        assert!(text.starts_with("dn:: "));
        let recs = read(&text);
        let (_, Change::Add(e)) = recs[0].as_ref().unwrap() else { panic!() };
        assert_eq!(e.get("cn").unwrap().values[1], b" lead");
        assert_eq!(e.first_str("description"), Some(long.as_str()));
    }
}
