// Removal of what a job created: slot, publication, origin and (before
// cutover only) the shadow table. Every step is idempotent, so abort, a
// failed run and a crashed run's resume can all call it.
#pragma once

#include "job_names.h"
#include "job_state.h"
#include "pg/connection.h"

namespace pgshift {

/// Ends every session of this job other than the caller's (found by
/// application_name "pgshift/<job>"), including a walsender holding the slot.
void terminate_job_sessions(pg::Connection& conn, const std::string& application_name);

/// Drops one stream's slot (terminating a walsender that holds it) and
/// publication, whichever exist.
void drop_stream_objects(pg::Connection& conn, const std::string& slot,
                         const std::string& publication);

/// Drops a replication origin if it exists (waiting while a session that is
/// going away still holds it).
void drop_origin(pg::Connection& conn, const std::string& origin);

/// Runs the after-commit statements (VALIDATE CONSTRAINT, root foreign keys)
/// of a swap that committed before the process died
/// (JobRecord::after_swap_pending), then clears the flag; nothing when none
/// is pending. Errors of single statements are logged with the statement.
void finish_after_swap(pg::Connection& conn, JobState& state, const JobRecord& job);

/// `finalize`: drops both streams' objects, the old table when asked (under
/// lock_timeout, retried), and marks the job done.
void finalize_job(pg::Connection& conn, const JobNames& names, JobState& state, bool drop_old,
                  int lock_timeout_ms);

/// Drops both streams' objects. Drops the shadow table only when drop_shadow
/// is true and it is still the partitioned shadow (never the live table).
void drop_job_objects(pg::Connection& conn, const JobNames& names, bool drop_shadow);

}  // namespace pgshift
