#include "pg/connection.h"

#include <charconv>

namespace pgshift::pg {

namespace {

/// libpq's message on one line: each line break and the indent after it
/// ("...unexpectedly\n\tThis probably means...", "ERROR: ...\nDETAIL: ...")
/// become one space, so that a log line holds the whole error.
std::string one_line(const char* msg) {
    std::string s;
    bool in_break = false;
    for (const char* p = msg ? msg : ""; *p; ++p) {
        if (*p == '\n') {
            in_break = true;
        } else if (!(in_break && (*p == ' ' || *p == '\t'))) {
            if (in_break && !s.empty())
                s += ' ';
            in_break = false;
            s += *p;
        }
    }
    while (!s.empty() && s.back() == ' ')
        s.pop_back();
    return s;
}

std::string sqlstate_of(const PGresult* res) {
    if (!res)
        return {};
    const char* state = PQresultErrorField(res, PG_DIAG_SQLSTATE);
    return state ? state : "";
}

}  // namespace

std::string_view Result::view(int row, int col) const {
    return {PQgetvalue(res_.get(), row, col),
            static_cast<size_t>(PQgetlength(res_.get(), row, col))};
}

std::optional<std::string> Result::opt(int row, int col) const {
    if (is_null(row, col))
        return std::nullopt;
    return str(row, col);
}

int64_t Result::i64(int row, int col) const {
    auto v = view(row, col);
    int64_t out = 0;
    auto [ptr, ec] = std::from_chars(v.data(), v.data() + v.size(), out);
    if (ec != std::errc() || ptr != v.data() + v.size()) {
        throw PgError("expected an integer in result column " +
                          std::string(PQfname(res_.get(), col)) + ", got \"" + std::string(v) +
                          "\"",
                      "");
    }
    return out;
}

int64_t Result::affected() const {
    const char* n = PQcmdTuples(res_.get());
    if (!n || !*n)
        return 0;
    return std::stoll(n);
}

Connection Connection::open(const std::string& conninfo, const ConnectOptions& opts) {
    std::vector<const char*> keys{"dbname", "application_name", "client_encoding", "options"};
    std::vector<const char*> vals{conninfo.c_str(), opts.application_name.c_str(), "UTF8",
                                  opts.options.c_str()};
    if (!opts.replication.empty()) {
        keys.push_back("replication");
        vals.push_back(opts.replication.c_str());
    }
    keys.push_back(nullptr);
    vals.push_back(nullptr);
    PGconn* raw = PQconnectdbParams(keys.data(), vals.data(), /*expand_dbname=*/1);
    Connection conn(raw);
    if (!raw || PQstatus(raw) != CONNECTION_OK) {
        std::string where = raw ? conn.describe() : "the server";
        throw PgError("could not connect to " + where + ": " +
                          one_line(raw ? PQerrorMessage(raw) : "out of memory"),
                      "08001");
    }
    return conn;
}

std::string Connection::describe() const {
    PGconn* c = conn_.get();
    std::string host = PQhost(c) ? PQhost(c) : "";
    std::string port = PQport(c) ? PQport(c) : "";
    std::string db = PQdb(c) ? PQdb(c) : "";
    std::string user = PQuser(c) ? PQuser(c) : "";
    return host + ":" + port + "/" + db + " as " + user;
}

void Connection::throw_error(const std::string& context, PGresult* res) const {
    std::string msg = res ? one_line(PQresultErrorMessage(res)) : "";
    if (msg.empty())
        msg = one_line(PQerrorMessage(conn_.get()));
    std::string state = sqlstate_of(res);
    if (res)
        PQclear(res);
    // libpq reports a dropped socket without a SQLSTATE of its own.
    if (state.empty() && PQstatus(conn_.get()) == CONNECTION_BAD)
        state = "08006";  // connection_failure
    throw PgError(context + ": " + msg, state);
}

Result Connection::check(PGresult* res, const std::string& context, ExecStatusType ok1,
                         ExecStatusType ok2) const {
    if (!res)
        throw_error(context);
    auto st = PQresultStatus(res);
    if (st != ok1 && st != ok2)
        throw_error(context, res);
    return Result(res);
}

namespace {

std::string statement_context(const std::string& sql) {
    constexpr size_t kMax = 200;
    std::string head = sql.size() > kMax ? sql.substr(0, kMax) + "..." : sql;
    return "query failed [" + head + "]";
}

std::vector<const char*> param_pointers(const Params& params) {
    std::vector<const char*> ptrs;
    ptrs.reserve(params.size());
    for (const auto& p : params)
        ptrs.push_back(p ? p->c_str() : nullptr);
    return ptrs;
}

}  // namespace

Result Connection::exec(const std::string& sql) {
    return check(PQexec(conn_.get(), sql.c_str()), statement_context(sql), PGRES_COMMAND_OK,
                 PGRES_TUPLES_OK);
}

Result Connection::exec_params(const std::string& sql, const Params& params) {
    auto ptrs = param_pointers(params);
    return check(PQexecParams(conn_.get(), sql.c_str(), static_cast<int>(ptrs.size()), nullptr,
                              ptrs.data(), nullptr, nullptr, 0),
                 statement_context(sql), PGRES_COMMAND_OK, PGRES_TUPLES_OK);
}

void Connection::prepare(const std::string& name, const std::string& sql) {
    check(PQprepare(conn_.get(), name.c_str(), sql.c_str(), 0, nullptr),
          "could not prepare [" + sql + "]", PGRES_COMMAND_OK, PGRES_COMMAND_OK);
}

Result Connection::exec_prepared(const std::string& name, const Params& params) {
    auto ptrs = param_pointers(params);
    return check(PQexecPrepared(conn_.get(), name.c_str(), static_cast<int>(ptrs.size()),
                                ptrs.data(), nullptr, nullptr, 0),
                 "prepared statement " + name + " failed", PGRES_COMMAND_OK, PGRES_TUPLES_OK);
}

void Connection::rollback_quietly() {
    if (!conn_ || PQstatus(conn_.get()) != CONNECTION_OK)
        return;
    PGresult* res = PQexec(conn_.get(), "ROLLBACK");
    if (res)
        PQclear(res);
}

std::string Connection::ident(std::string_view name) const {
    char* q = PQescapeIdentifier(conn_.get(), name.data(), name.size());
    if (!q)
        throw_error("could not quote identifier");
    std::string out(q);
    PQfreemem(q);
    return out;
}

std::string Connection::qualified(std::string_view schema, std::string_view name) const {
    return ident(schema) + "." + ident(name);
}

std::string Connection::literal(std::string_view value) const {
    char* q = PQescapeLiteral(conn_.get(), value.data(), value.size());
    if (!q)
        throw_error("could not quote literal");
    std::string out(q);
    PQfreemem(q);
    return out;
}

void Connection::start_copy(const std::string& sql, ExecStatusType expected) {
    check(PQexec(conn_.get(), sql.c_str()), statement_context(sql), expected, expected);
}

void Connection::put_copy_data(std::string_view data) {
    if (PQputCopyData(conn_.get(), data.data(), static_cast<int>(data.size())) != 1) {
        throw_error("could not send COPY data");
    }
}

Result Connection::end_copy_in() {
    if (PQputCopyEnd(conn_.get(), nullptr) != 1)
        throw_error("could not end COPY");
    return finish_copy_out();
}

Result Connection::finish_copy_out() {
    Result last;
    while (PGresult* res = PQgetResult(conn_.get())) {
        auto st = PQresultStatus(res);
        if (st != PGRES_COMMAND_OK && st != PGRES_TUPLES_OK)
            throw_error("COPY failed", res);
        last = Result(res);
    }
    return last;
}

std::string quote_literal_offline(std::string_view value) {
    std::string out = "'";
    for (char c : value) {
        if (c == '\0')
            throw std::invalid_argument("NUL byte in SQL literal");
        if (c == '\'')
            out += '\'';
        out += c;
    }
    return out + "'";
}

std::string quote_ident_offline(std::string_view name) {
    std::string out = "\"";
    for (char c : name) {
        if (c == '\0')
            throw std::invalid_argument("NUL byte in SQL identifier");
        if (c == '"')
            out += '"';
        out += c;
    }
    return out + "\"";
}

}  // namespace pgshift::pg
