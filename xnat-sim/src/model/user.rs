//! A user account of the emulated site.

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct User {
    pub name: String,
    pub password: String,
    /// Site administrators read and write every project.
    pub admin: bool,
}
