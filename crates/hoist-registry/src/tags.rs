//! Tag listing: `GET /v2/<name>/tags/list`, following `Link: <...>; rel="next"` pages.
//!
//! The result is sorted and without duplicates whatever the registry sends (registry:2 ignores
//! `n`/`last` and answers unsorted). GCR and Artifact Registry add a `manifest` map (digest ->
//! `{tag: [...], mediaType, imageSizeBytes, ...}`) that tells each tag's digest at no extra cost;
//! [`TagListing::digests`] exposes it.

use std::collections::{BTreeMap, BTreeSet, HashSet};

use hoist_oci::{Digest, Tag};
use hoist_store::{StoreError, StoreErrorKind, TagListing};
use reqwest::header::{ACCEPT, LINK};
use reqwest::{Method, StatusCode};
use serde::Deserialize;
use url::Url;

use crate::auth::Scope;
use crate::client::{Request, Transport, error_from_response, read_limited, subject};

/// A repository with tens of thousands of tags and the digest map stays far below this.
const MAX_PAGE_BYTES: usize = 256 * 1024 * 1024;

/// The most pages followed, against a registry whose `next` links never end.
const MAX_PAGES: usize = 100_000;

/// One page of `tags/list`.
#[derive(Deserialize)]
struct Page {
    #[serde(default)]
    tags: Option<Vec<String>>,
    #[serde(default)]
    manifest: Option<BTreeMap<String, ManifestEntry>>,
}

/// One entry of GCR's `manifest` map; only the tags matter here.
#[derive(Deserialize)]
struct ManifestEntry {
    #[serde(default)]
    tag: Vec<String>,
}

pub(crate) async fn list(
    transport: &Transport,
    repository: &str,
) -> Result<TagListing, StoreError> {
    let mut url = transport.url(&format!("{repository}/tags/list"));
    let mut visited = HashSet::new();
    let mut tags = BTreeSet::new();
    let mut digests: Option<BTreeMap<Tag, Digest>> = None;
    let mut untagged: Option<BTreeSet<Digest>> = None;
    let mut pages = 0;
    loop {
        let subject = subject(&url);
        if !visited.insert(url.clone()) || pages >= MAX_PAGES {
            return Err(StoreError::new(
                StoreErrorKind::Protocol,
                subject,
                "the tag list pages loop",
            ));
        }
        pages += 1;
        let request = Request::new(Method::GET, url.clone(), Scope::pull(repository))
            .header(ACCEPT, "application/json");
        let response = transport.send(&request).await?;
        if response.status() == StatusCode::NOT_FOUND && pages == 1 {
            // NAME_UNKNOWN: a repository that does not exist has no tags.
            return Ok(TagListing {
                missing: true,
                ..TagListing::default()
            });
        }
        if !response.status().is_success() {
            return Err(error_from_response(response, &subject).await);
        }
        let next = next_link(&response);
        let body = read_limited(response, MAX_PAGE_BYTES, &subject).await?;
        let page: Page = serde_json::from_slice(&body).map_err(|error| {
            StoreError::new(
                StoreErrorKind::Protocol,
                &subject,
                "the tag list is not JSON",
            )
            .with_source(error)
        })?;
        tags.extend(
            page.tags
                .unwrap_or_default()
                .iter()
                .filter_map(|tag| parse_tag(transport, repository, tag)),
        );
        if let Some(manifest) = page.manifest {
            let map = digests.get_or_insert_with(BTreeMap::new);
            let without_tags = untagged.get_or_insert_with(BTreeSet::new);
            for (digest, entry) in manifest {
                // Digests of other algorithms could appear.
                let Ok(digest) = Digest::parse(&digest) else {
                    continue;
                };
                // GCR lists untagged manifests too (index children, promotions by digest).
                if entry.tag.is_empty() {
                    without_tags.insert(digest);
                }
                for tag in entry
                    .tag
                    .iter()
                    .filter_map(|tag| parse_tag(transport, repository, tag))
                {
                    map.insert(tag, digest);
                }
            }
        }
        match next {
            Some(next) => url = next,
            None => break,
        }
    }
    if let (Some(untagged), Some(digests)) = (&mut untagged, &digests) {
        // A digest whose tags were on another page is tagged after all.
        let tagged: BTreeSet<&Digest> = digests.values().collect();
        untagged.retain(|digest| !tagged.contains(digest));
    }
    Ok(TagListing {
        tags: tags.into_iter().collect(),
        digests,
        missing: false,
        untagged,
    })
}

/// Tags that break the OCI grammar cannot be named in a promotion manifest; they are skipped.
fn parse_tag(transport: &Transport, repository: &str, tag: &str) -> Option<Tag> {
    match Tag::parse(tag) {
        Ok(tag) => Some(tag),
        Err(error) => {
            tracing::warn!(host = %transport.host, repository, tag, %error, "skipping a tag that is not valid");
            None
        }
    }
}

/// The `rel="next"` target of the `Link` headers, resolved against the page's URL
/// (<https://www.rfc-editor.org/rfc/rfc8288>).
fn next_link(response: &reqwest::Response) -> Option<Url> {
    response
        .headers()
        .get_all(LINK)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .find_map(next_target)
        .and_then(|target| response.url().join(&target).ok())
}

/// The target of the `rel="next"` link in one `Link` value: `<t1>; rel="next", <t2>; rel=prev`.
fn next_target(header: &str) -> Option<String> {
    let mut rest = header;
    while let Some(start) = rest.find('<') {
        let end = start + rest[start..].find('>')?;
        let target = &rest[start + 1..end];
        let parameters_end = rest[end..].find('<').map_or(rest.len(), |next| end + next);
        let parameters = &rest[end + 1..parameters_end];
        let is_next = parameters.split(';').any(|parameter| {
            let Some((name, value)) = parameter.split_once('=') else {
                return false;
            };
            name.trim().eq_ignore_ascii_case("rel")
                && value
                    .trim()
                    .trim_matches('"')
                    .split_whitespace()
                    .any(|rel| rel.eq_ignore_ascii_case("next"))
        });
        if is_next {
            return Some(target.to_owned());
        }
        rest = &rest[parameters_end..];
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_the_next_link() {
        assert_eq!(
            next_target(r#"</v2/a/tags/list?last=b&n=2>; rel="next""#).as_deref(),
            Some("/v2/a/tags/list?last=b&n=2")
        );
        assert_eq!(
            next_target(r#"<https://h/prev>; rel="prev", <https://h/next?x=1,2>; rel=next"#)
                .as_deref(),
            Some("https://h/next?x=1,2")
        );
        assert_eq!(next_target(r#"<https://h/p>; rel="prev""#), None);
        assert_eq!(next_target("garbage"), None);
    }
}
