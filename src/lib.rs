pub mod fs;
pub mod cli;
pub mod daemon;
