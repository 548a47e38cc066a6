//! Sockets shared by the milter and the map server.

pub mod listen;
pub(crate) mod stream;
