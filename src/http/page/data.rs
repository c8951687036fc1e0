//! What the operator page shows, gathered in one pass: every wave's status (via
//! [`wave_state::load`], the same as `GET /api/v1/waves`), every configured service's live status,
//! and from the store the first page of differing keys (with field diffs) and the latest row-diff
//! keys of the services that have any.

use crate::http::services::all_statuses;
use crate::http::{wave_state, ApiError, AppState};
use crate::model::status::ServiceStatus;
use crate::signoff::WaveStatus;
use crate::store::read::MismatchPage;
use crate::store::rows::{self, RowDiffItem};
use chrono::{DateTime, Utc};

/// Differing keys shown per service (the API pages through the rest).
pub const MISMATCH_KEYS: i64 = 20;
/// Field diffs shown per key.
pub const FIELDS_PER_KEY: usize = 6;
/// Row-diff keys of the latest sampler round shown per service.
pub const ROW_DIFF_KEYS: i64 = 10;

#[derive(Debug)]
pub struct PageData {
    pub generated_at: DateTime<Utc>,
    /// In id order.
    pub waves: Vec<WaveStatus>,
    /// In config order.
    pub services: Vec<ServicePanel>,
}

#[derive(Debug)]
pub struct ServicePanel {
    pub status: ServiceStatus,
    pub targets_configured: bool,
    /// The first page of differing keys; `None` when none differ or the service is not
    /// registered in the store yet.
    pub mismatches: Option<MismatchPage>,
    /// Differing keys of the latest sampler round (empty without targets or rounds).
    pub row_diffs: Vec<RowDiffItem>,
}

/// Everything the page shows, read now.
pub async fn gather(state: &AppState) -> Result<PageData, ApiError> {
    let (waves, _) = wave_state::load(state).await?;
    let pool = &state.store.pool;
    let mut services = Vec::with_capacity(state.config.services.len());
    for (service, mut status) in state.config.services.iter().zip(all_statuses(state).await) {
        // Waves may list their services instead of the services naming their wave.
        status.wave = status.wave.or_else(|| {
            state
                .config
                .waves
                .iter()
                .find(|w| w.services.contains(&service.name))
                .map(|w| w.id)
        });
        let id = state.store.resolve_service_id(&service.name).await?;
        let differs = status.keys.settled.total() + status.keys.in_flight.total() > 0;
        let mismatches = match id {
            Some(id) if differs => {
                let (_, at) = crate::store::epochs::current(
                    pool,
                    id,
                    &service.name,
                    service.compare_from.start_ms(),
                )
                .await?;
                Some(
                    crate::store::parity::mismatches(
                        pool,
                        at,
                        None,
                        status.settled_until_ms,
                        MISMATCH_KEYS,
                        None,
                    )
                    .await?,
                )
            }
            _ => None,
        };
        let targets_configured = service.targets.is_some();
        let row_diffs = match id {
            Some(id) if targets_configured && status.rows.is_some() => {
                rows::latest_diffs(pool, id, ROW_DIFF_KEYS).await?
            }
            _ => Vec::new(),
        };
        services.push(ServicePanel {
            status,
            targets_configured,
            mismatches,
            row_diffs,
        });
    }
    Ok(PageData {
        generated_at: Utc::now(),
        waves,
        services,
    })
}
