//! The rules of the service centre, as pure functions over plain data: no HTTP, no database,
//! no clock (callers pass "now").

pub mod actor;
pub mod appointment;
pub mod assistance;
pub mod audit;
pub mod calendar;
pub mod catalog;
pub mod clock;
pub mod disclosure;
pub mod handling_time;
pub mod intake;
pub mod lifecycle;
pub mod material;
pub mod notice;
pub mod open311;
pub mod rating;
pub mod request;
pub mod routing;
pub mod ticket;
pub mod unit;
pub mod uscc;

pub use self::catalog::{Catalog, Category, Channel};
pub use self::unit::UnitCode;
pub use self::uscc::Uscc;
