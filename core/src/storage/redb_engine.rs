//! redb engine.
