// `pgshift maintain [--dry-run]`: keeps a partitioned table healthy from cron.
//
//  1. premake: the partitions from the current one (now for time keys, the
//     largest key for integer keys) to `premake` ahead, same names and
//     bounds as the shadow got (compute_partitions), skipping any range an
//     existing partition already covers;
//  2. rows in the DEFAULT partition whose range has no partition are moved
//     into a new one without a long lock: the partition is built beside the
//     table (LIKE the parent, with its indexes), filled from DEFAULT, given a
//     CHECK constraint equal to its bound, and then, in one short
//     transaction under lock_timeout, DEFAULT is locked, the copy is
//     reconciled with DEFAULT (re-copied if rows changed meanwhile),
//     those rows are deleted from DEFAULT and the table is attached: the
//     CHECK constraint lets ATTACH skip scanning it. A lock timeout rolls
//     everything back and is retried with backoff ([cutover] max_attempts);
//  3. retention (after cutover only; during sync the source still holds the
//     rows): partitions older than `retention` intervals are detached -
//     DETACH ... CONCURRENTLY when there is no DEFAULT partition (it cannot
//     run in a transaction block; an interrupted one is completed with
//     FINALIZE on the next run), otherwise a short locked DETACH - then left
//     as tables, moved to `archive_schema`, written to a CSV file in
//     `archive_dir` and dropped, or dropped.
//
// With --handoff partman, steps 1 and 3 are left to pg_partman: step 2 runs,
// then the table is registered with pg_partman (maintain_partman.h). A table
// pg_partman already manages gets step 2 only.
//
// One run per job at a time: the session takes
// pg_try_advisory_lock(hashtext('pgshift.maintain'), hashtext(<job name>));
// a second run finds it held, says so and exits 0, which is what cron wants.
// Every step is idempotent, so a run interrupted anywhere is finished by the next.
#include <spdlog/spdlog.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <limits>
#include <memory>
#include <optional>
#include <thread>
#include <utility>

#include "commands.h"
#include "errors.h"
#include "maintain.h"
#include "maintain_partman.h"
#include "ops_target.h"

namespace pgshift {

namespace {

constexpr const char* kBoundConstraint = "pgshift_bound";
/// Table comment of a partition being archived to a file, followed by the path.
constexpr const char* kArchiveMarker = "pgshift maintain: archiving to ";

}  // namespace

void in_locked_transaction(pg::Connection& conn, const JobConfig& cfg, const std::string& what,
                           const std::function<void()>& fn) {
    for (int attempt = 1;; ++attempt) {
        try {
            conn.exec("BEGIN");
            conn.exec("SET LOCAL lock_timeout = '" + std::to_string(cfg.lock_timeout_ms) + "ms'");
            fn();
            conn.exec("COMMIT");
            return;
        } catch (const pg::PgError& e) {
            conn.rollback_quietly();
            if (!e.is_lock_timeout() || attempt >= cfg.max_attempts)
                throw;
            int ms = backoff_ms(attempt);
            spdlog::warn(
                "maintain: {}: lock not granted within {} ms (attempt {} of {}); retrying in {} ms",
                what, cfg.lock_timeout_ms, attempt, cfg.max_attempts, ms);
            std::this_thread::sleep_for(std::chrono::milliseconds(ms));
        } catch (...) {
            conn.rollback_quietly();
            throw;
        }
    }
}

namespace {

class Maintainer {
  public:
    /// `partman`: why premake and retention are pg_partman's job (it
    /// manages the table, or is about to), empty when they are ours.
    Maintainer(pg::Connection& conn, const JobConfig& cfg, const OpsTarget& t, bool dry_run,
               std::string partman)
        : conn_(conn), cfg_(cfg), t_(t), dry_(dry_run), partman_(std::move(partman)) {}

    int run() {
        parent_ = t_.partitioned.quoted();
        parts_ = list_partitions(conn_, t_);
        for (const auto& p : parts_) {
            if (p.is_default())
                default_ = &p;
        }
        if (!partman_.empty())
            say("skip", "premake, retention", partman_ + "; moving DEFAULT rows only");
        premake_and_move();
        if (cfg_.retention > 0 && partman_.empty()) {
            if (!t_.after_cutover) {
                say("skip", "retention",
                    "retention applies after cutover; the source still "
                    "holds every row");
            } else {
                retention();
            }
        }
        std::printf("maintain %s: %s%d created, %d filled from DEFAULT, %d expired\n",
                    t_.partitioned.display().c_str(), dry_ ? "(dry run) " : "", created_, moved_,
                    expired_);
        return kExitOk;
    }

  private:
    void say(const char* action, const std::string& what, const std::string& detail) {
        std::printf("%-8s %s  %s%s\n", action, what.c_str(), detail.c_str(),
                    dry_ ? "  (dry run)" : "");
        std::fflush(stdout);
    }

    std::string part_sql(const std::string& name) const {
        return conn_.qualified(t_.partitioned.schema, name);
    }
    std::string key() const { return conn_.ident(t_.key_column); }
    std::string range_cond(const PartitionBound& b) const {
        return key() + " >= " + conn_.literal(b.from) + " AND " + key() + " < " +
               conn_.literal(b.to);
    }
    std::string for_values(const PartitionBound& b) const {
        return "FOR VALUES FROM (" + conn_.literal(b.from) + ") TO (" + conn_.literal(b.to) + ")";
    }

    /// A table of that name in the parent's schema that is not a partition:
    /// our own leftover (it carries the bound constraint) is dropped, anything
    /// else is an error naming it.
    void clear_leftover(const std::string& name) {
        auto r = conn_.exec_params(
            "SELECT c.relispartition,"
            "       EXISTS (SELECT 1 FROM pg_constraint k WHERE k.conrelid = c.oid AND k.conname = "
            "$3)"
            "  FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace"
            " WHERE n.nspname = $1 AND c.relname = $2",
            {t_.partitioned.schema, name, kBoundConstraint});
        if (r.rows() == 0)
            return;
        if (!r.boolean(0, 0) && r.boolean(0, 1)) {
            say("cleanup", name, "dropping the unattached copy left by an interrupted run");
            if (!dry_)
                conn_.exec("DROP TABLE " + part_sql(name));
            return;
        }
        throw std::runtime_error("relation " +
                                 QualifiedName{t_.partitioned.schema, name}.display() +
                                 " already exists and is not a partition of " +
                                 t_.partitioned.display() + " for its range; rename or drop it");
    }

    /// CREATE TABLE of a premade partition; with a [subpartitioning] HASH
    /// level also its sub-partitions, named like the shadow's (shadow_ddl.h).
    std::vector<std::string> create_partition_sql(const PartitionBound& w) const {
        PartitionBound p = w;
        if (cfg_.sub_strategy == "hash")
            p = with_subpartitions({w}, compute_hash_partitions("", cfg_.sub_modulus))[0];
        return partition_create_sql(p, t_.partitioned, subpartition_method(cfg_), {});
    }

    std::vector<PartitionBound> grid(int64_t lo, int64_t hi, int64_t now, int premake) const {
        // Partitions are named after the user's table in every phase (shadow_ddl.h).
        return compute_partitions(cfg_.table.name, t_.key_kind, cfg_.interval, KeyRange{lo, hi},
                                  now, premake, false);
    }

    std::vector<std::pair<int64_t, int64_t>> units_of(const std::vector<PartitionBound>& bs) {
        std::vector<std::string> lits;
        for (const auto& b : bs) {
            lits.push_back(b.from);
            lits.push_back(b.to);
        }
        auto u = to_key_units(conn_, t_, lits);
        std::vector<std::pair<int64_t, int64_t>> out;
        for (size_t i = 0; i < bs.size(); ++i)
            out.emplace_back(u[2 * i], u[2 * i + 1]);
        return out;
    }

    void premake_and_move() {
        int64_t now = epoch_now();
        int64_t ref = now;
        if (t_.key_kind == KeyType::Integer) {
            auto r = conn_.exec("SELECT coalesce(max(" + key_units_expr(conn_, t_, "") +
                                "), 0) FROM " + parent_);
            ref = r.i64(0, 0);
        }
        std::vector<PartitionBound> wanted;
        if (partman_.empty())
            wanted = grid(ref, ref, ref, cfg_.premake);
        // Ranges of rows waiting in DEFAULT.
        std::vector<PartitionBound> from_default;
        if (default_) {
            std::string def = part_sql(default_->name);
            std::string u = key_units_expr(conn_, t_, "");
            auto r = conn_.exec("SELECT min(" + u + "), max(" + u + ") FROM ONLY " + def);
            if (!r.is_null(0, 0)) {
                auto cands = grid(r.i64(0, 0), r.i64(0, 1), r.i64(0, 0), 0);
                for (const auto& c : cands) {
                    auto n =
                        conn_.exec("SELECT count(*) FROM ONLY " + def + " WHERE " + range_cond(c));
                    if (n.i64(0, 0) > 0)
                        from_default.push_back(c);
                }
            }
        }
        for (const auto& c : from_default) {
            if (std::none_of(wanted.begin(), wanted.end(),
                             [&](const PartitionBound& w) { return w.from == c.from; }))
                wanted.push_back(c);
        }
        auto units = units_of(wanted);
        for (size_t i = 0; i < wanted.size(); ++i) {
            const auto& w = wanted[i];
            if (overlaps_any(units[i].first, units[i].second, parts_))
                continue;
            clear_leftover(w.name);
            bool has_rows = std::any_of(from_default.begin(), from_default.end(),
                                        [&](const PartitionBound& d) { return d.from == w.from; });
            if (has_rows) {
                move_from_default(w);
            } else {
                say("create", w.name, for_values(w));
                if (!dry_) {
                    in_locked_transaction(conn_, cfg_, "create " + w.name, [&] {
                        for (const auto& sql : create_partition_sql(w))
                            conn_.exec(sql);
                    });
                }
                ++created_;
            }
        }
    }

    std::string insert_columns() {
        auto r = conn_.exec_params(
            "SELECT attname FROM pg_attribute WHERE attrelid = to_regclass($1) AND attnum > 0"
            " AND NOT attisdropped AND attgenerated = '' ORDER BY attnum",
            {parent_});
        std::string cols;
        for (int i = 0; i < r.rows(); ++i)
            cols += (i ? ", " : "") + conn_.ident(r.view(i, 0));
        return cols;
    }

    void move_from_default(const PartitionBound& b) {
        std::string def = part_sql(default_->name);
        std::string target = part_sql(b.name);
        auto n = conn_.exec("SELECT count(*) FROM ONLY " + def + " WHERE " + range_cond(b));
        say("move", b.name,
            std::to_string(n.i64(0, 0)) + " row(s) from " + default_->name + ", " + for_values(b));
        ++moved_;
        if (dry_)
            return;
        std::string cols = insert_columns();
        std::string copy = "INSERT INTO " + target + " (" + cols + ") SELECT " + cols +
                           " FROM ONLY " + def + " WHERE " + range_cond(b);
        // Built outside any lock the application would notice.
        conn_.exec("CREATE TABLE " + target + " (LIKE " + parent_ +
                   " INCLUDING DEFAULTS INCLUDING CONSTRAINTS INCLUDING GENERATED INCLUDING INDEXES"
                   " INCLUDING STORAGE INCLUDING COMMENTS)");
        conn_.exec(copy);
        conn_.exec("ALTER TABLE " + target + " ADD CONSTRAINT " + conn_.ident(kBoundConstraint) +
                   " CHECK (" + key() + " IS NOT NULL AND " + range_cond(b) + ")");
        std::string sums_def =
            "SELECT count(*), coalesce(sum(hashtext(d::text)::bigint), 0) FROM (SELECT " + cols +
            " FROM ONLY " + def + " WHERE " + range_cond(b) + ") d";
        std::string sums_new =
            "SELECT count(*), coalesce(sum(hashtext(d::text)::bigint), 0) FROM (SELECT " + cols +
            " FROM " + target + ") d";
        in_locked_transaction(conn_, cfg_, "attach " + b.name, [&] {
            conn_.exec("LOCK TABLE " + def + " IN ACCESS EXCLUSIVE MODE");
            auto a = conn_.exec(sums_def), c = conn_.exec(sums_new);
            if (a.str(0, 0) != c.str(0, 0) || a.str(0, 1) != c.str(0, 1)) {
                // Rows in DEFAULT changed since the copy: copy again, now under the lock.
                conn_.exec("DELETE FROM " + target);
                conn_.exec(copy);
            }
            conn_.exec("DELETE FROM ONLY " + def + " WHERE " + range_cond(b));
            conn_.exec("ALTER TABLE " + parent_ + " ATTACH PARTITION " + target + " " +
                       for_values(b));
            conn_.exec("ALTER TABLE " + target + " DROP CONSTRAINT " +
                       conn_.ident(kBoundConstraint));
        });
    }

    void retention() {
        if (cfg_.retention_action == RetentionAction::File)
            finish_interrupted_files();
        int64_t oldest = 0;
        bool any = false;
        for (const auto& p : parts_) {
            if (auto r = unit_range(p); r && r->first != std::numeric_limits<int64_t>::min()) {
                oldest = any ? std::min(oldest, r->first) : r->first;
                any = true;
            }
        }
        if (!any)
            return;
        int64_t ref = epoch_now();
        if (t_.key_kind == KeyType::Integer) {
            auto r =
                conn_.exec("SELECT max(" + key_units_expr(conn_, t_, "") + ") FROM " + parent_);
            if (r.is_null(0, 0))
                return;
            ref = r.i64(0, 0);
        }
        if (ref < oldest)
            return;
        auto slots = grid(oldest, ref, ref, 0);
        auto cutoff = retention_cutoff(slots, cfg_.retention);
        if (!cutoff)
            return;
        int64_t cutoff_units = to_key_units(conn_, t_, {*cutoff})[0];
        for (const PartitionInfo* p : expired_partitions(parts_, cutoff_units))
            expire(*p, *cutoff);
    }

    const char* action_name() const {
        switch (cfg_.retention_action) {
            case RetentionAction::Drop:
                return "drop";
            case RetentionAction::Archive:
                return "archive";
            case RetentionAction::File:
                return "file";
            case RetentionAction::Detach:
                break;
        }
        return "detach";
    }

    /// <archive_dir>/<schema>.<partition>.csv; '/' in names becomes '_'.
    std::string archive_path(const std::string& schema, const std::string& name) const {
        std::string file = schema + "." + name + ".csv";
        std::replace(file.begin(), file.end(), '/', '_');
        return cfg_.archive_dir + "/" + file;
    }

    std::string archive_marker(const std::string& path) const {
        return std::string(kArchiveMarker) + path;
    }

    void expire(const PartitionInfo& p, const std::string& cutoff) {
        std::string part = conn_.qualified(p.schema, p.name);
        std::string how = p.detach_pending ? "DETACH ... FINALIZE (an earlier DETACH CONCURRENTLY "
                                             "was interrupted)"
                          : default_       ? "locked DETACH (a DEFAULT partition exists)"
                                           : "DETACH CONCURRENTLY";
        std::string then;
        if (cfg_.retention_action == RetentionAction::Archive)
            then = ", then SET SCHEMA " + quote_identifier_if_needed(cfg_.archive_schema);
        else if (cfg_.retention_action == RetentionAction::File)
            then = ", COPY to " + archive_path(p.schema, p.name) + ", then DROP";
        say(action_name(), p.name,
            p.bound_expr + ", older than " + std::to_string(cfg_.retention) +
                " interval(s) (before " + cutoff + "); " + how + then);
        ++expired_;
        if (dry_)
            return;
        if (cfg_.retention_action == RetentionAction::File) {
            // The file is complete before anything is detached, and the
            // comment lets the next run finish a run interrupted after the
            // detach (finish_interrupted_files).
            std::string path = archive_path(p.schema, p.name);
            copy_to_file(part, path);
            conn_.exec("COMMENT ON TABLE " + part + " IS " + conn_.literal(archive_marker(path)));
        }
        detach(p, part);
        if (cfg_.retention_action == RetentionAction::Archive) {
            conn_.exec("CREATE SCHEMA IF NOT EXISTS " + conn_.ident(cfg_.archive_schema));
            conn_.exec("ALTER TABLE " + part + " SET SCHEMA " + conn_.ident(cfg_.archive_schema));
        } else if (cfg_.retention_action == RetentionAction::File) {
            // Detached, the table no longer changes: copy again so the file
            // holds exactly what is dropped.
            copy_to_file(part, archive_path(p.schema, p.name));
            conn_.exec("DROP TABLE " + part);
        } else if (cfg_.retention_action == RetentionAction::Drop) {
            conn_.exec("DROP TABLE " + part);
        }
    }

    void detach(const PartitionInfo& p, const std::string& part) {
        conn_.exec("SET lock_timeout = '" + std::to_string(cfg_.lock_timeout_ms) + "ms'");
        bool pending = p.detach_pending;
        for (int attempt = 1;; ++attempt) {
            try {
                if (pending) {
                    conn_.exec("ALTER TABLE " + parent_ + " DETACH PARTITION " + part +
                               " FINALIZE");
                } else if (default_) {
                    in_locked_transaction(conn_, cfg_, "detach " + p.name, [&] {
                        conn_.exec("ALTER TABLE " + parent_ + " DETACH PARTITION " + part);
                    });
                } else {
                    conn_.exec("ALTER TABLE " + parent_ + " DETACH PARTITION " + part +
                               " CONCURRENTLY");
                }
                break;
            } catch (const pg::PgError& e) {
                if (!e.is_lock_timeout() || attempt >= cfg_.max_attempts)
                    throw;
                auto r = conn_.exec_params(
                    "SELECT inhdetachpending FROM pg_inherits WHERE inhrelid = to_regclass($1)",
                    {part});
                if (r.rows() == 0)
                    break;  // detached after all
                pending = r.boolean(0, 0);
                std::this_thread::sleep_for(std::chrono::milliseconds(backoff_ms(attempt)));
            }
        }
        conn_.exec("RESET lock_timeout");
    }

    /// Writes every row of `relation` as CSV with a header to `path`
    /// (through path.tmp, fsync'ed and renamed, so a file with the final
    /// name is always complete). Returns the number of rows.
    int64_t copy_to_file(const std::string& relation, const std::string& path) {
        std::string tmp = path + ".tmp";
        std::FILE* f = std::fopen(tmp.c_str(), "wb");
        if (f == nullptr) {
            throw std::runtime_error("cannot write " + tmp + ": " + std::strerror(errno) +
                                     "; check [maintain] archive_dir in " + cfg_.path);
        }
        std::unique_ptr<std::FILE, int (*)(std::FILE*)> file(f, &std::fclose);
        conn_.start_copy("COPY (SELECT * FROM " + relation + ") TO STDOUT (FORMAT csv, HEADER)",
                         PGRES_COPY_OUT);
        while (true) {
            char* buf = nullptr;
            int n = PQgetCopyData(conn_.raw(), &buf, 0);
            if (n == -2)
                conn_.throw_error("COPY of " + relation + " to " + tmp);
            if (n < 0)
                break;
            std::unique_ptr<char, void (*)(void*)> owned(buf, &PQfreemem);
            if (std::fwrite(buf, 1, static_cast<size_t>(n), f) != static_cast<size_t>(n)) {
                throw std::runtime_error("cannot write " + tmp + ": " + std::strerror(errno));
            }
        }
        int64_t rows = conn_.finish_copy_out().affected();
        if (std::fflush(f) != 0 || ::fsync(fileno(f)) != 0)
            throw std::runtime_error("cannot write " + tmp + ": " + std::strerror(errno));
        file.reset();
        if (std::rename(tmp.c_str(), path.c_str()) != 0) {
            throw std::runtime_error("cannot rename " + tmp + " to " + path + ": " +
                                     std::strerror(errno));
        }
        return rows;
    }

    /// Tables detached for retention_action = file whose run stopped before
    /// the DROP: copied again and dropped.
    void finish_interrupted_files() {
        auto r = conn_.exec_params(
            "SELECT n.nspname, c.relname, obj_description(c.oid, 'pg_class')"
            "  FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace"
            " WHERE n.nspname = $1 AND c.relkind IN ('r', 'p') AND NOT c.relispartition"
            "   AND obj_description(c.oid, 'pg_class') LIKE $2",
            {t_.partitioned.schema, std::string(kArchiveMarker) + "%"});
        for (int i = 0; i < r.rows(); ++i) {
            std::string path = archive_path(r.str(i, 0), r.str(i, 1));
            if (r.str(i, 2) != archive_marker(path))
                continue;  // archived under another archive_dir: left for the user
            say("file", r.str(i, 1), "finishing an interrupted run: COPY to " + path + ", DROP");
            ++expired_;
            if (dry_)
                continue;
            std::string table = conn_.qualified(r.view(i, 0), r.view(i, 1));
            copy_to_file(table, path);
            conn_.exec("DROP TABLE " + table);
        }
    }

    pg::Connection& conn_;
    const JobConfig& cfg_;
    const OpsTarget& t_;
    bool dry_;
    std::string partman_;
    std::string parent_;
    std::vector<PartitionInfo> parts_;
    const PartitionInfo* default_ = nullptr;
    int created_ = 0, moved_ = 0, expired_ = 0;
};

}  // namespace

int maintain_command(const JobConfig& cfg, bool dry_run, bool handoff_partman) {
    auto conn = open_ops_connection(cfg, "maintain");
    OpsTarget t = resolve_target(conn, cfg);
    std::optional<PartmanHandoff> handoff;
    if (handoff_partman) {
        handoff.emplace(conn, cfg, t, dry_run);
        handoff->check();
    }
    if (!dry_run) {
        auto r = conn.exec_params(
            "SELECT pg_try_advisory_lock(hashtext('pgshift.maintain'), hashtext($1))",
            {cfg.job_name});
        if (!r.boolean(0, 0)) {
            std::printf(
                "maintain %s: another `pgshift maintain` of job %s is running; nothing "
                "done\n",
                t.partitioned.display().c_str(), cfg.job_name.c_str());
            return kExitOk;
        }
    }
    // The session ends with the process, which releases the advisory lock.
    std::string partman;
    if (auto schema = partman_manager(conn, t)) {
        partman = "pg_partman (schema " + *schema + ") manages " + t.partitioned.display() +
                  ": its run_maintenance() premakes and applies retention";
    } else if (handoff) {
        partman = "handed off to pg_partman below";
    }
    int rc = Maintainer(conn, cfg, t, dry_run, partman).run();
    if (rc != kExitOk || !handoff)
        return rc;
    return handoff->apply();
}

}  // namespace pgshift
