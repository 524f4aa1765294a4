// The one RAII wrapper around libpq. Every database call in pgshift goes
// through Connection and Result so that errors always carry the SQLSTATE and a
// context string, results are always freed, and identifiers and literals are
// always escaped with libpq's own PQescapeIdentifier / PQescapeLiteral.
//
// Connection strings are never logged: describe() prints only host, port,
// database and user, so a password that reached libpq through PGPASSWORD,
// ~/.pgpass or a service file cannot leak into logs.
#pragma once

#include <libpq-fe.h>

#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

namespace pgshift::pg {

/// A failed libpq call. sqlstate() is the five-character SQLSTATE when the
/// server sent one (e.g. "55P03" lock_not_available), empty for client errors.
class PgError : public std::runtime_error {
  public:
    PgError(const std::string& what, std::string sqlstate)
        : std::runtime_error(what), sqlstate_(std::move(sqlstate)) {}
    const std::string& sqlstate() const { return sqlstate_; }
    bool is_lock_timeout() const { return sqlstate_ == "55P03"; }
    /// The session is gone: connection exceptions (class 08, which
    /// Connection also reports when libpq lost the socket; not 08P01, a
    /// protocol violation) or the server shutting down, crashed or starting
    /// up (57P01, 57P02, 57P03; errcodes.txt). A new connection may succeed
    /// once the server is back.
    bool is_connection_lost() const {
        return (sqlstate_.starts_with("08") && sqlstate_ != "08P01") || sqlstate_ == "57P01" ||
               sqlstate_ == "57P02" || sqlstate_ == "57P03";
    }

  private:
    std::string sqlstate_;
};

/// Owns a PGresult. Row and column indexes are zero-based.
class Result {
  public:
    Result() = default;
    explicit Result(PGresult* res) : res_(res, &PQclear) {}

    int rows() const { return res_ ? PQntuples(res_.get()) : 0; }
    int cols() const { return res_ ? PQnfields(res_.get()) : 0; }
    bool is_null(int row, int col) const { return PQgetisnull(res_.get(), row, col) != 0; }
    std::string_view view(int row, int col) const;
    std::string str(int row, int col) const { return std::string(view(row, col)); }
    std::optional<std::string> opt(int row, int col) const;
    int64_t i64(int row, int col) const;
    bool boolean(int row, int col) const { return view(row, col) == "t"; }
    /// Rows affected by INSERT/UPDATE/DELETE/COPY (PQcmdTuples), 0 if none.
    int64_t affected() const;
    PGresult* raw() const { return res_.get(); }

  private:
    std::shared_ptr<PGresult> res_;
};

using Params = std::vector<std::optional<std::string>>;

/// Extra settings for a connection on top of the user's conninfo.
struct ConnectOptions {
    std::string application_name = "pgshift";
    /// "database" for a logical walsender connection (replication protocol
    /// plus simple-query SQL), empty for a normal backend.
    std::string replication;
    /// Server GUCs sent in the startup packet ("-c datestyle=ISO ...").
    std::string options =
        "-c datestyle=ISO -c intervalstyle=postgres -c extra_float_digits=3 "
        "-c client_min_messages=warning";
};

class Connection {
  public:
    /// Connects with the user's conninfo (keywords or URI) merged with opts.
    /// Throws PgError naming host/port/database (never the conninfo) on failure.
    static Connection open(const std::string& conninfo, const ConnectOptions& opts = {});

    Connection() = default;
    Connection(Connection&&) noexcept = default;
    Connection& operator=(Connection&&) noexcept = default;

    /// Runs one or more statements with the simple query protocol. Throws
    /// PgError (with SQLSTATE) unless the result is COMMAND_OK or TUPLES_OK.
    Result exec(const std::string& sql);
    /// Runs one statement with text parameters ($1..$n); NULL for nullopt.
    Result exec_params(const std::string& sql, const Params& params);
    /// Prepares a named statement once per connection.
    void prepare(const std::string& name, const std::string& sql);
    Result exec_prepared(const std::string& name, const Params& params);
    /// Best effort "ROLLBACK" that never throws (for error paths).
    void rollback_quietly();

    /// Double-quoted identifier, via PQescapeIdentifier.
    std::string ident(std::string_view name) const;
    /// "schema"."name", each part escaped.
    std::string qualified(std::string_view schema, std::string_view name) const;
    /// Single-quoted literal, via PQescapeLiteral (handles E'' when needed).
    std::string literal(std::string_view value) const;

    int server_version() const { return PQserverVersion(conn_.get()); }
    int backend_pid() const { return PQbackendPID(conn_.get()); }
    /// Name of the database this connection is attached to.
    std::string database() const { return PQdb(conn_.get()); }
    /// "host:port/dbname as user" for logs; no password, no full conninfo.
    std::string describe() const;
    PGconn* raw() const { return conn_.get(); }
    explicit operator bool() const { return conn_ != nullptr; }

    // COPY sub-protocol, used by the copier and the replication stream.
    /// Starts a COPY ... TO STDOUT / FROM STDIN / START_REPLICATION; expects
    /// the given ExecStatusType (PGRES_COPY_OUT, _IN or _BOTH).
    void start_copy(const std::string& sql, ExecStatusType expected);
    void put_copy_data(std::string_view data);
    /// Ends COPY FROM STDIN and returns the command's result (row count).
    Result end_copy_in();
    /// Collects the final result of a finished COPY OUT / COPY BOTH.
    Result finish_copy_out();

    /// Throws PgError built from the connection's last error message.
    [[noreturn]] void throw_error(const std::string& context, PGresult* res = nullptr) const;

  private:
    explicit Connection(PGconn* conn) : conn_(conn, &PQfinish) {}
    Result check(PGresult* res, const std::string& context, ExecStatusType ok1,
                 ExecStatusType ok2) const;
    std::shared_ptr<PGconn> conn_;
};

/// Runs fn, retrying for up to `timeout` while it fails with SQLSTATE 55006
/// (object_in_use): a slot or origin still held by a session of a process
/// that just died is released once the server notices the lost connection.
template <typename Fn>
auto retry_while_in_use(Fn&& fn, std::chrono::milliseconds timeout = std::chrono::seconds(30)) {
    auto deadline = std::chrono::steady_clock::now() + timeout;
    while (true) {
        try {
            return fn();
        } catch (const PgError& e) {
            if (e.sqlstate() != "55006" || std::chrono::steady_clock::now() > deadline)
                throw;
            std::this_thread::sleep_for(std::chrono::milliseconds(200));
        }
    }
}

/// Runs fn, retrying up to `attempts` times while it fails with SQLSTATE
/// 55P03 (lock_not_available, i.e. lock_timeout expired), with a growing
/// pause. For DDL that must never queue behind long transactions for long.
template <typename Fn>
auto retry_on_lock_timeout(Fn&& fn, int attempts) {
    for (int attempt = 1;; ++attempt) {
        try {
            return fn();
        } catch (const PgError& e) {
            if (!e.is_lock_timeout() || attempt >= attempts)
                throw;
            std::this_thread::sleep_for(std::chrono::milliseconds(100 * attempt));
        }
    }
}

/// Builds a PostgreSQL string literal without a connection (standard
/// conforming strings): doubles single quotes, rejects NUL bytes.
std::string quote_literal_offline(std::string_view value);
/// Builds a double-quoted identifier without a connection.
std::string quote_ident_offline(std::string_view name);

}  // namespace pgshift::pg
