//! Fetching over GRAPH (being built).

use super::supervise::Job;
use super::FetchError;

/// One session.
pub async fn session(job: &mut Job) -> Result<(), FetchError> {
    Err(FetchError::Settings(format!(
        "{} fetching is not available yet",
        job.fetch.host
    )))
}
