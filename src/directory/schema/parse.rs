//! Parser for RFC 4512 §4.1 definitions in OpenLDAP `.schema` file syntax:
//! `attributetype ( … )` and `objectclass ( … )`, `#` comments, continuation
//! lines starting with white space. Other directives (`objectidentifier`,
//! `ditcontentrule`, …) are refused with a line number rather than ignored, so a
//! file never loads half-understood.

use super::{AttributeType, ClassKind, ObjectClass, Usage};

/// A parse failure: the file's line where the definition starts, and why.
#[derive(Debug, thiserror::Error)]
#[error("line {line}: {reason}")]
pub struct SchemaParseError {
    pub line: usize,
    pub reason: String,
}

/// What one schema file defines, in file order.
#[derive(Debug, Default)]
pub struct SchemaFile {
    pub attribute_types: Vec<AttributeType>,
    pub object_classes: Vec<ObjectClass>,
}

/// Parse a whole schema file.
pub fn parse_schema_file(text: &str) -> Result<SchemaFile, SchemaParseError> {
    let mut out = SchemaFile::default();
    // Join continuation lines into logical statements, remembering start lines.
    let mut statements: Vec<(usize, String)> = Vec::new();
    for (i, raw) in text.lines().enumerate() {
        let line = raw.trim_end();
        if line.trim_start().starts_with('#') || line.trim().is_empty() {
            continue;
        }
        if line.starts_with(' ') || line.starts_with('\t') {
            match statements.last_mut() {
                Some((_, s)) => {
                    s.push(' ');
                    s.push_str(line.trim());
                }
                None => {
                    return Err(SchemaParseError { line: i + 1, reason: "continuation line with no statement".into() });
                }
            }
        } else {
            statements.push((i + 1, line.to_string()));
        }
    }
    for (line, stmt) in statements {
        let (keyword, rest) = stmt.split_once(|c: char| c.is_whitespace()).unwrap_or((stmt.as_str(), ""));
        let err = |reason: String| SchemaParseError { line, reason };
        let tokens = tokenize(rest).map_err(err)?;
        match keyword.to_ascii_lowercase().as_str() {
            "attributetype" | "attributetypes" => out.attribute_types.push(parse_attribute_type(&tokens).map_err(err)?),
            "objectclass" | "objectclasses" => out.object_classes.push(parse_object_class(&tokens).map_err(err)?),
            other => return Err(err(format!("unknown directive '{other}'"))),
        }
    }
    Ok(out)
}

#[cfg(test)]
/// Parse a single definition as found in a subschema attribute value
/// (`( 2.5.4.3 NAME 'cn' … )`), for attribute types.
pub fn parse_attribute_type_value(s: &str) -> Result<AttributeType, String> {
    parse_attribute_type(&tokenize(s)?)
}

#[derive(Debug, Clone, PartialEq)]
enum Tok {
    Open,
    Close,
    Dollar,
    Quoted(String),
    Word(String),
}

fn tokenize(s: &str) -> Result<Vec<Tok>, String> {
    let mut toks = Vec::new();
    let mut chars = s.chars().peekable();
    while let Some(&c) = chars.peek() {
        match c {
            c if c.is_whitespace() => {
                chars.next();
            }
            '(' => {
                chars.next();
                toks.push(Tok::Open);
            }
            ')' => {
                chars.next();
                toks.push(Tok::Close);
            }
            '$' => {
                chars.next();
                toks.push(Tok::Dollar);
            }
            '\'' => {
                chars.next();
                let mut v = String::new();
                loop {
                    match chars.next() {
                        Some('\'') => break,
                        Some('\\') => {
                            // RFC 4512 §4.1 qdstring escapes: \27 for ', \5C for \.
                            let a = chars.next();
                            let b = chars.next();
                            match (a, b) {
                                (Some('2'), Some('7')) => v.push('\''),
                                (Some('5'), Some('c' | 'C')) => v.push('\\'),
                                _ => return Err("bad escape in quoted string".into()),
                            }
                        }
                        Some(ch) => v.push(ch),
                        None => return Err("unterminated quoted string".into()),
                    }
                }
                toks.push(Tok::Quoted(v));
            }
            _ => {
                let mut w = String::new();
                while let Some(&ch) = chars.peek() {
                    if ch.is_whitespace() || ch == '(' || ch == ')' || ch == '$' || ch == '\'' {
                        break;
                    }
                    w.push(ch);
                    chars.next();
                }
                toks.push(Tok::Word(w));
            }
        }
    }
    Ok(toks)
}

/// Cursor over a definition's tokens between its outer parentheses.
struct Def<'a> {
    toks: &'a [Tok],
    pos: usize,
}

impl<'a> Def<'a> {
    fn new(toks: &'a [Tok]) -> Result<(Self, String), String> {
        match (toks.first(), toks.last()) {
            (Some(Tok::Open), Some(Tok::Close)) if toks.len() >= 3 => {}
            _ => return Err("definition must be enclosed in parentheses".into()),
        }
        let inner = &toks[1..toks.len() - 1];
        let mut d = Def { toks: inner, pos: 0 };
        let oid = d.word()?;
        if !is_oid(&oid) {
            return Err(format!("'{oid}' is not a numeric OID"));
        }
        Ok((d, oid))
    }

    fn next(&mut self) -> Option<&'a Tok> {
        let t = self.toks.get(self.pos);
        self.pos += 1;
        t
    }

    fn word(&mut self) -> Result<String, String> {
        match self.next() {
            Some(Tok::Word(w)) => Ok(w.clone()),
            Some(Tok::Quoted(w)) => Ok(w.clone()),
            other => Err(format!("expected a word, found {other:?}")),
        }
    }

    fn quoted(&mut self) -> Result<String, String> {
        match self.next() {
            Some(Tok::Quoted(w)) => Ok(w.clone()),
            other => Err(format!("expected a quoted string, found {other:?}")),
        }
    }

    /// `'a'` or `( 'a' 'b' )`
    fn qdescrs(&mut self) -> Result<Vec<String>, String> {
        match self.next() {
            Some(Tok::Quoted(w)) => Ok(vec![w.clone()]),
            Some(Tok::Open) => {
                let mut v = Vec::new();
                loop {
                    match self.next() {
                        Some(Tok::Quoted(w)) => v.push(w.clone()),
                        Some(Tok::Close) => return Ok(v),
                        other => return Err(format!("bad name list near {other:?}")),
                    }
                }
            }
            other => Err(format!("expected names, found {other:?}")),
        }
    }

    /// `oid` or `( oid $ oid … )`
    fn oids(&mut self) -> Result<Vec<String>, String> {
        match self.next() {
            Some(Tok::Word(w)) | Some(Tok::Quoted(w)) => Ok(vec![w.clone()]),
            Some(Tok::Open) => {
                let mut v = Vec::new();
                loop {
                    match self.next() {
                        Some(Tok::Word(w)) | Some(Tok::Quoted(w)) => v.push(w.clone()),
                        Some(Tok::Dollar) => {}
                        Some(Tok::Close) => return Ok(v),
                        other => return Err(format!("bad OID list near {other:?}")),
                    }
                }
            }
            other => Err(format!("expected OIDs, found {other:?}")),
        }
    }

    /// Skip an extension's value (`X-FOO 'a'` or `X-FOO ( 'a' 'b' )`).
    fn skip_extension(&mut self) -> Result<(), String> {
        self.qdescrs().map(|_| ())
    }
}

fn is_oid(s: &str) -> bool {
    !s.is_empty() && s.split('.').all(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()))
}

fn parse_attribute_type(toks: &[Tok]) -> Result<AttributeType, String> {
    let (mut d, oid) = Def::new(toks)?;
    let mut at = AttributeType { oid, ..AttributeType::default() };
    while let Some(t) = d.next() {
        let Tok::Word(kw) = t else {
            return Err(format!("unexpected {t:?}"));
        };
        match kw.to_ascii_uppercase().as_str() {
            "NAME" => at.names = d.qdescrs()?,
            "DESC" => at.desc = Some(d.quoted()?),
            "OBSOLETE" => at.obsolete = true,
            "SUP" => at.sup = Some(d.word()?),
            "EQUALITY" => at.equality = Some(d.word()?),
            "ORDERING" => at.ordering = Some(d.word()?),
            "SUBSTR" => at.substr = Some(d.word()?),
            "SYNTAX" => {
                let s = d.word()?;
                // `oid{len}`: the bound is advisory (RFC 4512 §4.1.2).
                let (oid, len) = match s.split_once('{') {
                    Some((o, l)) => (o.to_string(), l.trim_end_matches('}').parse().ok()),
                    None => (s, None),
                };
                at.syntax = Some(oid);
                at.syntax_len = len;
            }
            "SINGLE-VALUE" => at.single_value = true,
            "COLLECTIVE" => at.collective = true,
            "NO-USER-MODIFICATION" => at.no_user_modification = true,
            "USAGE" => {
                at.usage = match d.word()?.as_str() {
                    "userApplications" => Usage::UserApplications,
                    "directoryOperation" => Usage::DirectoryOperation,
                    "distributedOperation" => Usage::DistributedOperation,
                    "dSAOperation" => Usage::DsaOperation,
                    other => return Err(format!("unknown USAGE '{other}'")),
                }
            }
            x if x.starts_with("X-") => d.skip_extension()?,
            other => return Err(format!("unknown attribute type keyword '{other}'")),
        }
    }
    if at.sup.is_none() && at.syntax.is_none() {
        return Err(format!("attribute type {} has neither SUP nor SYNTAX", at.oid));
    }
    Ok(at)
}

fn parse_object_class(toks: &[Tok]) -> Result<ObjectClass, String> {
    let (mut d, oid) = Def::new(toks)?;
    let mut oc = ObjectClass { oid, ..ObjectClass::default() };
    while let Some(t) = d.next() {
        let Tok::Word(kw) = t else {
            return Err(format!("unexpected {t:?}"));
        };
        match kw.to_ascii_uppercase().as_str() {
            "NAME" => oc.names = d.qdescrs()?,
            "DESC" => oc.desc = Some(d.quoted()?),
            "OBSOLETE" => oc.obsolete = true,
            "SUP" => oc.sup = d.oids()?,
            "ABSTRACT" => oc.kind = ClassKind::Abstract,
            "STRUCTURAL" => oc.kind = ClassKind::Structural,
            "AUXILIARY" => oc.kind = ClassKind::Auxiliary,
            "MUST" => oc.must = d.oids()?,
            "MAY" => oc.may = d.oids()?,
            x if x.starts_with("X-") => d.skip_extension()?,
            other => return Err(format!("unknown object class keyword '{other}'")),
        }
    }
    Ok(oc)
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::indexing_slicing)]
mod tests {
    use super::*;

    #[test]
    fn parses_multiline_definitions() {
        let f = parse_schema_file(
            "# comment\nattributetype ( 2.5.4.41 NAME 'name'\n  EQUALITY caseIgnoreMatch\n  SUBSTR caseIgnoreSubstringsMatch\n  SYNTAX 1.3.6.1.4.1.1466.115.121.1.15{32768} )\n\nattributetype ( 2.5.4.3 NAME ( 'cn' 'commonName' ) SUP name )\nobjectclass ( 2.5.6.6 NAME 'person' SUP top STRUCTURAL MUST ( sn $ cn ) MAY ( userPassword $ description ) )\n",
        )
        .unwrap();
        assert_eq!(f.attribute_types.len(), 2);
        assert_eq!(f.attribute_types[0].syntax_len, Some(32768));
        assert_eq!(f.attribute_types[1].names, vec!["cn", "commonName"]);
        assert_eq!(f.object_classes[0].must, vec!["sn", "cn"]);
        assert_eq!(f.object_classes[0].kind, ClassKind::Structural);
    }

    #[test]
    fn reports_the_line_of_a_bad_definition() {
        let e = parse_schema_file("\n\nattributetype ( 2.5.4.3 NAME 'cn' BOGUS )\n").unwrap_err();
        assert_eq!(e.line, 3);
        let e = parse_schema_file("attributetype ( notanoid NAME 'x' SYNTAX 1.2 )").unwrap_err();
        assert!(e.reason.contains("numeric OID"));
    }
}
