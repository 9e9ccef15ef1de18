//! What goes in which request: the bulk updates' chunks, and the enrolment list's URL.

use std::collections::{HashMap, HashSet};

use headway::{Outgoing, UserId};

/// Splits items into requests of at most `chunk` items such that no request holds two items
/// for one (batch, content) and every batch in a request belongs to one course (Sunbird reads
/// a batch's stored rows with the first item's course). Returns item indices per request,
/// taken from `indices`.
pub(super) fn plan_requests(
    items: &[Outgoing],
    indices: &[usize],
    chunk: usize,
) -> Vec<Vec<usize>> {
    struct Planned<'a> {
        indices: Vec<usize>,
        course_of_batch: HashMap<&'a str, &'a str>,
        contents: HashSet<(&'a str, &'a str)>,
    }
    let mut requests: Vec<Planned<'_>> = Vec::new();
    let mut open_from = 0;
    for &index in indices {
        let key = items[index].item.key();
        let fits = |r: &Planned<'_>| {
            r.indices.len() < chunk
                && r.course_of_batch
                    .get(key.batch().as_str())
                    .is_none_or(|course| *course == key.course())
                && !r.contents.contains(&(key.batch(), key.content()))
        };
        let slot = requests[open_from..]
            .iter()
            .position(fits)
            .map(|p| p + open_from);
        let request = match slot {
            Some(i) => &mut requests[i],
            None => {
                requests.push(Planned {
                    indices: Vec::new(),
                    course_of_batch: HashMap::new(),
                    contents: HashSet::new(),
                });
                let last = requests.len() - 1;
                &mut requests[last]
            }
        };
        request.indices.push(index);
        request.course_of_batch.insert(key.batch(), key.course());
        request.contents.insert((key.batch(), key.content()));
        // Full requests are never looked at again.
        while requests
            .get(open_from)
            .is_some_and(|r| r.indices.len() >= chunk)
        {
            open_from += 1;
        }
    }
    requests.into_iter().map(|r| r.indices).collect()
}

/// The SDK's query of the enrolment list, plus the leaf nodes the offline answer counts
/// completions against.
pub(super) const LIST_QUERY: &str = "orgdetails=orgName,email&fields=contentType,topic,name,channel,pkgVersion,primaryCategory,trackable,leafNodes,leafNodesCount&batchDetails=name,endDate,startDate,status,enrollmentType,createdBy,certificates";

/// The path and query of `user`'s enrolment list, relative to `/api/course/v1/`: `url` encodes
/// the user id as one path segment (a `/`, `?`, `#` or space in it cannot change the path).
pub(super) fn enrolment_list_path(user: &UserId) -> String {
    // Parsing a constant absolute URL cannot fail; only its path and query are kept.
    let Ok(mut url) = url::Url::parse("http://sunbird.invalid/") else {
        return String::new();
    };
    if let Ok(mut path) = url.path_segments_mut() {
        path.clear()
            .extend(["user", "enrollment", "list", user.as_str()]);
    }
    url.set_query(Some(LIST_QUERY));
    url[url::Position::BeforePath..]
        .trim_start_matches('/')
        .to_string()
}
