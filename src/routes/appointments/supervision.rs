//! The supervisors' day: appointments per unit and counter with utilisation and no-show
//! rate, and the enterprises' repeated no-shows (`docs/appointments.md#the-supervisors-day`).

use super::*;

/// The day and unit to show.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct DayQuery {
    /// The local date, `YYYY-MM-DD`; default today.
    #[param(format = Date)]
    pub date: Option<String>,
    /// Only this unit (a unit supervisor: their own, the default).
    pub unit: Option<String>,
}

/// Figures of a counter, a unit or the day.
#[derive(Debug, Default, Serialize, ToSchema)]
pub struct Figures {
    /// Places offered: slots of the day × capacity.
    pub capacity: i64,
    /// Bookings that hold a place (booked, checked in, no-show).
    pub booked: i64,
    /// Checked in.
    pub checked_in: i64,
    /// No-shows.
    pub no_show: i64,
    /// Cancelled.
    pub cancelled: i64,
    /// `booked / capacity`; null without capacity.
    pub utilisation: Option<f64>,
    /// `no_show / (checked_in + no_show)`: of the visits settled, the share missed; null when
    /// none is settled.
    pub no_show_rate: Option<f64>,
}

impl Figures {
    fn add(&mut self, status: Status) {
        match status {
            Status::Booked => self.booked += 1,
            Status::CheckedIn => {
                self.booked += 1;
                self.checked_in += 1;
            }
            Status::NoShow => {
                self.booked += 1;
                self.no_show += 1;
            }
            Status::Cancelled => self.cancelled += 1,
        }
    }

    fn merge(&mut self, other: &Figures) {
        self.capacity += other.capacity;
        self.booked += other.booked;
        self.checked_in += other.checked_in;
        self.no_show += other.no_show;
        self.cancelled += other.cancelled;
    }

    fn rates(mut self) -> Self {
        self.utilisation = (self.capacity > 0).then(|| self.booked as f64 / self.capacity as f64);
        let settled = self.checked_in + self.no_show;
        self.no_show_rate = (settled > 0).then(|| self.no_show as f64 / settled as f64);
        self
    }
}

/// One counter's day.
#[derive(Debug, Serialize, ToSchema)]
pub struct CounterDay {
    /// Counter code.
    pub counter: String,
    /// Counter name.
    pub name: String,
    /// Slots of the day.
    pub slots: i64,
    /// Its figures.
    #[serde(flatten)]
    pub figures: Figures,
    /// Its appointments, by slot.
    pub appointments: Vec<AppointmentView>,
}

/// One unit's day.
#[derive(Debug, Serialize, ToSchema)]
pub struct UnitDay {
    /// The unit.
    pub unit: String,
    /// Its figures, all counters together.
    #[serde(flatten)]
    pub figures: Figures,
    /// Its counters.
    pub counters: Vec<CounterDay>,
}

/// The day at the hall.
#[derive(Debug, Serialize, ToSchema)]
pub struct DayView {
    /// The local date.
    pub date: NaiveDate,
    /// Whether it is a working day (the counters open).
    pub working_day: bool,
    /// Every unit shown, all together.
    #[serde(flatten)]
    pub figures: Figures,
    /// Per unit.
    pub units: Vec<UnitDay>,
}

/// The day's appointments per unit and counter, with utilisation and no-show rate
/// (supervisors: a unit supervisor their unit, a district supervisor any; administrators).
#[utoipa::path(
    operation_id = "appointments_day",
    tag = "appointments",
    security(("bearer" = [])),
    params(DayQuery),
    responses(
        (status = 200, description = "The day", body = DayView),
        (status = 403, description = "Not a supervisor, or another unit than the supervisor's", body = Problem,
         content_type = "application/problem+json"),
        (status = 422, description = "`date` not a date, `unit` not a unit with counters (named)", body = Problem,
         content_type = "application/problem+json"),
        crate::routes::AuthFailures
    )
)]
#[get("/api/v1/appointments/day")]
pub async fn day(
    principal: Principal,
    query: web::Query<DayQuery>,
    catalog: web::Data<Catalog>,
    hall: web::Data<Hall>,
    calendars: web::Data<Calendars>,
    db: web::Data<Database>,
) -> Result<HttpResponse, ApiError> {
    principal.require(&[Role::Supervisor, Role::Admin])?;
    let calendar = calendars.current();
    let zone = calendar.time_zone();
    let mut errors = Vec::new();
    let date = match &query.date {
        None => Some(Utc::now().with_timezone(&zone).date_naive()),
        Some(text) => parse_date("date", text).map_err(|e| errors.push(e)).ok(),
    };
    let unit = match query.unit.as_deref() {
        None => None,
        Some(text) => match text.parse::<crate::domain::UnitCode>() {
            Ok(code) if hall.unit(code).is_some() => Some(code),
            _ => {
                errors.push(field(
                    "unit",
                    format!("`{text}` is not a unit with counters in the hall"),
                ));
                None
            }
        },
    };
    if !errors.is_empty() {
        return Err(ApiError::validation(errors));
    }
    let date = date.expect("checked above");
    let unit = match (&principal.actor, unit) {
        (Actor::Supervisor(Some(own)), Some(asked)) if asked != *own => {
            return Err(ApiError::forbidden(format!(
                "a supervisor of {own} sees only {own}'s counters"
            )));
        }
        (Actor::Supervisor(Some(own)), _) => Some(*own),
        (_, asked) => asked,
    };
    let filters = Filters {
        date: Some(date.to_string()),
        unit: unit.map(|u| u.to_string()),
        ..Filters::default()
    };
    let rows = db
        .run(move |conn| Ok(appointments::list(conn, &Scope::All, &filters, i64::MAX)?))
        .await?;
    let context = Context {
        catalog: &catalog,
        hall: &hall,
        zone,
    };
    let mut total = Figures::default();
    let mut units = Vec::new();
    for unit_hall in hall
        .units()
        .filter(|u| unit.is_none_or(|only| only == u.unit))
    {
        let mut unit_figures = Figures::default();
        let mut counters = Vec::new();
        for counter in &unit_hall.counters {
            let slot_count = hall.day_slots(&calendar, unit_hall, counter, date).len() as i64;
            let mut figures = Figures {
                capacity: slot_count * i64::from(unit_hall.capacity),
                ..Figures::default()
            };
            let mine: Vec<&AppointmentRow> =
                rows.iter().filter(|r| r.counter == counter.code).collect();
            for row in &mine {
                figures.add(row.state());
            }
            unit_figures.merge(&figures);
            counters.push(CounterDay {
                counter: counter.code.clone(),
                name: counter.name.clone(),
                slots: slot_count,
                figures: figures.rates(),
                appointments: mine.into_iter().map(|r| context.view(r)).collect(),
            });
        }
        total.merge(&unit_figures);
        units.push(UnitDay {
            unit: unit_hall.unit.to_string(),
            figures: unit_figures.rates(),
            counters,
        });
    }
    Ok(HttpResponse::Ok().json(DayView {
        date,
        working_day: calendar.is_working_day(date),
        figures: total.rates(),
        units,
    }))
}

/// No-shows of one enterprise.
#[derive(Debug, Serialize, ToSchema)]
pub struct NoShowCount {
    /// The enterprise.
    pub uscc: String,
    /// Its no-shows (爽约).
    pub no_shows: i64,
}

/// Repeated no-shows (爽约) per enterprise, most first: an enterprise sees its own count, a
/// clerk or unit supervisor those at their unit's counters, a district supervisor or
/// administrator all.
#[utoipa::path(
    operation_id = "appointments_no_shows",
    tag = "appointments",
    security(("bearer" = [])),
    responses(
        (status = 200, description = "Enterprises with at least one no-show (an enterprise: its own, possibly 0)",
         body = Vec<NoShowCount>),
        crate::routes::AuthFailures
    )
)]
#[get("/api/v1/appointments/no-shows")]
pub async fn no_shows(
    principal: Principal,
    db: web::Data<Database>,
) -> Result<HttpResponse, ApiError> {
    let scope = scope_of(&principal);
    let own = match &principal.actor {
        Actor::Enterprise(uscc) => Some(uscc.to_string()),
        _ => None,
    };
    let counts = db
        .run(move |conn| Ok(appointments::no_shows(conn, &scope)?))
        .await?;
    let mut items: Vec<NoShowCount> = counts
        .into_iter()
        .map(|(uscc, no_shows)| NoShowCount { uscc, no_shows })
        .collect();
    if let (Some(uscc), true) = (own, items.is_empty()) {
        items.push(NoShowCount { uscc, no_shows: 0 });
    }
    Ok(HttpResponse::Ok().json(items))
}
