#include "snapshot_copy.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <mutex>
#include <nlohmann/json.hpp>
#include <thread>

#include "errors.h"

namespace pgshift {

namespace {

constexpr const char* kLedgerSql = R"SQL(
CREATE SCHEMA IF NOT EXISTS pgshift;
CREATE TABLE IF NOT EXISTS pgshift.copy_chunks (
    job_name  text NOT NULL,
    chunk     int NOT NULL,
    kind      text NOT NULL,
    lower_key text[],
    upper_key text[],
    done      boolean NOT NULL DEFAULT false,
    rows      bigint NOT NULL DEFAULT 0,
    bytes     bigint NOT NULL DEFAULT 0,
    PRIMARY KEY (job_name, chunk)
);
COMMENT ON TABLE pgshift.copy_chunks IS 'pgshift snapshot copy: chunk plan and committed chunks';
)SQL";

nlohmann::json bound_json(const std::optional<std::vector<std::string>>& b) {
    return b ? nlohmann::json(*b) : nlohmann::json(nullptr);
}

std::optional<std::vector<std::string>> bound_from(const pg::Result& r, int row, int col) {
    if (r.is_null(row, col))
        return std::nullopt;
    return nlohmann::json::parse(r.view(row, col)).get<std::vector<std::string>>();
}

std::string quoted_list(const pg::Connection& conn, const std::vector<std::string>& cols,
                        const std::string& prefix = "") {
    std::string out;
    for (const auto& c : cols)
        out += (out.empty() ? "" : ", ") + prefix + conn.ident(c);
    return out;
}

std::vector<std::string> prefixed(const pg::Connection& conn, const std::vector<std::string>& cols,
                                  const std::string& prefix) {
    std::vector<std::string> out;
    for (const auto& c : cols)
        out.push_back(prefix + conn.ident(c));
    return out;
}

}  // namespace

void save_chunk_plan(pg::Connection& conn, const std::string& job, ChunkKind kind,
                     const std::vector<CopyChunk>& chunks) {
    conn.exec(kLedgerSql);
    nlohmann::json rows = nlohmann::json::array();
    for (const auto& c : chunks)
        rows.push_back({{"n", c.number}, {"lo", bound_json(c.lower)}, {"hi", bound_json(c.upper)}});
    conn.exec("BEGIN");
    drop_chunk_plan(conn, job);
    conn.exec_params(
        "INSERT INTO pgshift.copy_chunks (job_name, chunk, kind, lower_key, upper_key)"
        " SELECT $1, (e->>'n')::int, $2,"
        "        CASE WHEN jsonb_typeof(e->'lo') = 'array'"
        "             THEN ARRAY(SELECT jsonb_array_elements_text(e->'lo')) END,"
        "        CASE WHEN jsonb_typeof(e->'hi') = 'array'"
        "             THEN ARRAY(SELECT jsonb_array_elements_text(e->'hi')) END"
        "   FROM jsonb_array_elements($3::jsonb) e",
        {job, kind == ChunkKind::Key ? "key" : "ctid", rows.dump()});
    conn.exec("COMMIT");
}

ChunkLedger load_chunk_plan(pg::Connection& conn, const std::string& job) {
    ChunkLedger ledger;
    if (!conn.exec("SELECT to_regclass('pgshift.copy_chunks') IS NOT NULL").boolean(0, 0))
        return ledger;
    auto r = conn.exec_params(
        "SELECT chunk, kind, to_jsonb(lower_key), to_jsonb(upper_key), done, rows, bytes"
        "  FROM pgshift.copy_chunks WHERE job_name = $1 ORDER BY chunk",
        {job});
    for (int i = 0; i < r.rows(); ++i) {
        CopyChunk c{static_cast<int>(r.i64(i, 0)), bound_from(r, i, 2), bound_from(r, i, 3)};
        ledger.kind = r.view(i, 1) == "key" ? ChunkKind::Key : ChunkKind::Ctid;
        if (r.boolean(i, 4)) {
            ledger.committed.push_back(c.number);
            ledger.rows_committed += r.i64(i, 5);
            ledger.bytes_committed += r.i64(i, 6);
        }
        ledger.chunks.push_back(std::move(c));
    }
    return ledger;
}

void drop_chunk_plan(pg::Connection& conn, const std::string& job) {
    if (conn.exec("SELECT to_regclass('pgshift.copy_chunks') IS NOT NULL").boolean(0, 0))
        conn.exec_params("DELETE FROM pgshift.copy_chunks WHERE job_name = $1", {job});
}

std::vector<std::vector<std::string>> sample_key_boundaries(
    pg::Connection& conn, const QualifiedName& source, const std::vector<std::string>& key_columns,
    int64_t estimated_rows, int chunks) {
    if (chunks <= 1)
        return {};
    // About 100 sampled rows per chunk place the boundaries within a few
    // percent of even; SYSTEM sampling reads whole pages, so it stays cheap.
    double want = 100.0 * chunks;
    double percent = estimated_rows > 0 ? 100.0 * want / static_cast<double>(estimated_rows) : 100;
    std::string sample =
        percent >= 50 ? "" : " TABLESAMPLE SYSTEM (" + std::to_string(percent) + ")";
    std::string keys = quoted_list(conn, key_columns);
    std::string texts;
    for (const auto& k : key_columns)
        texts += (texts.empty() ? "" : ", ") + conn.ident(k) + "::text";
    auto r = conn.exec("SELECT DISTINCT ON (t) " + texts + " FROM (SELECT " + keys + ", ntile(" +
                       std::to_string(chunks) + ") OVER (ORDER BY " + keys + ") AS t FROM " +
                       conn.qualified(source.schema, source.name) + sample +
                       ") s WHERE t > 1 ORDER BY t, " + keys);
    std::vector<std::vector<std::string>> out;
    for (int i = 0; i < r.rows(); ++i) {
        std::vector<std::string> key;
        for (int c = 0; c < r.cols(); ++c)
            key.push_back(r.str(i, c));
        if (out.empty() || out.back() != key)
            out.push_back(std::move(key));
    }
    return out;
}

namespace {

class Worker {
  public:
    Worker(const CopyTask& task, Progress& progress) : task_(task), progress_(progress) {
        pg::ConnectOptions co;
        co.application_name = task.application_name;
        src_ = pg::Connection::open(task.conninfo, co);
        dst_ = pg::Connection::open(task.conninfo, co);
        src_.exec("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY");
        src_.exec("SET TRANSACTION SNAPSHOT " + src_.literal(task.snapshot_name));
        // Asynchronous commit loses whole transactions on a server crash,
        // never half of one, and a chunk's rows and its mark share one.
        dst_.exec("SET synchronous_commit = off");
        cols_ = quoted_list(src_, task.columns);
        source_ = src_.qualified(task.source.schema, task.source.name);
        target_ = dst_.qualified(task.target.schema, task.target.name);
    }

    void copy(const CopyChunk& chunk) {
        auto lit = [this](std::string_view v) { return src_.literal(v); };
        std::string where =
            chunk_predicate(task_.kind, prefixed(src_, task_.key_columns, ""), chunk, lit);
        dst_.exec("BEGIN");
        src_.start_copy("COPY (SELECT " + cols_ + " FROM " + source_ + " WHERE " + where +
                            ") TO STDOUT (FORMAT binary)",
                        PGRES_COPY_OUT);
        dst_.start_copy("COPY " + target_ + " (" + cols_ + ") FROM STDIN (FORMAT binary)",
                        PGRES_COPY_IN);
        int64_t bytes = 0;
        while (true) {
            char* buf = nullptr;
            int n = PQgetCopyData(src_.raw(), &buf, 0);
            if (n > 0) {
                std::unique_ptr<char, void (*)(void*)> owned(buf, &PQfreemem);
                dst_.put_copy_data({buf, static_cast<size_t>(n)});
                bytes += n;
                continue;
            }
            if (n == -2)
                src_.throw_error("COPY from the source failed");
            break;
        }
        src_.finish_copy_out();
        int64_t rows = dst_.end_copy_in().affected();
        mark_done(chunk, std::to_string(rows), std::to_string(bytes));
        dst_.exec("COMMIT");
        progress_.rows_copied.fetch_add(rows, std::memory_order_relaxed);
        progress_.bytes_copied.fetch_add(bytes, std::memory_order_relaxed);
        progress_.chunks_copied.fetch_add(1, std::memory_order_relaxed);
    }

    /// Brings a chunk committed under an earlier snapshot to this snapshot:
    /// shadow rows of the chunk's key range that the source no longer has
    /// (same key, same values, compared as row text since not every type has
    /// an equality operator) are deleted, then the source rows the shadow
    /// lacks are inserted. Both statements read under the new snapshot.
    void reconcile(const CopyChunk& chunk) {
        auto lit = [this](std::string_view v) { return dst_.literal(v); };
        auto in_chunk = [&](const std::string& alias) {
            return chunk_predicate(ChunkKind::Key, prefixed(dst_, task_.key_columns, alias + "."),
                                   chunk, lit);
        };
        std::string same_key = "(" + quoted_list(dst_, task_.key_columns, "t.") + ") = (" +
                               quoted_list(dst_, task_.key_columns, "s.") + ")";
        std::string same_row = "ROW(" + quoted_list(dst_, task_.columns, "t.") + ")::text = ROW(" +
                               quoted_list(dst_, task_.columns, "s.") + ")::text";
        dst_.exec("BEGIN ISOLATION LEVEL REPEATABLE READ");
        dst_.exec("SET TRANSACTION SNAPSHOT " + dst_.literal(task_.snapshot_name));
        dst_.exec("SET LOCAL work_mem = '256MB'");
        int64_t removed = dst_.exec("DELETE FROM " + target_ + " s WHERE " + in_chunk("s") +
                                    " AND NOT EXISTS (SELECT 1 FROM " + source_ + " t WHERE " +
                                    in_chunk("t") + " AND " + same_key + " AND " + same_row + ")")
                              .affected();
        int64_t added =
            dst_.exec("INSERT INTO " + target_ + " (" + cols_ + ") SELECT " +
                      quoted_list(dst_, task_.columns, "t.") + " FROM " + source_ + " t WHERE " +
                      in_chunk("t") + " AND NOT EXISTS (SELECT 1 FROM " + target_ + " s WHERE " +
                      in_chunk("s") + " AND " + same_key + " AND " + same_row + ")")
                .affected();
        dst_.exec_params(
            "UPDATE pgshift.copy_chunks SET rows = rows + $3 WHERE job_name = $1 AND chunk = $2",
            {task_.job_name, std::to_string(chunk.number), std::to_string(added - removed)});
        dst_.exec("COMMIT");
        progress_.rows_copied.fetch_add(added - removed, std::memory_order_relaxed);
        if (removed > 0 || added > 0) {
            spdlog::info(
                "copy: chunks from {} on (committed before the restart): {} rows removed, {} "
                "copied again to match the new snapshot",
                chunk.number, removed, added);
        }
    }

  private:
    void mark_done(const CopyChunk& chunk, const std::string& rows, const std::string& bytes) {
        dst_.exec_params(
            "UPDATE pgshift.copy_chunks SET done = true, rows = $3, bytes = $4"
            " WHERE job_name = $1 AND chunk = $2",
            {task_.job_name, std::to_string(chunk.number), rows, bytes});
    }

    const CopyTask& task_;
    Progress& progress_;
    pg::Connection src_;
    pg::Connection dst_;
    std::string cols_;
    std::string source_;
    std::string target_;
};

/// Waits while the controller has paused the copy; false when stopping.
bool wait_unpaused(Progress& progress) {
    while (!progress.stopping() && !progress.paused().empty())
        std::this_thread::sleep_for(std::chrono::milliseconds(200));
    return !progress.stopping();
}

}  // namespace

void SnapshotCopier::run(const std::function<void()>& snapshot_imported) {
    std::vector<const CopyChunk*> pending;
    for (const auto& c : task_.chunks) {
        if (std::find(task_.committed.begin(), task_.committed.end(), c.number) ==
            task_.committed.end())
            pending.push_back(&c);
    }
    // Reconciled as merged ranges: each is one anti-join over the shadow.
    std::vector<CopyChunk> merged = merge_committed(task_.chunks, task_.committed, 32);
    std::vector<const CopyChunk*> committed;
    for (const auto& c : merged)
        committed.push_back(&c);
    int nworkers = std::max<int>(
        1,
        std::min<int>(task_.workers, static_cast<int>(std::max(pending.size(), committed.size()))));
    std::atomic<size_t> next_pending{0};
    std::atomic<size_t> next_committed{0};
    std::mutex mu;
    std::condition_variable cv;
    int ready = 0;  // workers that imported the snapshot and reconciled their share
    bool start_failed = false;
    std::vector<std::thread> threads;
    for (int w = 0; w < nworkers; ++w) {
        threads.emplace_back([&] {
            std::optional<Worker> worker;
            try {
                worker.emplace(task_, progress_);
                for (size_t i; !progress_.stopping() && (i = next_committed++) < committed.size();)
                    worker->reconcile(*committed[i]);
            } catch (const std::exception& e) {
                progress_.fail(std::string("copy worker: ") + e.what());
                std::lock_guard lock(mu);
                start_failed = true;
                cv.notify_all();
                return;
            }
            {
                std::lock_guard lock(mu);
                ++ready;
                cv.notify_all();
            }
            try {
                for (size_t i; wait_unpaused(progress_) && (i = next_pending++) < pending.size();)
                    worker->copy(*pending[i]);
            } catch (const std::exception& e) {
                progress_.fail(std::string("copy worker: ") + e.what());
            }
        });
    }
    {
        std::unique_lock lock(mu);
        cv.wait(lock, [&] { return ready == nworkers || start_failed; });
    }
    if (!start_failed)
        snapshot_imported();
    for (auto& t : threads)
        t.join();
    if (auto err = progress_.error())
        throw std::runtime_error(*err);
    if (progress_.stopping())
        throw JobStopped("the copy was interrupted");
    spdlog::info("copy: {} chunks copied, {} reconciled (in {} ranges), with {} workers",
                 pending.size(), task_.committed.size(), committed.size(), nworkers);
}

}  // namespace pgshift
