//! Rename and move (RFC 4511 §4.9) and referential integrity: every DN
//! value (member, uniqueMember, manager) follows the entry it names when it
//! is renamed or moved, or goes with it when it is deleted, in the same
//! transaction.

use super::schema::syntax::now_generalized;
use super::write::EMPTY_GROUP_MEMBER;
use super::*;
use crate::store::WriteTx;

impl Directory {
    pub(super) fn rename_in(
        &self,
        w: &mut WriteTx,
        actor: &Actor,
        dn: &Dn,
        new_rdn: &Rdn,
        delete_old_rdn: bool,
        new_superior: Option<&Dn>,
    ) -> Result<()> {
        let ndn = self.normalize_dn(dn)?;
        let Some(id) = w.id_of_dn(&ndn)? else {
            return Err(self.no_such_object_for(&self.access(&actor.principal).uncached(), w, dn));
        };
        let Some(rec) = w.entry(id)? else {
            return Err(self.no_such_object_for(&self.access(&actor.principal).uncached(), w, dn));
        };
        let access = self.access(&actor.principal).uncached();
        let old_entry = self.to_entry(&rec)?;
        if !access.unrestricted() {
            if access.readable(w, &ndn, &old_entry)?.is_none() {
                return Err(self.no_such_object_for(&access, w, dn));
            }
            access.check_delete(w, &ndn, &old_entry)?;
        }
        if ndn == self.suffix_ndn {
            return Err(DirectoryError::Unwilling("the suffix entry cannot be renamed".into()));
        }
        let new_parent_dn = new_superior.cloned().unwrap_or_else(|| dn.parent());
        let new_parent_ndn = self.normalize_dn(&new_parent_dn)?;
        let Some(new_parent) = w.id_of_dn(&new_parent_ndn)? else {
            let target = new_parent_dn.child(new_rdn.clone());
            return Err(if access.unrestricted() { self.no_such_object(w, &target) } else { self.hidden(&target) });
        };
        if !access.unrestricted() {
            let Some(prec) = w.entry(new_parent)? else { return Err(self.hidden(&new_parent_dn)) };
            if !access.browsable(w, &new_parent_ndn, &self.to_entry(&prec)?)? {
                return Err(self.hidden(&new_parent_dn.child(new_rdn.clone())));
            }
        }
        if dn::is_under(&new_parent_ndn, &ndn) {
            return Err(DirectoryError::Unwilling(format!("cannot move {dn} below itself")));
        }
        let new_dn = new_parent_dn.child(new_rdn.clone());
        let new_ndn = self.normalize_dn(&new_dn)?;
        if new_ndn != ndn && w.id_of_dn(&new_ndn)?.is_some() {
            return Err(DirectoryError::AlreadyExists(new_dn.to_string()));
        }

        // The entry itself: new RDN values in, old ones out if asked.
        let old = self.to_entry(&rec)?;
        let mut new = old.clone();
        new.dn = new_dn.clone();
        for ava in &new_rdn.avas {
            let (_, attr) = self.schema.attr_of(&ava.attr)?;
            let want = self.schema.normalize_eq(attr, ava.value.as_bytes()).map_err(DirectoryError::InvalidDn)?;
            let has = new.get(&attr.name).is_some_and(|a| {
                a.values.iter().any(|v| self.schema.normalize_eq(attr, v).ok().as_ref() == Some(&want))
            });
            if !has {
                new.add_values(&attr.name.clone(), [ava.value.clone().into_bytes()]);
            }
        }
        if delete_old_rdn && let Some(old_rdn) = dn.rdn() {
            for ava in &old_rdn.avas {
                let (_, attr) = self.schema.attr_of(&ava.attr)?;
                let gone = self.schema.normalize_eq(attr, ava.value.as_bytes()).ok();
                let kept_by_new_rdn = new_rdn.avas.iter().any(|n| {
                    self.schema.attr_id(&n.attr) == self.schema.attr_id(&ava.attr)
                        && self.schema.normalize_eq(attr, n.value.as_bytes()).ok() == gone
                });
                if kept_by_new_rdn {
                    continue;
                }
                if let Some(a) = new.get_mut(&attr.name) {
                    a.values.retain(|v| self.schema.normalize_eq(attr, v).ok() != gone);
                    if a.values.is_empty() {
                        new.remove(&attr.name.clone());
                    }
                }
            }
        }
        self.schema.check_entry(&mut new)?;
        access.check_add(w, &new_ndn, &new)?;
        self.check_uid_unique(w, &new, Some(id))?;
        if rec.parent != new_parent {
            self.check_external_id_unique(w, &new, Some(id), new_parent)?;
        }
        new.set("modifyTimestamp", vec![now_generalized().into_bytes()]);
        super::request::bump_revision(&mut new);
        new.set("modifiersName", vec![actor.dn.clone().into_bytes()]);
        self.reindex(w, id, &old, &new)?;
        w.delete_dn(&ndn)?;
        w.put_dn(&new_ndn, id)?;
        if rec.parent != new_parent {
            w.remove_child(rec.parent, id)?;
            w.add_child(new_parent, id)?;
        }
        w.put_encoded_entry(id, self.record(&new, &new_ndn, new_parent))?;
        // A replica whose search held the old DN and not the new one must
        // lose the entry (RFC 4533 §3.4: it is gone from its content).
        log_departure(w, &old, &ndn)?;
        self.update_references(w, &ndn, Some(&new_dn))?;

        // Descendants keep their RDNs under the new base.
        let depth = dn.rdns().len();
        let mut stack = w.children(id)?;
        while let Some(child) = stack.pop() {
            stack.extend(w.children(child)?);
            let Some(crec) = w.entry(child)? else { continue };
            let cdn = Dn::parse(&crec.dn)?;
            let moved = cdn.rebase(depth, &new_dn);
            let moved_ndn = self.normalize_dn(&moved)?;
            w.delete_dn(&crec.ndn)?;
            w.put_dn(&moved_ndn, child)?;
            let mut centry = self.to_entry(&crec)?;
            centry.dn = moved.clone();
            super::request::bump_revision(&mut centry);
            w.put_encoded_entry(child, self.record(&centry, &moved_ndn, crec.parent))?;
            log_departure(w, &centry, &crec.ndn)?;
            self.update_references(w, &crec.ndn, Some(&moved))?;
        }
        self.log(w, actor, "modrdn", dn, &ndn, vec![new_dn.to_string()])?;
        Ok(())
    }

    /// Referential integrity: every member / uniqueMember / manager value naming
    /// `old_ndn` follows the entry to `new_dn`, or is removed with it.
    pub(super) fn update_references(&self, w: &mut WriteTx, old_ndn: &str, new_dn: Option<&Dn>) -> Result<()> {
        for attr_name in REFERENCE_ATTRS {
            let (_, attr) = self.schema.attr_of(attr_name)?;
            let key = index_key(IndexKind::Equality, &attr.lname, old_ndn.as_bytes());
            for rid in w.postings(&key)? {
                let Some(rrec) = w.entry(rid)? else { continue };
                let old = self.to_entry(&rrec)?;
                let mut new = old.clone();
                if let Some(a) = new.get_mut(&attr.name) {
                    let mut replaced = Vec::with_capacity(a.values.len());
                    for v in a.values.drain(..) {
                        let matches = self.schema.normalize_eq(attr, &v).is_ok_and(|n| n == old_ndn.as_bytes());
                        match (matches, new_dn) {
                            (false, _) => replaced.push(v),
                            (true, Some(d)) => replaced.push(d.to_string().into_bytes()),
                            (true, None) => {}
                        }
                    }
                    a.values = replaced;
                }
                // groupOfNames / groupOfUniqueNames must keep a member: a group
                // that loses its last one keeps the empty DN, the placeholder
                // OpenLDAP's refint uses too (`refint_nothing`). A manager just goes.
                if new.get(&attr.name).is_some_and(|a| a.values.is_empty()) {
                    if attr.lname == "manager" {
                        new.remove(&attr.name.clone());
                    } else {
                        new.set(&attr.name.clone(), vec![EMPTY_GROUP_MEMBER.as_bytes().to_vec()]);
                    }
                }
                super::request::bump_revision(&mut new);
                self.reindex(w, rid, &old, &new)?;
                w.put_encoded_entry(rid, self.record(&new, &rrec.ndn, rrec.parent))?;
            }
        }
        Ok(())
    }
}

/// Record in the deletion log that the entry left `old_ndn` (see
/// `WriteTx::log_departure`).
fn log_departure(w: &mut WriteTx, entry: &Entry, old_ndn: &str) -> Result<()> {
    if let Some(u) = entry.first_str("entryUUID").and_then(|u| uuid::Uuid::try_parse(u).ok()) {
        w.log_departure(u.as_bytes(), old_ndn)?;
    }
    Ok(())
}
