#include "statement_pipeline.h"

#include "applier/statement_builder.h"

namespace pgshift {

void StatementPipeline::prepare_name(Queued& q, const std::string& sql) {
    auto [it, fresh] = prepared_.try_emplace(sql, "");
    if (fresh) {
        it->second = "pgshift_" + std::to_string(prepared_.size());
        q.needs_prepare = true;
        q.sql = sql;
    }
    q.statement = it->second;
    q.prepared = true;
}

void StatementPipeline::add(const std::string& sql, pg::Params params, bool expect_one_row,
                            std::string context) {
    if (queued_.size() >= kMaxQueued)
        flush();
    Queued q;
    prepare_name(q, sql);
    q.params = std::move(params);
    q.expect_one_row = expect_one_row;
    q.context = std::move(context);
    queued_.push_back(std::move(q));
}

void StatementPipeline::add_batch(const std::string& sql, std::vector<std::string> arrays,
                                  int64_t rows, std::string context) {
    if (queued_.size() >= kMaxQueued)
        flush();
    Queued q;
    prepare_name(q, sql);
    q.arrays = std::move(arrays);
    q.batch_rows = rows;
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

void StatementPipeline::add_query(const std::string& sql, pg::Result* out) {
    add_command(sql);
    queued_.back().out = out;
}

void StatementPipeline::send(const Queued& q) {
    PGconn* c = conn_.raw();
    if (q.needs_prepare && PQsendPrepare(c, q.statement.c_str(), q.sql.c_str(), 0, nullptr) != 1) {
        conn_.throw_error("could not queue PREPARE " + q.statement);
    }
    std::vector<const char*> values;
    std::vector<int> lengths, formats;
    if (q.batch_rows > 0) {
        for (const auto& a : q.arrays) {
            values.push_back(a.data());
            lengths.push_back(static_cast<int>(a.size()));
            formats.push_back(1);
        }
    } else {
        values.reserve(q.params.size());
        for (const auto& p : q.params)
            values.push_back(p ? p->c_str() : nullptr);
    }
    int ok =
        q.prepared
            ? PQsendQueryPrepared(c, q.statement.c_str(), static_cast<int>(values.size()),
                                  values.data(), lengths.empty() ? nullptr : lengths.data(),
                                  formats.empty() ? nullptr : formats.data(), 0)
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

std::pair<std::string, bool> StatementPipeline::read_results() {
    std::string first_error;
    bool batch_failed = false;
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
        } else if (q.batch_rows > 0 && r.affected() != q.batch_rows) {
            first_error = "a set-based statement changed " + std::to_string(r.affected()) +
                          " rows instead of " + std::to_string(q.batch_rows) + " (" + q.context +
                          ")";
        } else if (q.expect_one_row && r.affected() != 1) {
            first_error = "the row to change was not found in the target (" + q.context +
                          "); the shadow no longer matches the source, so the job stops";
        }
        batch_failed = !first_error.empty() && q.batch_rows > 0;
        if (q.out && first_error.empty())
            *q.out = r;
    }
    PGresult* sync = PQgetResult(conn_.raw());
    bool synced = sync && PQresultStatus(sync) == PGRES_PIPELINE_SYNC;
    if (sync)
        PQclear(sync);
    if (!synced)
        conn_.throw_error("pipeline sync was not acknowledged");
    return {first_error, batch_failed};
}

void StatementPipeline::flush() {
    if (queued_.empty())
        return;
    if (PQenterPipelineMode(conn_.raw()) != 1)
        conn_.throw_error("cannot enter pipeline mode");
    std::pair<std::string, bool> failure;
    try {
        for (const auto& q : queued_)
            send(q);
        if (PQpipelineSync(conn_.raw()) != 1)
            conn_.throw_error("pipeline sync failed");
        failure = read_results();
    } catch (...) {
        queued_.clear();
        throw;
    }
    queued_.clear();
    // Every result is read, so the connection can leave pipeline mode and
    // the caller can roll back and re-apply on it.
    if (PQexitPipelineMode(conn_.raw()) != 1)
        conn_.throw_error("cannot leave pipeline mode");
    if (failure.second)
        throw BatchApplyError(failure.first);
    if (!failure.first.empty())
        throw ApplyError(failure.first);
}

}  // namespace pgshift
