#include "job_cleanup.h"

#include <spdlog/spdlog.h>

#include <chrono>
#include <thread>

#include "cutover/cutover_controller.h"
#include "job_state.h"
#include "swap_spec.h"

namespace pgshift {

void finish_after_swap(pg::Connection& conn, JobState& state, const JobRecord& job) {
    if (job.after_swap_pending.empty())
        return;
    spdlog::warn(
        "job {}: the last {} committed but pgshift stopped before its after-commit "
        "statements ran; running them now",
        job.job_name, job.after_swap_pending);
    auto spec = SwapSpec::from_json(job.swap_spec);
    SwapPlan swap;
    swap.after_commit_sql = job.after_swap_pending == "rollback" ? spec.rollback_after_commit_sql
                                                                 : spec.after_commit_sql;
    run_after_commit(conn, swap);
    state.clear_after_swap_pending();
}

void terminate_job_sessions(pg::Connection& conn, const std::string& application_name) {
    conn.exec_params(
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
        " WHERE application_name = $1 AND pid <> pg_backend_pid()",
        {application_name});
}

namespace {

void drop_slot(pg::Connection& conn, const std::string& slot) {
    for (int attempt = 0; attempt < 50; ++attempt) {
        auto r = conn.exec_params(
            "SELECT active_pid FROM pg_replication_slots WHERE slot_name = $1", {slot});
        if (r.rows() == 0)
            return;
        if (r.is_null(0, 0)) {
            conn.exec_params("SELECT pg_drop_replication_slot($1)", {slot});
            spdlog::info("dropped replication slot {}", slot);
            return;
        }
        // In one statement with a look at pg_stat_activity: a walsender that
        // exited since the query above would make pg_terminate_backend warn
        // "PID ... is not a PostgreSQL backend process".
        conn.exec_params(
            "SELECT pg_terminate_backend(a.pid) FROM pg_replication_slots s"
            "  JOIN pg_stat_activity a ON a.pid = s.active_pid WHERE s.slot_name = $1",
            {slot});
        std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
    throw pg::PgError("replication slot " + slot +
                          " stays in use; drop it with SELECT pg_drop_replication_slot('" + slot +
                          "') once its walsender has exited",
                      "55006");
}

}  // namespace

void drop_stream_objects(pg::Connection& conn, const std::string& slot,
                         const std::string& publication) {
    drop_slot(conn, slot);
    conn.exec("DROP PUBLICATION IF EXISTS " + conn.ident(publication));
}

void drop_origin(pg::Connection& conn, const std::string& origin) {
    auto r = pg::retry_while_in_use([&] {
        return conn.exec_params(
            "SELECT pg_replication_origin_drop(roname) FROM pg_replication_origin"
            " WHERE roname = $1",
            {origin});
    });
    if (r.rows() > 0)
        spdlog::info("dropped replication origin {}", origin);
}

void finalize_job(pg::Connection& conn, const JobNames& names, JobState& state, bool drop_old,
                  int lock_timeout_ms) {
    drop_job_objects(conn, names, false);
    if (drop_old) {
        conn.exec("SET lock_timeout = " + std::to_string(lock_timeout_ms));
        pg::retry_on_lock_timeout(
            [&] {
                return conn.exec("DROP TABLE IF EXISTS " +
                                 conn.qualified(names.old.schema, names.old.name));
            },
            30);
        conn.exec("RESET lock_timeout");
        spdlog::info("finalize: dropped the old table {}", names.old.display());
    }
    state.set_phase(Phase::Done);
}

void drop_job_objects(pg::Connection& conn, const JobNames& names, bool drop_shadow) {
    drop_stream_objects(conn, names.slot, names.publication);
    drop_stream_objects(conn, names.reverse_slot, names.reverse_publication);
    drop_origin(conn, names.origin);
    drop_origin(conn, names.reverse_origin);
    if (!drop_shadow)
        return;
    auto kind = conn.exec_params(
        "SELECT c.relkind FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace"
        " WHERE n.nspname = $1 AND c.relname = $2",
        {names.shadow.schema, names.shadow.name});
    if (kind.rows() > 0 && kind.view(0, 0) == "p") {
        conn.exec("SET lock_timeout = '5s'");
        conn.exec("DROP TABLE " + conn.qualified(names.shadow.schema, names.shadow.name));
        conn.exec("RESET lock_timeout");
        spdlog::info("dropped shadow table {}", names.shadow.display());
    }
}

}  // namespace pgshift
