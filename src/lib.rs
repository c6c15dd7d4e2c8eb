pub mod cli;
pub mod daemon;
pub mod fs;
