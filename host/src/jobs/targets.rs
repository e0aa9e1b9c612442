//! Where a job's inputs are read from and its outputs written to, outside the service's
//! storage: a destination of the organisation, or a service given inline (whose sealed
//! credentials are opened only here, when the work needs them).

use super::spec::{Conversion, Input, InputKind};
use crate::app::AppState;
use crate::db::DbError;
use crate::error::{ApiError, ErrorCode};
use crate::storage::external::{Service, Target, open_credentials};

/// The destination `id` of `org_id` as a target.
async fn destination(state: &AppState, org_id: &str, id: &str) -> Result<Target, ApiError> {
    let (org_id, id) = (org_id.to_owned(), id.to_owned());
    let row = state
        .db()
        .run(move |conn| {
            crate::resources::destinations::find(conn, &org_id, &id).map_err(DbError::from)
        })
        .await?
        .ok_or_else(|| {
            ApiError::new(
                ErrorCode::NotFound,
                "the destination was deleted after the job was created",
            )
        })?;
    row.target(state.sealer())
}

/// Where a `cloud` or `destination` input is read from.
pub async fn of_input(state: &AppState, org_id: &str, input: &Input) -> Result<Target, ApiError> {
    if input.kind == InputKind::Destination {
        return destination(
            state,
            org_id,
            input.destination_id.as_deref().unwrap_or_default(),
        )
        .await;
    }
    let service = Service::parse(input.source.as_deref().unwrap_or_default())
        .map_err(|message| ApiError::new(ErrorCode::Internal, message))?;
    Ok(Target::new(
        service,
        input.parameters.clone(),
        open_credentials(state.sealer(), input.sealed_credentials.as_deref())?,
    ))
}

/// Where a conversion's outputs are written besides storage, if anywhere: the target,
/// and the destination's id when it is one.
pub async fn of_conversion(
    state: &AppState,
    org_id: &str,
    conversion: &Conversion,
) -> Result<Option<(Target, Option<String>)>, ApiError> {
    if let Some(id) = &conversion.destination {
        return Ok(Some((
            destination(state, org_id, id).await?,
            Some(id.clone()),
        )));
    }
    let Some(inline) = &conversion.output_target else {
        return Ok(None);
    };
    let service = Service::parse(&inline.service)
        .map_err(|message| ApiError::new(ErrorCode::Internal, message))?;
    let target = Target::new(
        service,
        inline.parameters.clone(),
        open_credentials(state.sealer(), inline.sealed_credentials.as_deref())?,
    );
    Ok(Some((target, None)))
}
