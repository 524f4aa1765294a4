#include "cutover_controller.h"

#include <spdlog/spdlog.h>

#include <chrono>
#include <random>
#include <thread>

#include "errors.h"
#include "pg/connection.h"
#include "test_hook.h"

namespace pgshift {

using Clock = std::chrono::steady_clock;
using pg::quote_ident_offline;
using pg::quote_literal_offline;

namespace {

std::string qualified(const QualifiedName& n) {
    return quote_ident_offline(n.schema) + "." + quote_ident_offline(n.name);
}

std::string random_nonce() {
    std::random_device rd;
    std::mt19937_64 gen((static_cast<uint64_t>(rd()) << 32) ^ rd() ^
                        static_cast<uint64_t>(Clock::now().time_since_epoch().count()));
    char buf[32];
    std::snprintf(buf, sizeof buf, "%016llx", static_cast<unsigned long long>(gen()));
    return buf;
}

/// lock_timeout (55P03) or, for a whole LOCK statement, statement_timeout
/// (57014 query_canceled).
bool lock_wait_expired(const pg::PgError& e) {
    return e.is_lock_timeout() || e.sqlstate() == "57014";
}

/// SQLSTATE 42710: raised by an after-commit ADD CONSTRAINT that already ran
/// before a crash (the other after-commit statements are idempotent).
constexpr const char* kDuplicateObject = "42710";

double ms_since(Clock::time_point t0) {
    return std::chrono::duration<double, std::milli>(Clock::now() - t0).count();
}

}  // namespace

std::vector<std::string> swap_statements(const SwapPlan& plan) {
    const auto& n = plan.names;
    std::vector<std::string> sql;
    sql.push_back("ALTER TABLE " + qualified(n.source) + " RENAME TO " +
                  quote_ident_offline(n.old.name));
    sql.push_back("ALTER TABLE " + qualified(n.shadow) + " RENAME TO " +
                  quote_ident_offline(n.source.name));
    for (const auto& r : plan.index_renames) {
        QualifiedName original{n.source.schema, r.original_name};
        sql.push_back("ALTER INDEX " + qualified(original) + " RENAME TO " +
                      quote_ident_offline(suffixed_name(r.original_name, "__pgshift_old")));
        sql.push_back("ALTER INDEX " + qualified({n.source.schema, r.shadow_name}) + " RENAME TO " +
                      quote_ident_offline(r.original_name));
    }
    for (const auto& s : plan.sequences) {
        if (s.identity) {
            // The shadow's identity column has its own sequence: continue it
            // from the source's so new ids never collide with copied ones.
            sql.push_back("SELECT setval(pg_get_serial_sequence(" +
                          quote_literal_offline(qualified(n.source)) + ", " +
                          quote_literal_offline(s.column) + "), s.last_value, s.is_called) FROM " +
                          s.sequence + " s");
        } else {
            // A serial column's sequence is shared through the copied DEFAULT;
            // ownership moves so that dropping the old table keeps it.
            sql.push_back("ALTER SEQUENCE " + s.sequence + " OWNED BY " + qualified(n.source) +
                          "." + quote_ident_offline(s.column));
        }
    }
    for (const auto& col : plan.identity_always_columns) {
        sql.push_back("ALTER TABLE " + qualified(n.source) + " ALTER COLUMN " +
                      quote_ident_offline(col) + " SET GENERATED ALWAYS");
    }
    sql.insert(sql.end(), plan.object_sql.begin(), plan.object_sql.end());
    sql.push_back(plan.done_sql);
    return sql;
}

std::vector<std::string> run_after_commit(pg::Connection& conn, const SwapPlan& plan) {
    std::vector<std::string> failed;
    for (const auto& sql : plan.after_commit_sql) {
        try {
            spdlog::info("after cutover: {}", sql);
            conn.exec(sql);
        } catch (const pg::PgError& e) {
            if (e.sqlstate() == kDuplicateObject) {
                spdlog::info("after cutover: already done before a restart");
                continue;
            }
            spdlog::error("after cutover: {} failed: {}; run it again by hand", sql, e.what());
            failed.push_back(sql + ": " + e.what());
        }
    }
    return failed;
}

std::string LockBlocker::describe() const {
    return "pid " + pid + " (user " + user + ", " + state + ", transaction open " +
           std::to_string(xact_age_s) + " s, query: " + query + ")";
}

std::vector<LockBlocker> find_lock_blockers(pg::Connection& conn, const QualifiedName& table,
                                            int min_age_s) {
    auto r = conn.exec_params(
        "SELECT a.pid, coalesce(a.usename::text, ''), coalesce(a.state, ''),"
        "       coalesce(extract(epoch FROM now() - a.xact_start)::int, 0),"
        "       left(regexp_replace(coalesce(a.query, ''), '\\s+', ' ', 'g'), 100)"
        "  FROM pg_stat_activity a"
        " WHERE a.pid IN (SELECT l.pid FROM pg_locks l"
        "                  WHERE l.relation = $1::regclass"
        "                    AND l.database = (SELECT oid FROM pg_database"
        "                                       WHERE datname = current_database()))"
        "   AND a.pid <> pg_backend_pid()"
        "   AND a.application_name NOT LIKE 'pgshift/%'"
        "   AND coalesce(now() - a.xact_start, '0') >= make_interval(secs => $2::int)"
        " ORDER BY a.xact_start",
        {qualified(table), std::to_string(min_age_s)});
    std::vector<LockBlocker> out;
    for (int i = 0; i < r.rows(); ++i) {
        out.push_back(
            {r.str(i, 0), r.str(i, 1), r.str(i, 2), static_cast<int>(r.i64(i, 3)), r.str(i, 4)});
    }
    return out;
}

CutoverController::Outcome CutoverController::end_failed_attempt(pg::Connection& lock_conn,
                                                                 Clock::time_point t0,
                                                                 double& block_ms,
                                                                 const pg::PgError& e) {
    lock_conn.rollback_quietly();
    block_ms = ms_since(t0);
    if (lock_wait_expired(e))
        return Outcome::LockTimeout;
    throw;  // called from a handler: rethrows the exception being handled
}

CutoverController::Outcome CutoverController::attempt(double& block_ms) {
    pg::ConnectOptions co;
    co.application_name = opts_.application_name;
    auto lock_conn = pg::Connection::open(opts_.conninfo, co);
    auto barrier_conn = pg::Connection::open(opts_.conninfo, co);
    catch_up_before_lock(barrier_conn);
    cancel_autovacuum(barrier_conn);
    lock_conn.exec("BEGIN");
    lock_conn.exec("SET LOCAL lock_timeout = " + std::to_string(opts_.lock_timeout_ms));
    auto t0 = Clock::now();
    try {
        lock_bounded(lock_conn, lock_table_);
    } catch (const pg::PgError& e) {
        return end_failed_attempt(lock_conn, t0, block_ms, e);
    }
    auto granted = Clock::now();
    timing_ = {std::chrono::duration<double, std::milli>(granted - t0).count(), 0, 0, 0, 0};
    try {
        std::string nonce = opts_.job_name + ":" + random_nonce();
        barrier_conn.exec_params("SELECT pg_logical_emit_message(true, 'pgshift', $1)", {nonce});
        // Counted from the grant: with the lock wait bounded by lock_timeout,
        // the application waits at most lock_timeout_ms + barrier_timeout_ms
        // (plus the swap statements) behind one attempt.
        auto deadline = granted + std::chrono::milliseconds(opts_.barrier_timeout_ms);
        while (!progress_.barrier_applied(nonce)) {
            if (progress_.stopping()) {
                throw CutoverFailed("the change stream stopped during cutover: " +
                                    progress_.error().value_or("stop requested"));
            }
            if (Clock::now() > deadline) {
                lock_conn.rollback_quietly();
                block_ms = ms_since(t0);
                return Outcome::BarrierTimeout;
            }
            std::this_thread::sleep_for(std::chrono::microseconds(200));
        }
        timing_.barrier_ms = ms_since(granted);
        // The table taking the live name, with its partitions, is locked
        // only now: before the barrier the applier still writes into it. Its
        // partitions may be held by autovacuum, which a lock request cancels
        // only after deadlock_timeout; waiting here, bounded, keeps the
        // statements below from waiting one lock_timeout each.
        auto swap_in_start = Clock::now();
        lock_bounded(lock_conn, swap_in_table_);
        timing_.swap_in_lock_ms = ms_since(swap_in_start);
        auto swap_start = Clock::now();
        for (const auto& sql : statements_)
            run_swap_statement(lock_conn, sql);
        timing_.swap_ms = ms_since(swap_start);
        test_pause_at("swap");
        auto commit_start = Clock::now();
        lock_conn.exec("COMMIT");
        timing_.commit_ms = ms_since(commit_start);
    } catch (const pg::PgError& e) {
        // Locking the table swapped in, or a swap statement waiting for a
        // lock on another relation (a referencing table, a view): bounded
        // like the first lock, and one more failed attempt, not a failed job.
        return end_failed_attempt(lock_conn, t0, block_ms, e);
    } catch (...) {
        lock_conn.rollback_quietly();
        throw;
    }
    block_ms = ms_since(t0);
    return Outcome::Done;
}

void CutoverController::cancel_autovacuum(pg::Connection& conn) {
    // An autovacuum worker on one of the partitions holds SHARE UPDATE
    // EXCLUSIVE; PostgreSQL cancels it for a conflicting lock request, but
    // only after deadlock_timeout (1 s), longer than lock_timeout_ms, so
    // every attempt would time out behind it. Cancel it first, as the server
    // would. Never a vacuum preventing wraparound: the server does not
    // cancel those either.
    auto r = conn.exec_params(
        "SELECT a.pid, l.relation::regclass::text, pg_cancel_backend(a.pid)"
        "  FROM pg_stat_activity a JOIN pg_locks l ON l.pid = a.pid"
        " WHERE a.backend_type = 'autovacuum worker' AND a.datname = current_database()"
        "   AND a.query NOT LIKE '%to prevent wraparound%'"
        "   AND l.relation IN (SELECT relid FROM pg_partition_tree($1::regclass)"
        "                      UNION ALL SELECT relid FROM pg_partition_tree($2::regclass))",
        {qualified(lock_table_), qualified(swap_in_table_)});
    for (int i = 0; i < r.rows(); ++i) {
        spdlog::info("cutover: cancelled autovacuum of {} (pid {}) before locking", r.str(i, 1),
                     r.str(i, 0));
    }
}

void CutoverController::lock_bounded(pg::Connection& conn, const QualifiedName& table) {
    // lock_timeout bounds each single lock wait, and LOCK on a partitioned
    // table waits once per partition; statement_timeout bounds the whole
    // statement, so the application waits at most lock_timeout_ms here.
    conn.exec("SET LOCAL statement_timeout = " + std::to_string(opts_.lock_timeout_ms) +
              "; LOCK TABLE " + qualified(table) +
              " IN ACCESS EXCLUSIVE MODE; SET LOCAL statement_timeout TO DEFAULT");
}

void CutoverController::run_swap_statement(pg::Connection& conn, const std::string& sql) {
    auto start = Clock::now();
    try {
        conn.exec(sql);
    } catch (const pg::PgError& e) {
        if (lock_wait_expired(e))
            spdlog::warn("cutover: lock_timeout in swap statement: {}", sql);
        throw;
    }
    // Every millisecond here is a millisecond the application waits; name
    // the statement when it is slow (e.g. waiting for autovacuum on the shadow).
    double ms = ms_since(start);
    if (ms > 50)
        spdlog::warn("cutover: swap statement took {:.1f} ms under the lock: {}", ms, sql);
}

void CutoverController::catch_up_before_lock(pg::Connection& conn) {
    // The lag seen by the controller is up to a second old. Waiting here, with
    // no lock held, until the applier has passed the WAL position of this
    // moment leaves only the last few milliseconds of writes to apply while
    // the application waits on the lock. An idle source table sends nothing,
    // so the position the decoder confirmed from keepalives counts too.
    auto r = conn.exec("SELECT pg_current_wal_insert_lsn()");
    uint64_t target = Lsn::parse(r.view(0, 0)).value_or(Lsn()).value();
    auto deadline = Clock::now() + std::chrono::seconds(2);
    auto reached = [&] {
        return std::max(progress_.applied_end.load(std::memory_order_acquire),
                        progress_.confirmed_flush.load(std::memory_order_acquire)) >= target;
    };
    while (!reached() && Clock::now() < deadline && !progress_.stopping()) {
        std::this_thread::sleep_for(std::chrono::milliseconds(1));
    }
}

void CutoverController::report_blockers(pg::Connection& conn) {
    for (const auto& b : find_lock_blockers(conn, lock_table_, opts_.long_transaction_s)) {
        spdlog::warn("cutover: {} holds or waits for a lock on {}; the lock attempts wait for it",
                     b.describe(), lock_table_.display());
        if (!opts_.cancel_blockers)
            continue;
        // pg_cancel_backend ends a running statement; a session idle in its
        // transaction keeps its locks (idle_in_transaction_session_timeout or
        // pg_terminate_backend end it).
        conn.exec_params("SELECT pg_cancel_backend($1::int)", {b.pid});
        spdlog::warn("cutover: cancelled the statement of pid {} ([cutover] cancel_blockers){}",
                     b.pid,
                     b.state.starts_with("idle in transaction")
                         ? "; it is idle in a transaction, which a cancel does not end"
                         : "");
    }
}

void CutoverController::give_up(pg::Connection& conn, int lock_timeouts, int barrier_timeouts) {
    std::string msg = "could not cut over " + lock_table_.display() + " in " +
                      std::to_string(opts_.max_attempts) + " attempts (" +
                      std::to_string(lock_timeouts) + " lock_timeout, " +
                      std::to_string(barrier_timeouts) +
                      " barrier timeout); the source is unchanged. ";
    if (lock_timeouts > 0) {
        auto blockers = find_lock_blockers(conn, lock_table_, 0);
        if (blockers.empty()) {
            msg += "No session holds a lock on it now. ";
        } else {
            msg += "Sessions holding or waiting for locks on it: ";
            for (size_t i = 0; i < blockers.size(); ++i)
                msg += (i ? "; " : "") + blockers[i].describe();
            msg += ". End or commit them (SELECT pg_terminate_backend(pid)), or ";
        }
        msg += "raise [cutover] lock_timeout_ms (" + std::to_string(opts_.lock_timeout_ms) +
               ") or max_attempts";
    } else {
        msg += "The applier did not confirm the barrier within [cutover] barrier_timeout_ms (" +
               std::to_string(opts_.barrier_timeout_ms) +
               " ms) while the table was locked: raise it, or cut over when the source writes less";
    }
    throw CutoverGaveUp(msg);
}

CutoverResult CutoverController::run() {
    pg::ConnectOptions co;
    co.application_name = opts_.application_name;
    auto conn = pg::Connection::open(opts_.conninfo, co);
    report_blockers(conn);
    std::mt19937 rng(std::random_device{}());
    int backoff_ms = 100;
    int lock_timeouts = 0;
    int barrier_timeouts = 0;
    double longest_ms = 0;
    for (int n = 1; n <= opts_.max_attempts; ++n) {
        if (progress_.stopping()) {
            if (auto err = progress_.error())
                throw CutoverFailed(*err);
            throw JobStopped("stopped before cutover");
        }
        double block_ms = 0;
        auto outcome = attempt(block_ms);
        longest_ms = std::max(longest_ms, block_ms);
        if (outcome == Outcome::Done) {
            spdlog::info(
                "cutover: {} swapped; source was locked for {:.1f} ms (attempt {}, longest "
                "attempt {:.1f} ms; lock wait {:.1f}, barrier {:.1f}, lock of {} {:.1f}, swap "
                "{:.1f}, commit {:.1f} ms)",
                lock_table_.display(), block_ms, n, longest_ms, timing_.lock_wait_ms,
                timing_.barrier_ms, swap_in_table_.display(), timing_.swap_in_lock_ms,
                timing_.swap_ms, timing_.commit_ms);
            return {block_ms, longest_ms, n};
        }
        if (outcome == Outcome::LockTimeout) {
            ++lock_timeouts;
            report_blockers(conn);
        } else {
            ++barrier_timeouts;
        }
        if (n == opts_.max_attempts)
            break;
        int jitter = std::uniform_int_distribution<int>(0, backoff_ms / 2)(rng);
        spdlog::warn("cutover attempt {}/{}: {} after {:.0f} ms; lock released, retrying in {} ms",
                     n, opts_.max_attempts,
                     outcome == Outcome::LockTimeout
                         ? "lock_timeout (" + std::to_string(opts_.lock_timeout_ms) +
                               " ms) expired waiting for other transactions on " +
                               lock_table_.display()
                         : "the applier did not confirm the barrier within barrier_timeout_ms (" +
                               std::to_string(opts_.barrier_timeout_ms) + " ms)",
                     block_ms, backoff_ms + jitter);
        std::this_thread::sleep_for(std::chrono::milliseconds(backoff_ms + jitter));
        backoff_ms = std::min(backoff_ms * 2, 5000);
    }
    give_up(conn, lock_timeouts, barrier_timeouts);
}

}  // namespace pgshift
