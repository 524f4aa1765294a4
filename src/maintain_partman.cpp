#include "maintain_partman.h"

#include <cstdio>
#include <stdexcept>
#include <vector>

#include "errors.h"
#include "maintain.h"
#include "phase_controller.h"

namespace pgshift {

namespace {

constexpr size_t kMaxListed = 20;

std::optional<std::string> partman_schema(pg::Connection& conn) {
    auto r = conn.exec(
        "SELECT n.nspname FROM pg_extension e JOIN pg_namespace n ON n.oid = e.extnamespace"
        " WHERE e.extname = 'pg_partman'");
    if (r.rows() == 0)
        return std::nullopt;
    return r.str(0, 0);
}

/// A PostgreSQL text[] literal of the values, for one-round-trip queries.
std::string text_array(const std::vector<std::string>& values) {
    std::string arr = "{";
    for (size_t i = 0; i < values.size(); ++i) {
        if (i)
            arr += ',';
        arr += '"';
        for (char c : values[i]) {
            if (c == '"' || c == '\\')
                arr += '\\';
            arr += c;
        }
        arr += '"';
    }
    return arr + "}";
}

const char* strategy_name(char partstrat) {
    switch (partstrat) {
        case 'l':
            return "LIST";
        case 'h':
            return "HASH";
        default:
            return "RANGE";
    }
}

}  // namespace

std::optional<std::string> partman_manager(pg::Connection& conn, const OpsTarget& t) {
    auto schema = partman_schema(conn);
    if (!schema)
        return std::nullopt;
    auto r = conn.exec_params(
        "SELECT 1 FROM " + conn.ident(*schema) + ".part_config WHERE parent_table = $1",
        {t.partitioned.schema + "." + t.partitioned.name});
    if (r.rows() == 0)
        return std::nullopt;
    return schema;
}

void PartmanHandoff::say(const char* action, const std::string& what,
                         const std::string& detail) const {
    std::printf("%-8s %s  %s%s\n", action, what.c_str(), detail.c_str(), dry_ ? "  (dry run)" : "");
    std::fflush(stdout);
}

std::string PartmanHandoff::fn(const std::string& name) const {
    return quote_identifier_if_needed(schema_) + "." + name;
}

std::string PartmanHandoff::parent_text() const {
    // part_config.parent_table is "schema.table" without quotes.
    return t_.partitioned.schema + "." + t_.partitioned.name;
}

void PartmanHandoff::check() {
    check_installed();
    check_converted();
    check_strategy();
    check_config();
    check_time_zone();
    check_names();
}

void PartmanHandoff::check_installed() {
    auto r = conn_.exec(
        "SELECT n.nspname, e.extversion FROM pg_extension e"
        " JOIN pg_namespace n ON n.oid = e.extnamespace WHERE e.extname = 'pg_partman'");
    std::string create =
        "CREATE SCHEMA partman; CREATE EXTENSION pg_partman SCHEMA partman; (as a superuser, in "
        "database " +
        conn_.database() + ")";
    if (r.rows() == 0) {
        auto a = conn_.exec("SELECT 1 FROM pg_available_extensions WHERE name = 'pg_partman'");
        if (a.rows() == 0) {
            throw PrerequisiteError(
                "pg_partman is not available on the database server: install the package "
                "postgresql-" +
                std::to_string(conn_.server_version() / 10000) +
                "-partman there (apt-get install postgresql-" +
                std::to_string(conn_.server_version() / 10000) + "-partman), then run " + create +
                " and hand off again");
        }
        throw PrerequisiteError("pg_partman is not installed in database " + conn_.database() +
                                ": run " + create + " and hand off again");
    }
    schema_ = r.str(0, 0);
    version_ = r.str(0, 1);
    if (version_.rfind("4.", 0) != 0) {
        throw PrerequisiteError(
            "pg_partman " + version_ + " is installed (schema " + schema_ +
            "); pgshift hands off to the pg_partman 4.x API only (create_parent() with p_type "
            "'native', as in Debian's postgresql-15-partman 4.7); register the table by hand with "
            "this version's create_parent()");
    }
}

void PartmanHandoff::check_converted() const {
    if (!t_.after_cutover) {
        throw PrerequisiteError("job " + cfg_.job_name + " has not cut over yet (phase " +
                                (t_.phase ? to_string(*t_.phase) : "none") +
                                "): the partitioned table is still the "
                                "shadow " +
                                t_.partitioned.display() +
                                ". Hand off after `pgshift cutover` and `pgshift finalize -c " +
                                cfg_.path + "`");
    }
    if (t_.phase == Phase::Reverse) {
        throw PrerequisiteError("job " + cfg_.job_name +
                                " still streams back to the old table (phase reverse), and a "
                                "`pgshift rollback` would make " +
                                t_.partitioned.display() +
                                " the unpartitioned table again; run `pgshift finalize -c " +
                                cfg_.path + "` first, then hand off");
    }
}

void PartmanHandoff::check_strategy() {
    const std::string parent = t_.partitioned.display();
    if (t_.partitioned.schema.find('.') != std::string::npos ||
        t_.partitioned.name.find('.') != std::string::npos) {
        throw PrerequisiteError("pg_partman does not support names with periods: " + parent +
                                "; keep running `pgshift maintain` from cron");
    }
    auto r = conn_.exec_params(
        "SELECT p.partstrat, p.partnatts,"
        "       EXISTS (SELECT 1 FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid"
        "                WHERE i.inhparent = p.partrelid AND c.relkind = 'p')"
        "  FROM pg_partitioned_table p WHERE p.partrelid = to_regclass($1)",
        {t_.partitioned.quoted()});
    char strat = r.view(0, 0)[0];
    if (strat != 'r') {
        throw PrerequisiteError(parent + " is partitioned by " + strategy_name(strat) +
                                "; pg_partman 4.x manages only RANGE partitioning by one time or "
                                "integer column. Keep running `pgshift maintain -c " +
                                cfg_.path + "` from cron");
    }
    if (r.i64(0, 1) != 1) {
        throw PrerequisiteError(parent +
                                " is partitioned by RANGE on several columns; pg_partman 4.x "
                                "manages single-column sets only. Keep running `pgshift maintain`");
    }
    if (r.boolean(0, 2)) {
        throw PrerequisiteError(
            "partitions of " + parent +
            " are themselves partitioned; pg_partman 4.x's create_parent() would add plain "
            "partitions next to them. Keep running `pgshift maintain -c " +
            cfg_.path + "` from cron");
    }
}

void PartmanHandoff::check_config() const {
    if (cfg_.premake < 1) {
        throw PrerequisiteError(
            "[partitioning] premake = 0 cannot be handed off: pg_partman needs premake >= 1 "
            "(part_config positive_premake_check); set premake = 1 or more in " +
            cfg_.path);
    }
    if (cfg_.retention_action == RetentionAction::File) {
        throw PrerequisiteError(
            "[maintain] retention_action = file cannot be handed off: pg_partman only detaches, "
            "drops or moves expired partitions to a schema (retention_schema; its "
            "dump_partition.py writes them to files). Use retention_action = archive in " +
            cfg_.path + ", or keep running `pgshift maintain` from cron");
    }
    if (auto problem = partman_interval_problem(cfg_.interval)) {
        throw PrerequisiteError("[partitioning] interval = " + cfg_.interval.pg_interval() +
                                " cannot be handed off: " + *problem +
                                ". Keep running `pgshift maintain -c " + cfg_.path + "` from cron");
    }
}

void PartmanHandoff::check_time_zone() const {
    if (t_.key_kind != KeyType::TimestampTz)
        return;
    // A session as cron's psql or pg_partman_bgw would open it: no TimeZone
    // of ours, so the role's, database's or server's setting applies.
    pg::ConnectOptions co;
    co.application_name = job_application_name(cfg_) + "/maintain";
    auto plain = pg::Connection::open(cfg_.dsn, co);
    auto r = plain.exec(
        "SELECT current_setting('TimeZone'),"
        "       extract(timezone from '2026-01-15 12:00+00'::timestamptz) = 0"
        "   AND extract(timezone from '2026-07-15 12:00+00'::timestamptz) = 0,"
        "       current_user");
    if (!r.boolean(0, 1)) {
        throw PrerequisiteError(
            "new sessions of role " + r.str(0, 2) + " in database " + conn_.database() +
            " use TimeZone " + r.str(0, 0) + ", but pg_partman computes the bounds and names of " +
            t_.partitioned.display() +
            "'s timestamptz partitions in the session's time zone and "
            "pgshift made them in UTC: run ALTER DATABASE " +
            conn_.ident(conn_.database()) +
            " SET TimeZone = 'UTC' (or ALTER ROLE <the role that runs run_maintenance> SET "
            "TimeZone = 'UTC'), then hand off again");
    }
}

void PartmanHandoff::check_names() {
    std::vector<std::string> problems;
    std::vector<const PartitionInfo*> ranged;
    auto parts = list_partitions(conn_, t_);
    for (const auto& p : parts) {
        if (p.is_default())
            continue;
        if (!p.from_units || !p.to_units) {
            problems.push_back(p.name + " " + p.bound_expr +
                               ": an unbounded range pg_partman cannot manage; split or drop it");
            continue;
        }
        ranged.push_back(&p);
    }
    std::vector<std::string> from, to;
    for (const auto* p : ranged) {
        from.push_back(p->bound->from);
        to.push_back(p->bound->to);
    }
    pg::Result r;
    if (!ranged.empty() && t_.key_kind == KeyType::Integer) {
        r = conn_.exec_params(
            "SELECT " + fn("check_name_length") +
                "($1, u.f, true), u.f::bigint >= 0"
                "   AND u.f::bigint + $2::bigint = u.t::bigint"
                " FROM unnest($3::text[], $4::text[]) WITH ORDINALITY u(f, t, i)"
                " ORDER BY u.i",
            {t_.partitioned.name, cfg_.interval.pg_interval(), text_array(from), text_array(to)});
    } else if (!ranged.empty()) {
        // The session's TimeZone is UTC (open_ops_connection), as when the
        // partitions were named.
        r = conn_.exec_params(
            "SELECT " + fn("check_name_length") +
                "($1, to_char(u.f::timestamptz, $2), true),"
                "       u.f::timestamptz + $3::interval = u.t::timestamptz"
                " FROM unnest($4::text[], $5::text[]) WITH ORDINALITY u(f, t, i) ORDER BY u.i",
            {t_.partitioned.name, partman_datetime_string(cfg_.interval),
             cfg_.interval.pg_interval(), text_array(from), text_array(to)});
    }
    for (size_t i = 0; i < ranged.size(); ++i) {
        const PartitionInfo& p = *ranged[i];
        std::string want = r.str(static_cast<int>(i), 0);
        if (!r.boolean(static_cast<int>(i), 1)) {
            problems.push_back(p.name + " " + p.bound_expr + ": not one interval of " +
                               cfg_.interval.pg_interval() +
                               " starting at or above 0, which pg_partman assumes");
        } else if (want != p.name) {
            problems.push_back(p.name + ": pg_partman expects " + want + "  (ALTER TABLE " +
                               conn_.qualified(p.schema, p.name) + " RENAME TO " +
                               conn_.ident(want) + ";)");
        }
    }
    if (problems.empty())
        return;
    std::string msg =
        std::to_string(problems.size()) + " partition(s) of " + t_.partitioned.display() +
        " do not match what pg_partman " + version_ +
        " expects (it finds partitions by name: <table>_p followed by " +
        (t_.key_kind == KeyType::Integer
             ? std::string("the lower bound")
             : "to_char(lower bound, '" + partman_datetime_string(cfg_.interval) + "')") +
        "); nothing was changed:";
    for (size_t i = 0; i < problems.size() && i < kMaxListed; ++i)
        msg += "\n  " + problems[i];
    if (problems.size() > kMaxListed)
        msg += "\n  ... and " + std::to_string(problems.size() - kMaxListed) + " more";
    throw PrerequisiteError(msg);
}

std::string PartmanHandoff::create_parent_sql() {
    std::optional<std::string> start;
    for (const auto& p : list_partitions(conn_, t_)) {
        if (!p.is_default() && p.to_units)
            start = p.bound->to;  // ordered by lower bound: the newest wins
    }
    // Starting right after the newest partition, create_parent() adds that
    // one partition (time) or premake + 1 (integer) and leaves the existing
    // ones alone; with no partition to add it would skip its DEFAULT
    // partition and warn.
    return "SELECT " + fn("create_parent") + "(p_parent_table := " + conn_.literal(parent_text()) +
           ", p_control := " + conn_.literal(t_.key_column) + ", p_type := 'native'" +
           ", p_interval := " + conn_.literal(cfg_.interval.pg_interval()) +
           ", p_premake := " + std::to_string(cfg_.premake) +
           (start ? ", p_start_partition := " + conn_.literal(*start) : std::string()) + ")";
}

std::string PartmanHandoff::config_update_sql(bool only_changes) {
    auto retention = partman_retention(cfg_.interval, cfg_.retention);
    bool archive = cfg_.retention_action == RetentionAction::Archive;
    std::optional<std::string> retention_schema;
    if (archive)
        retention_schema = cfg_.archive_schema;
    struct Column {
        const char* name;
        std::string value;    ///< SQL literal
        std::string compare;  ///< SQL: true when the stored value already equals it
    };
    auto lit = [&](const std::optional<std::string>& v) {
        return v ? conn_.literal(*v) : std::string("NULL");
    };
    std::string keep = cfg_.retention_action == RetentionAction::Drop ? "false" : "true";
    std::string infinite = t_.key_kind == KeyType::Integer ? "false" : "true";
    std::vector<Column> cols{
        {"premake", std::to_string(cfg_.premake), "premake = " + std::to_string(cfg_.premake)},
        {"retention", lit(retention), "retention IS NOT DISTINCT FROM " + lit(retention)},
        {"retention_keep_table", keep, "retention_keep_table = " + keep},
        {"retention_schema", lit(retention_schema),
         "retention_schema IS NOT DISTINCT FROM " + lit(retention_schema)},
        // pgshift premakes from now for time keys, whether or not rows arrive.
        {"infinite_time_partitions", infinite, "infinite_time_partitions = " + infinite},
        {"automatic_maintenance", "'on'", "automatic_maintenance = 'on'"},
    };
    std::string sel;
    for (const auto& c : cols)
        sel += (sel.empty() ? "" : ", ") + c.compare;
    auto same = conn_.exec_params(
        "SELECT " + sel + " FROM " + fn("part_config") + " WHERE parent_table = $1",
        {parent_text()});
    std::string set;
    for (size_t i = 0; i < cols.size(); ++i) {
        if (only_changes && same.rows() == 1 && same.boolean(0, static_cast<int>(i)))
            continue;
        set += (set.empty() ? "" : ", ") + std::string(cols[i].name) + " = " + cols[i].value;
    }
    if (set.empty())
        return "";
    return "UPDATE " + fn("part_config") + " SET " + set +
           " WHERE parent_table = " + conn_.literal(parent_text());
}

void PartmanHandoff::register_table(const std::string& create_sql, const std::string& update_sql) {
    const std::string parent = t_.partitioned.quoted();
    std::string datetime_string = partman_datetime_string(cfg_.interval);
    in_locked_transaction(conn_, cfg_, "hand off " + t_.partitioned.display(), [&] {
        conn_.exec("LOCK TABLE " + parent + " IN ACCESS EXCLUSIVE MODE");
        auto find_default = [&] {
            return conn_.exec_params(
                "SELECT n.nspname, c.relname FROM pg_inherits i"
                "  JOIN pg_class c ON c.oid = i.inhrelid"
                "  JOIN pg_namespace n ON n.oid = c.relnamespace"
                " WHERE i.inhparent = to_regclass($1)"
                "   AND pg_get_expr(c.relpartbound, c.oid) = 'DEFAULT'",
                {parent});
        };
        auto d = find_default();
        bool had_default = d.rows() == 1;
        if (had_default) {
            std::string def = conn_.qualified(d.view(0, 0), d.view(0, 1));
            if (conn_.exec("SELECT EXISTS (SELECT 1 FROM ONLY " + def + ")").boolean(0, 0)) {
                throw std::runtime_error(
                    "rows arrived in the DEFAULT partition " + def +
                    " during the hand-off; nothing was changed. Run `pgshift maintain -c " +
                    cfg_.path + " --handoff partman` again: it moves them first");
            }
            conn_.exec("ALTER TABLE " + parent + " DETACH PARTITION " + def);
            conn_.exec("DROP TABLE " + def);
        }
        if (cfg_.retention_action == RetentionAction::Archive)
            conn_.exec("CREATE SCHEMA IF NOT EXISTS " + conn_.ident(cfg_.archive_schema));
        conn_.exec(create_sql);
        if (!update_sql.empty())
            conn_.exec(update_sql);
        // The table keeps its DEFAULT partition, or its lack of one.
        auto now = find_default();
        if (had_default && now.rows() == 0) {
            auto n = conn_.exec_params("SELECT " + fn("check_name_length") + "($1, '_default')",
                                       {t_.partitioned.name});
            conn_.exec("CREATE TABLE " + conn_.qualified(t_.partitioned.schema, n.view(0, 0)) +
                       " PARTITION OF " + parent + " DEFAULT");
        } else if (!had_default && now.rows() == 1) {
            conn_.exec("DROP TABLE " + conn_.qualified(now.view(0, 0), now.view(0, 1)));
        }
        auto got = conn_.exec_params(
            "SELECT datetime_string FROM " + fn("part_config") + " WHERE parent_table = $1",
            {parent_text()});
        if (t_.key_kind != KeyType::Integer && got.str(0, 0) != datetime_string) {
            throw std::runtime_error("pg_partman " + version_ + " chose datetime_string '" +
                                     got.str(0, 0) + "' for " + t_.partitioned.display() +
                                     ", pgshift expected '" + datetime_string +
                                     "'; nothing was changed. Keep running `pgshift maintain`");
        }
    });
}

int PartmanHandoff::apply() {
    const std::string parent = t_.partitioned.display();
    std::string same_interval = t_.key_kind == KeyType::Integer
                                    ? "partition_interval::bigint = $2::bigint"
                                    : "partition_interval::interval = $2::interval";
    auto existing = conn_.exec_params("SELECT control, partition_type, " + same_interval +
                                          " FROM " + fn("part_config") + " WHERE parent_table = $1",
                                      {parent_text(), cfg_.interval.pg_interval()});
    if (existing.rows() == 1) {
        if (existing.str(0, 0) != t_.key_column || existing.str(0, 1) != "native" ||
            !existing.boolean(0, 2)) {
            throw PrerequisiteError(
                parent + " is already registered with pg_partman differently (control " +
                existing.str(0, 0) + ", type " + existing.str(0, 1) +
                ") from the job file (control " + t_.key_column + ", native, interval " +
                cfg_.interval.pg_interval() + "); to register it again, remove that row: DELETE " +
                "FROM " + fn("part_config") +
                " WHERE parent_table = " + conn_.literal(parent_text()) + ";");
        }
        std::string update = config_update_sql(true);
        if (update.empty()) {
            say("skip", parent, "already handed off; part_config matches " + cfg_.path);
        } else {
            say("config", parent, update);
            if (!dry_)
                conn_.exec(update);
        }
    } else {
        std::string create = create_parent_sql();
        std::string update = config_update_sql(false);
        bool had_default = false;
        for (const auto& p : list_partitions(conn_, t_)) {
            if (p.is_default()) {
                had_default = true;
                say("drop", p.name,
                    "DEFAULT partition, emptied above; create_parent() makes its own");
            }
        }
        if (!had_default) {
            say("keep", parent,
                "without a DEFAULT partition: the one create_parent() makes is dropped again");
        }
        if (cfg_.retention_action == RetentionAction::Archive)
            say("create", cfg_.archive_schema, "schema for retention_schema, if missing");
        say("register", parent, create);
        say("config", parent, update);
        if (!dry_) {
            try {
                register_table(create, update);
            } catch (const pg::PgError& e) {
                throw std::runtime_error("handing " + parent + " to pg_partman failed: " +
                                         e.what() + "; nothing was changed");
            }
        }
    }
    std::printf(
        "handoff %s: %smanaged by pg_partman %s (schema %s); run `SELECT %s.run_maintenance(%s)` "
        "from cron (or pg_partman_bgw) instead of `pgshift maintain`\n",
        parent.c_str(), dry_ ? "(dry run) would be " : "", version_.c_str(), schema_.c_str(),
        quote_identifier_if_needed(schema_).c_str(), conn_.literal(parent_text()).c_str());
    return kExitOk;
}

}  // namespace pgshift
