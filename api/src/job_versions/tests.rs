//! The memory on its own: what it answers, forgets and refuses.

use super::*;
use axum::http::header::IF_NONE_MATCH;

const TAG: &str = "\"0123456789abcdef0123456789abcdef\"";

fn polled_with(tag: &str) -> HeaderMap {
    let mut headers = HeaderMap::new();
    headers.insert(IF_NONE_MATCH, tag.parse().expect("header"));
    headers
}

fn live() -> JobVersions {
    let versions = JobVersions::new(Duration::from_secs(60));
    versions.reset(true);
    versions
}

#[test]
fn a_remembered_tag_answers_its_owner_until_the_job_changes() {
    let versions = live();
    let (job, owner) = (Uuid::now_v7(), Uuid::now_v7());
    let seen = versions.seen();
    versions.remember(job, owner, &HeaderValue::from_static(TAG), seen);

    assert!(versions.unchanged(job, owner, &polled_with(TAG)).is_some());
    assert!(
        versions
            .unchanged(job, Uuid::now_v7(), &polled_with(TAG))
            .is_none(),
        "nobody else"
    );
    assert!(
        versions
            .unchanged(job, owner, &polled_with("\"other\""))
            .is_none()
    );
    versions.changed_all(&[Change::Job(job)]);
    assert!(versions.unchanged(job, owner, &polled_with(TAG)).is_none());
}

#[test]
fn a_tag_read_before_a_change_of_its_job_is_not_remembered() {
    let versions = live();
    let (job, owner) = (Uuid::now_v7(), Uuid::now_v7());
    let seen = versions.seen();
    versions.changed_all(&[Change::Job(Uuid::now_v7())]);
    versions.changed_all(&[Change::Job(job)]);
    versions.changed_all(&[Change::Job(Uuid::now_v7())]);
    versions.remember(job, owner, &HeaderValue::from_static(TAG), seen);
    assert!(versions.unchanged(job, owner, &polled_with(TAG)).is_none());
}

#[test]
fn a_tag_older_than_the_recent_changes_reach_is_not_remembered() {
    let versions = live();
    let (job, owner) = (Uuid::now_v7(), Uuid::now_v7());
    let seen = versions.seen();
    for _ in 0..=RECENT {
        versions.changed_all(&[Change::Job(Uuid::now_v7())]);
    }
    versions.remember(job, owner, &HeaderValue::from_static(TAG), seen);
    assert!(versions.unchanged(job, owner, &polled_with(TAG)).is_none());
}

#[test]
fn a_remembered_page_answers_until_one_of_its_jobs_changes_or_its_user_gets_a_new_one() {
    let versions = live();
    let (owner, job, other) = (Uuid::now_v7(), Uuid::now_v7(), Uuid::now_v7());
    let page = (None, 20);
    let remember = || {
        versions.remember_list(
            owner,
            page,
            &[job],
            &HeaderValue::from_static(TAG),
            versions.seen(),
        );
    };
    remember();
    assert!(
        versions
            .unchanged_list(owner, page, &polled_with(TAG))
            .is_some()
    );
    assert!(
        versions
            .unchanged_list(owner, (None, 10), &polled_with(TAG))
            .is_none()
    );
    assert!(
        versions
            .unchanged_list(Uuid::now_v7(), page, &polled_with(TAG))
            .is_none()
    );

    versions.changed_all(&[Change::Job(other)]);
    assert!(
        versions
            .unchanged_list(owner, page, &polled_with(TAG))
            .is_some()
    );
    versions.changed_all(&[Change::Job(job)]);
    assert!(
        versions
            .unchanged_list(owner, page, &polled_with(TAG))
            .is_none()
    );

    remember();
    versions.changed_all(&[Change::NewJobsOf(owner)]);
    assert!(
        versions
            .unchanged_list(owner, page, &polled_with(TAG))
            .is_none()
    );
}

#[test]
fn a_page_read_before_its_user_got_a_new_job_is_not_remembered() {
    let versions = live();
    let owner = Uuid::now_v7();
    let seen = versions.seen();
    versions.changed_all(&[Change::NewJobsOf(owner)]);
    versions.remember_list(owner, (None, 20), &[], &HeaderValue::from_static(TAG), seen);
    assert!(
        versions
            .unchanged_list(owner, (None, 20), &polled_with(TAG))
            .is_none()
    );
}

#[test]
fn a_user_keeps_only_a_few_pages_however_many_cursors_they_make_up() {
    let versions = live();
    let owner = Uuid::now_v7();
    let first = (Some(Uuid::now_v7()), 20);
    versions.remember_list(
        owner,
        first,
        &[],
        &HeaderValue::from_static(TAG),
        versions.seen(),
    );
    for _ in 0..PAGES_PER_USER {
        let made_up = (Some(Uuid::now_v7()), 20);
        versions.remember_list(
            owner,
            made_up,
            &[],
            &HeaderValue::from_static(TAG),
            versions.seen(),
        );
    }
    assert!(
        versions
            .unchanged_list(owner, first, &polled_with(TAG))
            .is_none()
    );
    assert_eq!(versions.lock().lists[&owner].len(), PAGES_PER_USER);
}

#[test]
fn nothing_is_trusted_or_kept_across_a_lost_connection() {
    let versions = live();
    let (job, owner) = (Uuid::now_v7(), Uuid::now_v7());
    versions.remember(job, owner, &HeaderValue::from_static(TAG), versions.seen());
    let before_the_loss = versions.seen();

    versions.reset(false);
    assert!(versions.unchanged(job, owner, &polled_with(TAG)).is_none());
    versions.remember(job, owner, &HeaderValue::from_static(TAG), versions.seen());
    versions.reset(true);
    assert!(versions.unchanged(job, owner, &polled_with(TAG)).is_none());
    versions.remember(job, owner, &HeaderValue::from_static(TAG), before_the_loss);
    assert!(
        versions.unchanged(job, owner, &polled_with(TAG)).is_none(),
        "read before the loss, when a change may have gone untold"
    );
}
