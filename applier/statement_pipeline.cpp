#include "statement_pipeline.h"

#include "applier/statement_builder.h"

namespace pgshift {

void StatementPipeline::add(const std::string& sql, pg::Params params, bool expect_one_row,
                            std::string context) {
    if (queued_.size() >= kMaxQueued)
        flush();
    Queued q;
    auto [it, fresh] = prepared_.try_emplace(sql, "");
    if (fresh) {
        it->second = "pgshift_" + std::to_string(prepared_.size());
        q.needs_prepare = true;
        q.sql = sql;
    }
    q.statement = it->second;
    q.prepared = true;
    q.params = std::move(params);
    q.expect_one_row = expect_one_row;
    q.context = std::move(context);
    queued_.push_back(std::move(q));
}

void StatementPipeline::add_command(const std::string& sql) {
    if (queued_.size() >= kMaxQueued)
        flush();
    Queued q;
    q.statement = sql;
    q.context = sql;
    queued_.push_back(std::move(q));
}

void StatementPipeline::send(const Queued& q) {
    PGconn* c = conn_.raw();
    if (q.needs_prepare && PQsendPrepare(c, q.statement.c_str(), q.sql.c_str(), 0, nullptr) != 1) {
        conn_.throw_error("could not queue PREPARE " + q.statement);
    }
    std::vector<const char*> values;
    values.reserve(q.params.size());
    for (const auto& p : q.params)
        values.push_back(p ? p->c_str() : nullptr);
    int ok =
        q.prepared
            ? PQsendQueryPrepared(c, q.statement.c_str(), static_cast<int>(values.size()),
                                  values.data(), nullptr, nullptr, 0)
            : PQsendQueryParams(c, q.statement.c_str(), 0, nullptr, nullptr, nullptr, nullptr, 0);
    if (ok != 1)
        conn_.throw_error("could not queue " + q.context);
}

namespace {

/// Takes the next result of the current pipeline item and its trailing NULL.
pg::Result next_result(pg::Connection& conn) {
    PGresult* res = PQgetResult(conn.raw());
    if (!res)
        conn.throw_error("pipeline ended early");
    pg::Result r(res);
    while (PGresult* extra = PQgetResult(conn.raw()))
        PQclear(extra);
    return r;
}

bool failed(const pg::Result& r) {
    auto st = PQresultStatus(r.raw());
    return st != PGRES_COMMAND_OK && st != PGRES_TUPLES_OK;
}

}  // namespace

void StatementPipeline::read_results() {
    std::string first_error;
    for (const auto& q : queued_) {
        if (q.needs_prepare) {
            auto r = next_result(conn_);
            if (failed(r) && first_error.empty()) {
                first_error =
                    std::string(PQresultErrorMessage(r.raw())) + " — preparing [" + q.sql + "]";
            }
        }
        auto r = next_result(conn_);
        if (!first_error.empty())
            continue;  // the rest report PGRES_PIPELINE_ABORTED
        if (failed(r)) {
            std::string msg = PQresultErrorMessage(r.raw());
            while (!msg.empty() && msg.back() == '\n')
                msg.pop_back();
            first_error = msg + " — while applying " + q.context;
        } else if (q.expect_one_row && r.affected() != 1) {
            first_error = "the row to change was not found in the target (" + q.context +
                          "); the shadow no longer matches the source, so the job stops";
        }
    }
    PGresult* sync = PQgetResult(conn_.raw());
    bool synced = sync && PQresultStatus(sync) == PGRES_PIPELINE_SYNC;
    if (sync)
        PQclear(sync);
    if (!synced)
        conn_.throw_error("pipeline sync was not acknowledged");
    if (!first_error.empty())
        throw ApplyError(first_error);
}

void StatementPipeline::flush() {
    if (queued_.empty())
        return;
    if (PQenterPipelineMode(conn_.raw()) != 1)
        conn_.throw_error("cannot enter pipeline mode");
    try {
        for (const auto& q : queued_)
            send(q);
        if (PQpipelineSync(conn_.raw()) != 1)
            conn_.throw_error("pipeline sync failed");
        read_results();
    } catch (...) {
        queued_.clear();
        throw;
    }
    queued_.clear();
    if (PQexitPipelineMode(conn_.raw()) != 1)
        conn_.throw_error("cannot leave pipeline mode");
}

}  // namespace pgshift
