//! What the helpdesk pages share (tickets, requesters, blocklist, webhooks, inbound
//! settings, a requester's own tickets): paging of a listing, dates, turning a form into
//! the API's body type (through serde, so the API's own validation runs), and the answer
//! a staff page gives a requester. It decides no permission: the API handlers do.

use super::render::problem_page;
use super::Viewer;
use crate::api::Problem;
use axum::http::StatusCode;
use axum::response::Response;
use serde::de::DeserializeOwned;

/// Rows on one page of a listing.
pub const PAGE_SIZE: usize = 50;

/// Where a listing stands: its page, and the links to the pages beside it.
pub struct Pager {
    pub page: usize,
    pub pages: usize,
    pub total: usize,
    pub prev: Option<String>,
    pub next: Option<String>,
}

/// The rows of page `page` (from 1) of `items`; the links keep `query` (the listing's
/// filters, already urlencoded, without `page`).
pub fn paginate<T>(items: Vec<T>, page: usize, path: &str, query: &str) -> (Vec<T>, Pager) {
    let total = items.len();
    let pages = total.div_ceil(PAGE_SIZE).max(1);
    let page = page.clamp(1, pages);
    let link = |n: usize| match query.is_empty() {
        true => format!("{path}?page={n}"),
        false => format!("{path}?{query}&page={n}"),
    };
    let rows = items
        .into_iter()
        .skip((page - 1) * PAGE_SIZE)
        .take(PAGE_SIZE)
        .collect();
    let pager = Pager {
        page,
        pages,
        total,
        prev: (page > 1).then(|| link(page - 1)),
        next: (page < pages).then(|| link(page + 1)),
    };
    (rows, pager)
}

/// The page number a query asked for (1 when absent or not a number).
pub fn page_number(text: &str) -> usize {
    text.trim().parse().unwrap_or(1)
}

/// `fields` urlencoded, leaving out empty values (a listing's filters in its links).
pub fn query_string(fields: &[(&str, &str)]) -> String {
    let kept: Vec<_> = fields.iter().filter(|(_, v)| !v.is_empty()).collect();
    serde_urlencoded::to_string(kept).unwrap_or_default()
}

pub use super::render::when;

/// The API body `T` from the JSON a form was turned into; what does not fit is a 422
/// (the API's own checks run on what does).
pub fn body_of<T: DeserializeOwned>(value: serde_json::Value) -> Result<T, Problem> {
    serde_json::from_value(value).map_err(|e| {
        Problem::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            format!("the form does not fit: {e}"),
        )
    })
}

/// A number typed in a form: `None` when empty, 422 naming `field` when not a number.
pub fn number(field: &str, text: &str) -> Result<Option<u64>, Problem> {
    match text.trim() {
        "" => Ok(None),
        n => n
            .parse()
            .map(Some)
            .map_err(|_| Problem::invalid(field, "a number")),
    }
}

/// Staff pages are not a requester's: a requester is sent a 403 that points to their own
/// tickets (what they may see is the API's `me/tickets`).
pub fn staff_only(viewer: &Viewer) -> Option<Response> {
    viewer.is_requester().then(|| {
        let problem = Problem::new(
            StatusCode::FORBIDDEN,
            "this page is for staff; your tickets are under My tickets",
        );
        problem_page(viewer, &problem)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pages_keep_the_filters_and_stay_in_range() {
        let (rows, pager) = paginate((0..120).collect(), 9, "/console/x", "q=a");
        assert_eq!(rows, (100..120).collect::<Vec<_>>());
        assert_eq!((pager.page, pager.pages, pager.total), (3, 3, 120));
        assert_eq!(pager.prev.as_deref(), Some("/console/x?q=a&page=2"));
        assert!(pager.next.is_none());
        let (_, pager) = paginate(Vec::<u8>::new(), 0, "/console/x", "");
        assert_eq!((pager.page, pager.pages), (1, 1));
    }

    #[test]
    fn dates_are_utc_minutes() {
        assert_eq!(when(0u64), "-", "no time");
        assert_eq!(when(1_796_517_000u64), "2026-12-06 00:30 UTC");
    }
}
