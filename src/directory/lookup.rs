//! Reading given entries by DN, as an identity sees them: the members of a
//! group, the groups of a user, a manager. One snapshot and one access
//! check set for the lot, and only the attributes asked for decoded, so
//! that rendering a large group does not cost a search per member.

use super::*;

impl Directory {
    /// Each DN's entry with the attributes asked for (stored ones), or `None`
    /// where there is none or the identity may not see it.
    pub fn read_many(&self, who: &Principal, dns: &[&str], attrs: &[&str]) -> Result<Vec<Option<Entry>>> {
        let r = self.store.read()?;
        let access = self.access(who);
        let mut wanted: Vec<String> =
            lnames_with_subtypes(&self.schema, &attrs.iter().map(|a| a.to_string()).collect::<Vec<_>>());
        wanted.extend(self.policy_attrs.iter().cloned());
        let keep = |stored: &[u8]| wanted.iter().any(|n| n.as_bytes().eq_ignore_ascii_case(stored));
        let mut out = Vec::with_capacity(dns.len());
        for text in dns {
            let Some(ndn) = Dn::parse(text).ok().and_then(|dn| self.normalize_dn(&dn).ok()) else {
                out.push(None);
                continue;
            };
            let Some(id) = r.id_of_dn(&ndn)? else {
                out.push(None);
                continue;
            };
            let Some(mut rec) = r.entry_keeping(id, &keep)? else {
                out.push(None);
                continue;
            };
            let mut entry = self.take_entry(&mut rec)?;
            let Some(mask) = access.readable(&r, &ndn, &entry)? else {
                out.push(None);
                continue;
            };
            entry.attrs.retain(|a| {
                self.schema.attr_id(&a.name).is_some_and(|aid| {
                    let lname = &self.schema.attr(aid).lname;
                    mask.allows(lname) && attrs.iter().any(|w| self.schema.attr_id(w) == Some(aid))
                })
            });
            out.push(Some(entry));
        }
        Ok(out)
    }
}
