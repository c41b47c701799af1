//! Public catalog reads: units, matters, bundles. No token needed.

use actix_web::http::header::{CacheControl, CacheDirective, ETag, EntityTag};
use actix_web::{HttpResponse, get, web};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use crate::domain::catalog::{Bundle, Matter, Unit};
use crate::domain::{Catalog, Category, UnitCode};
use crate::error::{ApiError, FieldError};

/// A catalog listing with the version it comes from.
#[derive(Debug, Serialize, ToSchema)]
pub struct Listing<T> {
    /// Catalog version (SHA-256 of the catalog file).
    pub catalog_version: String,
    /// The entries.
    pub items: Vec<T>,
}

fn listing<T: Serialize>(catalog: &Catalog, items: Vec<T>) -> HttpResponse {
    cached(catalog).json(Listing {
        catalog_version: catalog.version().to_string(),
        items,
    })
}

/// Catalog answers change only with the catalog: its version is the ETag.
fn cached(catalog: &Catalog) -> actix_web::HttpResponseBuilder {
    let mut response = HttpResponse::Ok();
    response
        .insert_header(ETag(EntityTag::new_strong(catalog.version().to_string())))
        .insert_header(CacheControl(vec![
            CacheDirective::Public,
            CacheDirective::MaxAge(300),
        ]));
    response
}

/// The responsible units.
#[utoipa::path(tag = "catalog", responses((status = 200, description = "All units", body = Listing<Unit>)))]
#[get("/api/v1/units")]
pub async fn units(catalog: web::Data<Catalog>) -> HttpResponse {
    listing(&catalog, catalog.units().cloned().collect())
}

/// Filters of the matter list.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct MatterQuery {
    /// Only this category.
    #[param(value_type = Option<Category>)]
    pub category: Option<String>,
    /// Only matters this unit leads or co-handles.
    #[param(value_type = Option<UnitCode>)]
    pub unit: Option<String>,
    /// Case-insensitive text in the code or either name.
    pub text: Option<String>,
}

/// The matters (事项), filtered.
#[utoipa::path(
    tag = "catalog",
    params(MatterQuery),
    responses(
        (status = 200, description = "Matching matters", body = Listing<Matter>),
        (status = 422, description = "A filter is not a known value", body = crate::error::Problem,
         content_type = "application/problem+json")
    )
)]
#[get("/api/v1/matters")]
pub async fn matters(
    catalog: web::Data<Catalog>,
    query: web::Query<MatterQuery>,
) -> Result<HttpResponse, ApiError> {
    let mut errors = Vec::new();
    // An empty `text` means no filter; an empty category or unit is not one of the values.
    let given = |v: &Option<String>| {
        v.as_deref()
            .map(str::trim)
            .filter(|v| !v.is_empty())
            .map(str::to_owned)
    };
    let (category_text, unit_text) = (query.category.clone(), query.unit.clone());
    let category = match category_text.as_deref().map(str::parse::<Category>) {
        Some(Err(message)) => {
            errors.push(FieldError {
                pointer: "category".into(),
                message,
            });
            None
        }
        other => other.and_then(Result::ok),
    };
    let unit = match unit_text.as_deref().map(str::parse::<UnitCode>) {
        Some(Err(e)) => {
            errors.push(FieldError {
                pointer: "unit".into(),
                message: e.to_string(),
            });
            None
        }
        other => other.and_then(Result::ok),
    };
    if !errors.is_empty() {
        return Err(ApiError::validation(errors));
    }
    let text = given(&query.text).map(|t| t.to_lowercase());
    let items: Vec<Matter> = catalog
        .matters()
        .filter(|m| category.is_none_or(|c| m.category == c))
        .filter(|m| unit.is_none_or(|u| m.lead_unit == u || m.co_units.contains(&u)))
        .filter(|m| {
            text.as_deref().is_none_or(|t| {
                m.code.to_lowercase().contains(t)
                    || m.name_zh.to_lowercase().contains(t)
                    || m.name_en.to_lowercase().contains(t)
            })
        })
        .cloned()
        .collect();
    Ok(listing(&catalog, items))
}

/// One matter, with its clocks, materials and form fields.
#[utoipa::path(
    tag = "catalog",
    params(("code" = String, Path, description = "Matter code, e.g. market.establish")),
    responses(
        (status = 200, description = "The matter", body = Matter),
        (status = 404, description = "No such matter", body = crate::error::Problem, content_type = "application/problem+json")
    )
)]
#[get("/api/v1/matters/{code}")]
pub async fn matter(
    catalog: web::Data<Catalog>,
    code: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let matter = catalog
        .matter(&code)
        .ok_or_else(|| ApiError::not_found(format!("no matter `{code}` in the catalog")))?;
    Ok(cached(&catalog).json(matter))
}

/// The bundles (一件事).
#[utoipa::path(tag = "catalog", responses((status = 200, description = "All bundles", body = Listing<Bundle>)))]
#[get("/api/v1/bundles")]
pub async fn bundles(catalog: web::Data<Catalog>) -> HttpResponse {
    listing(&catalog, catalog.bundles().cloned().collect())
}
