//! Table tests of the applier (pure: SQL text and routing, no database).
use super::*;
