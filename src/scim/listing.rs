//! A list request, start to end: the filter lowered through the mapping
//! table and answered by the directory's indexes, the candidates it leaves
//! undecided evaluated on their documents, then sorted, paged (by index or
//! by cursor) and projected. Only what a response shows is rendered when
//! the directory's answer is exact and unsorted.

use axum::http::StatusCode;
use axum::response::Response;
use serde_json::Value;

use super::filter::{self, Context, Lowered};
use super::handlers::{ResourceType, entries, entries_with, of_type};
use super::query::{self, ListParams, Listed, Paging};
use super::{Caller, ScimContext, ScimError, evaluate, lookup, scim_json};
use crate::directory::{Dn, Filter};

/// Lower a list's filter for a resource type, as the caller sees ids.
pub(super) fn lowered<R: ResourceType>(
    ctx: &ScimContext,
    caller: &Caller,
    text: Option<&str>,
) -> Result<(Lowered, Option<scim_v2::filter::Filter>), ScimError> {
    let dir = &ctx.directory;
    let Some(text) = text else { return Ok((Lowered { filter: Filter::And(Vec::new()), exact: true }, None)) };
    let parsed = filter::parse(text)?;
    let dn_of = |id: &str| lookup::dn_of(dir, caller, id).ok().flatten().map(|(dn, _)| dn.to_string());
    let application_dn = |app: &str| lookup::application_dn(dir, app).to_string();
    let lctx = Context { schema: dir.schema(), dn_of: &dn_of, application_dn: &application_dn };
    Ok((filter::lower(R::MAPPING, &parsed, &lctx)?, Some(parsed)))
}

pub(super) fn list<R: ResourceType>(
    ctx: &ScimContext,
    caller: &Caller,
    params: &ListParams,
) -> Result<Response, ScimError> {
    let dir = &ctx.directory;
    let (lowered, parsed) = lowered::<R>(ctx, caller, params.filter.as_deref())?;
    let sort = params.sort_path(R::MAPPING)?;
    let opened = match &params.paging {
        Paging::Cursor(Some(c)) => {
            let o = ctx.cursors.open(c, &params.digest(R::MAPPING, &caller.1.dn))?;
            // RFC 9865 §2: the pages of one listing have one size.
            if o.count != params.count {
                return Err(ScimError::new(
                    StatusCode::BAD_REQUEST,
                    Some("invalidCount"),
                    format!("count must stay {} for the pages of this cursor", o.count),
                ));
            }
            Some((o.position, o.direction))
        }
        _ => None,
    };
    let cursor_paging = matches!(params.paging, Paging::Cursor(_));
    let digest = params.digest(R::MAPPING, &caller.1.dn);
    if lowered.exact && sort.is_none() {
        // The directory's answer is the list: its matches are gathered with
        // their ids alone, and only the page's entries are read whole and
        // rendered (a page of 100 of 30,000 agents reads 100 entries).
        let ids_only = entries_with::<R>(dir, caller, lowered.filter.clone(), &["entryUUID"])?;
        let mut listed: Vec<Listed<Dn>> = ids_only
            .into_iter()
            .map(|e| {
                let id = e.first_str("entryUUID").unwrap_or_default().to_string();
                Listed { position: (None, id), item: e.dn }
            })
            .collect();
        if cursor_paging {
            query::sort_positions(&mut listed, params.descending);
        }
        let total = listed.len();
        let (range, next, previous) = page_range(ctx, params, &listed, opened, &digest);
        let mut page = Vec::with_capacity(range.len());
        let still_matches = of_type::<R>(lowered.filter);
        for l in listed.drain(range) {
            // Gone or changed since it was listed: left out of its page.
            if let Some(entry) = lookup::reread(dir, caller, &l.item, still_matches.clone())? {
                page.push(params.projection.apply(R::MAPPING, R::render(dir, caller, &entry, &params.projection)));
            }
        }
        return Ok(scim_json(StatusCode::OK, query::list_response(page, &params.paging, total, next, previous)));
    }
    // A filter the directory could not decide, or a sort: every document rendered.
    let found = entries::<R>(dir, caller, lowered.filter)?;
    // A filter evaluated on the documents sees them whole (a filter on members).
    let whole = super::query::Projection::default();
    let render_with = if lowered.exact { &params.projection } else { &whole };
    let mut listed: Vec<Listed<Value>> = Vec::with_capacity(found.len());
    for entry in found {
        let doc = R::render(dir, caller, &entry, render_with);
        if let (false, Some(f)) = (lowered.exact, &parsed)
            && !evaluate::matches(R::MAPPING, &doc, f)
        {
            continue;
        }
        let key = sort.as_ref().and_then(|p| evaluate::sort_key(&doc, p));
        let id = entry.first_str("entryUUID").unwrap_or_default().to_string();
        listed.push(Listed { position: (key, id), item: doc });
    }
    let total = listed.len();
    if sort.is_some() || cursor_paging {
        query::sort_positions(&mut listed, params.descending);
    }
    let (range, next, previous) = page_range(ctx, params, &listed, opened, &digest);
    let page: Vec<Value> = listed.drain(range).map(|l| params.projection.apply(R::MAPPING, l.item)).collect();
    Ok(scim_json(StatusCode::OK, query::list_response(page, &params.paging, total, next, previous)))
}

/// The part of a listing a page shows: from `startIndex` (RFC 7644
/// §3.4.2.4), or after a cursor (RFC 9865) with the cursors to the next and
/// previous pages.
fn page_range<T>(
    ctx: &ScimContext,
    params: &ListParams,
    listed: &[Listed<T>],
    opened: Option<(super::cursor::Position, super::cursor::Direction)>,
    digest: &str,
) -> (std::ops::Range<usize>, Option<String>, Option<String>) {
    match &params.paging {
        Paging::Index { start } => {
            let first = (start - 1).min(listed.len());
            (first..(first + params.count).min(listed.len()), None, None)
        }
        Paging::Cursor(_) => query::cursor_page(listed, opened, params.count, params.descending, &ctx.cursors, digest),
    }
}

/// The documents of one resource type a root search (`POST /.search`)
/// returns, already projected, with their positions; `Err` when the filter
/// or the sort does not fit this type.
fn documents<R: ResourceType>(
    ctx: &ScimContext,
    caller: &Caller,
    params: &ListParams,
) -> Result<Vec<Listed<Value>>, ScimError> {
    let dir = &ctx.directory;
    let (lowered, parsed) = lowered::<R>(ctx, caller, params.filter.as_deref())?;
    let sort = params.sort_path(R::MAPPING)?;
    let whole = super::query::Projection::default();
    let mut out = Vec::new();
    for entry in entries::<R>(dir, caller, lowered.filter)? {
        let doc = R::render(dir, caller, &entry, &whole);
        if let (false, Some(f)) = (lowered.exact, &parsed)
            && !evaluate::matches(R::MAPPING, &doc, f)
        {
            continue;
        }
        let key = sort.as_ref().and_then(|p| evaluate::sort_key(&doc, p));
        let id = entry.first_str("entryUUID").unwrap_or_default().to_string();
        out.push(Listed { position: (key, id), item: params.projection.apply(R::MAPPING, doc) });
    }
    Ok(out)
}

/// RFC 7644 §3.4.3: a search at the service provider's root, over every
/// resource type. A filter or sort that names nothing of one type leaves
/// that type out; one that fits no type is refused.
pub(super) fn search_all(ctx: &ScimContext, caller: &Caller, params: &ListParams) -> Result<Response, ScimError> {
    use super::handlers::{Groups, Users};
    let (users, groups) = (documents::<Users>(ctx, caller, params), documents::<Groups>(ctx, caller, params));
    let mut listed = match (users, groups) {
        (Err(e), Err(_)) => return Err(e),
        (u, g) => u.unwrap_or_default().into_iter().chain(g.unwrap_or_default()).collect::<Vec<_>>(),
    };
    query::sort_positions(&mut listed, params.descending);
    let total = listed.len();
    let digest = params.digest(&super::mapping::user::USERS, &format!("/.search {}", caller.1.dn));
    let (range, next, previous) = match &params.paging {
        Paging::Index { start } => {
            let first = (start - 1).min(total);
            (first..(first + params.count).min(total), None, None)
        }
        Paging::Cursor(c) => {
            let opened = match c {
                Some(c) => {
                    let o = ctx.cursors.open(c, &digest)?;
                    Some((o.position, o.direction))
                }
                None => None,
            };
            query::cursor_page(&listed, opened, params.count, params.descending, &ctx.cursors, &digest)
        }
    };
    let page: Vec<Value> = listed.drain(range).map(|l| l.item).collect();
    Ok(scim_json(StatusCode::OK, query::list_response(page, &params.paging, total, next, previous)))
}
