#include "snapshot_copy.h"

#include <spdlog/spdlog.h>

#include <atomic>
#include <condition_variable>
#include <mutex>
#include <thread>

#include "errors.h"
#include "pg/connection.h"

namespace pgshift {

std::vector<std::pair<int64_t, int64_t>> plan_chunks(int64_t heap_pages, int workers) {
    // About four chunks per worker evens out skew, but no chunk below 128 MB
    // of heap unless the table is small: each chunk costs two COPY round trips.
    int64_t per_chunk = std::max<int64_t>(16384, heap_pages / (int64_t{workers} * 4) + 1);
    std::vector<std::pair<int64_t, int64_t>> chunks;
    for (int64_t first = 0; first < heap_pages; first += per_chunk) {
        chunks.emplace_back(first, first + per_chunk);
    }
    if (chunks.empty())
        chunks.emplace_back(0, -1);
    chunks.back().second = -1;
    return chunks;
}

namespace {

std::string column_list(pg::Connection& conn, const std::vector<std::string>& cols) {
    std::string out;
    for (const auto& c : cols)
        out += (out.empty() ? "" : ", ") + conn.ident(c);
    return out;
}

class Worker {
  public:
    Worker(const CopyTask& task, Progress& progress) : task_(task), progress_(progress) {
        pg::ConnectOptions co;
        co.application_name = task.application_name;
        src_ = pg::Connection::open(task.conninfo, co);
        dst_ = pg::Connection::open(task.conninfo, co);
        src_.exec("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY");
        src_.exec("SET TRANSACTION SNAPSHOT " + src_.literal(task.snapshot_name));
        // A lost copy is redone from scratch, so the copy need not wait for
        // its WAL to be flushed.
        dst_.exec("SET synchronous_commit = off");
        cols_ = column_list(src_, task.columns);
    }

    void copy_chunk(int64_t first, int64_t last) {
        std::string where = "ctid >= '(" + std::to_string(first) + ",0)'::tid";
        if (last >= 0)
            where += " AND ctid < '(" + std::to_string(last) + ",0)'::tid";
        src_.start_copy("COPY (SELECT " + cols_ + " FROM " +
                            src_.qualified(task_.source.schema, task_.source.name) + " WHERE " +
                            where + ") TO STDOUT (FORMAT binary)",
                        PGRES_COPY_OUT);
        dst_.start_copy("COPY " + dst_.qualified(task_.target.schema, task_.target.name) + " (" +
                            cols_ + ") FROM STDIN (FORMAT binary)",
                        PGRES_COPY_IN);
        while (true) {
            char* buf = nullptr;
            int n = PQgetCopyData(src_.raw(), &buf, 0);
            if (n > 0) {
                std::unique_ptr<char, void (*)(void*)> owned(buf, &PQfreemem);
                dst_.put_copy_data({buf, static_cast<size_t>(n)});
                continue;
            }
            if (n == -2)
                src_.throw_error("COPY from the source failed");
            break;
        }
        src_.finish_copy_out();
        auto r = dst_.end_copy_in();
        progress_.rows_copied.fetch_add(r.affected(), std::memory_order_relaxed);
    }

  private:
    const CopyTask& task_;
    Progress& progress_;
    pg::Connection src_;
    pg::Connection dst_;
    std::string cols_;
};

}  // namespace

void SnapshotCopier::run(const std::function<void()>& snapshot_imported) {
    auto chunks = plan_chunks(task_.heap_pages, task_.workers);
    int nworkers = std::min<int>(task_.workers, static_cast<int>(chunks.size()));
    std::atomic<size_t> next{0};
    std::mutex mu;
    std::condition_variable cv;
    int imported = 0;
    bool import_failed = false;
    std::vector<std::thread> threads;
    for (int w = 0; w < nworkers; ++w) {
        threads.emplace_back([&] {
            std::optional<Worker> worker;
            try {
                worker.emplace(task_, progress_);
            } catch (const std::exception& e) {
                progress_.fail(std::string("copy worker: ") + e.what());
                std::lock_guard lock(mu);
                import_failed = true;
                cv.notify_all();
                return;
            }
            {
                std::lock_guard lock(mu);
                ++imported;
                cv.notify_all();
            }
            try {
                for (size_t i; !progress_.stopping() && (i = next.fetch_add(1)) < chunks.size();) {
                    worker->copy_chunk(chunks[i].first, chunks[i].second);
                }
            } catch (const std::exception& e) {
                progress_.fail(std::string("copy worker: ") + e.what());
            }
        });
    }
    {
        std::unique_lock lock(mu);
        cv.wait(lock, [&] { return imported == nworkers || import_failed; });
    }
    if (!import_failed)
        snapshot_imported();
    for (auto& t : threads)
        t.join();
    if (auto err = progress_.error())
        throw std::runtime_error(*err);
    if (progress_.stopping())
        throw JobStopped("the copy was interrupted");
    spdlog::info("copy: {} chunks with {} workers done", chunks.size(), nworkers);
}

}  // namespace pgshift
