//! One module per family of commands; each function takes the parsed flags and returns the
//! exit code.

pub mod cp;
pub mod exec;
pub mod images;
pub mod inspect;
pub mod lifecycle;
pub mod login;
pub mod logs;
pub mod ps;
pub mod run;
pub mod stats;
pub mod stream;
pub mod system;
pub mod transfer;
pub mod network;
pub mod volume;
