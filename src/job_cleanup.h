// Removal of what a job created: slot, publication, origin and (before
// cutover only) the shadow table. Every step is idempotent, so abort, a
// failed run and a crashed run's resume can all call it.
#pragma once

#include "job_names.h"
#include "pg/connection.h"

namespace pgshift {

/// Ends every session of this job other than the caller's (found by
/// application_name "pgshift/<job>"), including a walsender holding the slot.
void terminate_job_sessions(pg::Connection& conn, const std::string& application_name);

/// Drops the slot (terminating a walsender that holds it), the publication
/// and the origin. Drops the shadow table only when drop_shadow is true and
/// it is still the partitioned shadow (never the live table).
void drop_job_objects(pg::Connection& conn, const JobNames& names, bool drop_shadow);

}  // namespace pgshift
