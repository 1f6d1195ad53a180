//! Reading given entries by DN or by entryUUID, as an identity sees them:
//! the members of a group, the groups of a user, a manager, a SCIM id. One
//! snapshot and one access check set for the lot, and only the attributes
//! asked for decoded, so that rendering a large group does not cost a
//! search per member.

use super::*;
use crate::store::ReadTx;

/// What one lookup reads of each entry.
struct Wanted<'a> {
    /// Lower-case names decoded: those asked for and those the policy's rule filters test.
    decoded: Vec<String>,
    attrs: &'a [&'a str],
}

impl Directory {
    fn wanted<'a>(&self, attrs: &'a [&'a str]) -> Wanted<'a> {
        let names: Vec<String> = attrs.iter().map(|a| a.to_string()).collect();
        let mut decoded = lnames_with_subtypes(&self.schema, &names);
        decoded.extend(self.policy_attrs.iter().cloned());
        Wanted { decoded, attrs }
    }

    /// The entry `id` with the attributes asked for, if `access` lets it be seen.
    fn read_id(&self, r: &ReadTx, access: &Access<'_>, id: u64, wanted: &Wanted<'_>) -> Result<Option<Entry>> {
        let all = wanted.attrs.contains(&"*");
        let keep = |stored: &[u8]| all || wanted.decoded.iter().any(|n| n.as_bytes().eq_ignore_ascii_case(stored));
        let Some(mut rec) = r.entry_keeping(id, &keep)? else { return Ok(None) };
        let mut entry = self.take_entry(&mut rec)?;
        let Some(mask) = access.readable(r, &rec.ndn, &entry)? else { return Ok(None) };
        if all && mask.is_everything() {
            return Ok(Some(entry));
        }
        entry.attrs.retain(|a| {
            self.schema.attr_id(&a.name).is_some_and(|aid| {
                mask.allows(&self.schema.attr(aid).lname)
                    && (all || wanted.attrs.iter().any(|w| self.schema.attr_id(w) == Some(aid)))
            })
        });
        Ok(Some(entry))
    }

    /// The entry with this entryUUID (a SCIM id) and the attributes asked
    /// for (`*`: every stored one it may read), if the identity may see it;
    /// found through the UUID table.
    pub fn read_by_uuid(&self, who: &Principal, uuid: &str, attrs: &[&str]) -> Result<Option<Entry>> {
        let Ok(u) = uuid::Uuid::try_parse(uuid.trim()) else { return Ok(None) };
        let r = self.store.read()?;
        let Some(id) = r.id_of_uuid(u.as_bytes())? else { return Ok(None) };
        let access = self.access(who);
        self.read_id(&r, &access, id, &self.wanted(attrs))
    }

    /// Each DN's entry with the attributes asked for (stored ones), or `None`
    /// where there is none or the identity may not see it.
    pub fn read_many(&self, who: &Principal, dns: &[&str], attrs: &[&str]) -> Result<Vec<Option<Entry>>> {
        let r = self.store.read()?;
        let access = self.access(who);
        let wanted = self.wanted(attrs);
        let mut out = Vec::with_capacity(dns.len());
        for text in dns {
            let id = match Dn::parse(text).ok().and_then(|dn| self.normalize_dn(&dn).ok()) {
                Some(ndn) => r.id_of_dn(&ndn)?,
                None => None,
            };
            out.push(match id {
                Some(id) => self.read_id(&r, &access, id, &wanted)?,
                None => None,
            });
        }
        Ok(out)
    }
}
