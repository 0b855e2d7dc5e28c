//! The planner (being written; stub API): a pure function from desired and live state to a plan.

use super::model::{DesiredState, LiveState, PLAN_SCHEMA_VERSION, Plan};

pub fn plan(desired: &DesiredState, live: &LiveState) -> Plan {
    let _ = live;
    Plan {
        version: PLAN_SCHEMA_VERSION,
        dir: desired.dir.clone(),
        sources: Vec::new(),
        tasks: Vec::new(),
        errors: desired.errors.clone(),
    }
}
