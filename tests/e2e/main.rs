//! End-to-end tests: the real `gateway` binary on loopback, a real HTTP receiver that verifies
//! signatures, real `kill -9`.

mod api;
mod common;
mod delivery;
