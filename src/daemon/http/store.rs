//! `GET /v1/store/backup` (bearer): a consistent copy of the store, made while the daemon keeps
//! serving (one read snapshot, `store/backup.rs`), streamed as the body. `crmsync store backup`
//! uses it when the daemon holds the store. The copy is written to a temporary directory beside
//! the store first (the store's filesystem has room for its size), and removed once sent.

use std::sync::Arc;

use axum::body::Body;
use axum::extract::State;
use axum::http::header;
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use tokio::io::AsyncReadExt;

use super::error::{ApiError, ApiResult};
use crate::daemon::{store_error, AppState};

/// Bytes read from the copy per body chunk.
const CHUNK: usize = 64 * 1024;

pub async fn backup(State(state): State<Arc<AppState>>) -> ApiResult<Response> {
    let engine = state.engine.clone();
    let (dir, path) = state
        .blocking(move || {
            let store = engine.store();
            let beside = match store.path().parent() {
                Some(dir) if !dir.as_os_str().is_empty() => dir.to_path_buf(),
                _ => std::path::PathBuf::from("."),
            };
            let dir = tempfile::Builder::new()
                .prefix(".crmsync-backup-")
                .tempdir_in(&beside)
                .map_err(|err| {
                    ApiError::unavailable(format!(
                        "cannot make a backup beside {}: {err}",
                        store.path().display()
                    ))
                })?;
            let path = dir.path().join("backup.redb");
            store.backup_to(&path).map_err(store_error)?;
            Ok((dir, path))
        })
        .await?;
    let file = tokio::fs::File::open(&path)
        .await
        .map_err(|err| ApiError::internal(format!("cannot read the backup: {err}")))?;
    let len = file
        .metadata()
        .await
        .map_err(|err| ApiError::internal(format!("cannot read the backup: {err}")))?
        .len();
    // The temporary directory lives as long as the stream, so it goes once the body is sent.
    let body = futures::stream::unfold(Some((file, dir)), |state| async move {
        let (mut file, dir) = state?;
        let mut buf = vec![0; CHUNK];
        match file.read(&mut buf).await {
            Ok(0) => None,
            Ok(n) => {
                buf.truncate(n);
                Some((Ok(Bytes::from(buf)), Some((file, dir))))
            }
            Err(err) => Some((Err(err), None)),
        }
    });
    Ok((
        [
            (header::CONTENT_TYPE, "application/octet-stream".to_string()),
            (header::CONTENT_LENGTH, len.to_string()),
        ],
        Body::from_stream(body),
    )
        .into_response())
}
