// The rollback swap: the cutover in reverse. After a cutover the partitioned
// table has the original name and the old plain table is <table>__pgshift_old,
// kept current by the reverse stream. Rolling back runs the same protocol as
// the cutover (lock the live table with lock_timeout and retries, barrier
// through the reverse stream, swap, commit) with these statements, and leaves
// the names exactly as before the first cutover, so the forward stream can
// resume and a second cutover is possible.
#pragma once

#include <string>
#include <vector>

#include "cutover/cutover_controller.h"

namespace pgshift {

/// Statements run under the lock of the partitioned table during a rollback:
/// rename it back to the shadow name and the old table back to the original
/// name, give the original index names back to the old table, move serial
/// sequences back, continue the old table's identity sequences from the new
/// ones, make identity columns ALWAYS on the old table and BY DEFAULT on the
/// partitioned one (it is the apply target again), move the dependent objects
/// back (plan.object_sql: ShadowPlan::rollback_sql), then plan.done_sql.
std::vector<std::string> rollback_statements(const SwapPlan& plan);

/// Statements added to a cutover that keeps a reverse stream: the old table
/// becomes the apply target, so its ALWAYS identity columns turn BY DEFAULT.
std::vector<std::string> reverse_target_statements(const SwapPlan& plan);

}  // namespace pgshift
