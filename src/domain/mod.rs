//! The rules of the service centre, as pure functions over plain data: no HTTP, no database,
//! no clock (callers pass "now").

pub mod unit;
pub mod uscc;

pub use self::unit::UnitCode;
pub use self::uscc::Uscc;
