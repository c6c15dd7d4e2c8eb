//! What lets many mounts (on many machines) behave as one client of a server: lease files in
//! a shared folder (`lease`), and the request budget per mount and across mounts (`budget`).
//! The shared cache that uses the same leases for its fetches is `fs::shared`.

pub mod budget;
pub mod lease;

pub use budget::{BudgetStats, Permit, RequestBudget, DEFAULT_MAX_CONNECTIONS};
