//! Entries as the directory core sees them: a DN and attributes whose names are
//! the schema's primary names (`cn`, never `commonName`), values as bytes.

use super::dn::Dn;

/// One attribute of an entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Attribute {
    /// The schema's primary name for the type.
    pub name: String,
    pub values: Vec<Vec<u8>>,
}

/// A directory entry.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Entry {
    pub dn: Dn,
    pub attrs: Vec<Attribute>,
}

impl Entry {
    pub fn new(dn: Dn) -> Entry {
        Entry { dn, attrs: Vec::new() }
    }

    pub fn get(&self, name: &str) -> Option<&Attribute> {
        self.attrs.iter().find(|a| a.name.eq_ignore_ascii_case(name))
    }

    pub fn get_mut(&mut self, name: &str) -> Option<&mut Attribute> {
        self.attrs.iter_mut().find(|a| a.name.eq_ignore_ascii_case(name))
    }

    /// The first value as text, when it is UTF-8.
    pub fn first_str(&self, name: &str) -> Option<&str> {
        self.get(name).and_then(|a| a.values.first()).and_then(|v| std::str::from_utf8(v).ok())
    }

    /// Append values, creating the attribute if needed.
    pub fn add_values(&mut self, name: &str, values: impl IntoIterator<Item = Vec<u8>>) {
        match self.get_mut(name) {
            Some(a) => a.values.extend(values),
            None => self.attrs.push(Attribute { name: name.to_string(), values: values.into_iter().collect() }),
        }
    }

    /// Replace all values (an empty list removes the attribute).
    pub fn set(&mut self, name: &str, values: Vec<Vec<u8>>) {
        self.remove(name);
        if !values.is_empty() {
            self.attrs.push(Attribute { name: name.to_string(), values });
        }
    }

    pub fn remove(&mut self, name: &str) -> Option<Attribute> {
        let i = self.attrs.iter().position(|a| a.name.eq_ignore_ascii_case(name))?;
        Some(self.attrs.remove(i))
    }

    /// Builder for tests and seed data: `Entry::build(dn).with("cn", ["x"])`.
    pub fn with<S: AsRef<str>>(mut self, name: &str, values: impl IntoIterator<Item = S>) -> Entry {
        self.add_values(name, values.into_iter().map(|v| v.as_ref().as_bytes().to_vec()));
        self
    }
}

/// RFC 4511 §4.6 modification kinds, plus RFC 4525 increment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ModOp {
    Add,
    Delete,
    Replace,
    Increment,
}

/// One change of a modify operation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Modification {
    pub op: ModOp,
    /// The attribute description as the client gave it.
    pub attr: String,
    pub values: Vec<Vec<u8>>,
}

impl Modification {
    pub fn new<S: AsRef<str>>(op: ModOp, attr: &str, values: impl IntoIterator<Item = S>) -> Modification {
        Modification {
            op,
            attr: attr.to_string(),
            values: values.into_iter().map(|v| v.as_ref().as_bytes().to_vec()).collect(),
        }
    }
}
