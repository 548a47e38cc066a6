//! Sockets shared by the milter and the map server.

pub(crate) mod accept;
pub mod listen;
pub(crate) mod stream;
