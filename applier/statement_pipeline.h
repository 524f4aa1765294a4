// Sends the applier's statements in libpq pipeline mode (docs "Pipeline Mode",
// libpq 14+): a run of UPDATEs and DELETEs, and the BEGIN / origin setup /
// COMMIT around them, go out back to back and are answered together, so a
// run costs one network round trip instead of one per statement.
//
// Results are read in order after a single sync; the first failing statement
// (or an UPDATE/DELETE that did not touch exactly one row, or a set-based
// statement that did not touch one row per row of its run) raises ApplyError
// with the context recorded when it was queued; BatchApplyError when it was
// a set-based statement, whose rows the caller must re-apply one by one to
// name the failing one. Runs are bounded (kMaxQueued)
// so that neither side's socket buffer can fill while the other waits: the
// deadlock the libpq docs warn about for unbounded pipelines in blocking mode.
#pragma once

#include <string>
#include <unordered_map>
#include <utility>
#include <vector>

#include "pg/connection.h"

namespace pgshift {

class StatementPipeline {
  public:
    static constexpr size_t kMaxQueued = 500;

    explicit StatementPipeline(pg::Connection& conn) : conn_(conn) {}

    /// Queues an execution of `sql` as a prepared statement (prepared on the
    /// connection the first time it is seen). context describes the change
    /// for error messages. Flushes first if the pipeline is full.
    void add(const std::string& sql, pg::Params params, bool expect_one_row, std::string context);
    /// Queues a set-based statement (build_update/build_delete with batch):
    /// each parameter is a text[] in binary array format (array_send), and
    /// the statement must affect exactly `rows` rows.
    void add_batch(const std::string& sql, std::vector<std::string> arrays, int64_t rows,
                   std::string context);
    /// Queues a command without parameters (BEGIN, COMMIT).
    void add_command(const std::string& sql);
    /// Queues a query without parameters whose result flush() stores in
    /// *out (which must outlive that flush) unless an earlier statement failed.
    void add_query(const std::string& sql, pg::Result* out);
    /// Sends everything queued, waits for all results and checks them.
    /// Throws ApplyError (statement failures) or pg::PgError (connection).
    void flush();
    bool empty() const { return queued_.empty(); }

  private:
    struct Queued {
        std::string statement;  ///< prepared statement name, or the command text
        bool prepared = false;
        bool needs_prepare = false;
        std::string sql;  ///< for needs_prepare
        pg::Params params;
        bool expect_one_row = false;
        std::vector<std::string> arrays;  ///< binary parameters of a set-based statement
        int64_t batch_rows = 0;           ///< rows of a set-based statement, 0 if not one
        pg::Result* out = nullptr;        ///< where add_query's result goes
        std::string context;
    };
    void prepare_name(Queued& q, const std::string& sql);
    void send(const Queued& q);
    /// Reads every result and the sync; returns the first failure (empty if
    /// none) and whether it was a set-based statement's.
    std::pair<std::string, bool> read_results();

    pg::Connection& conn_;
    std::unordered_map<std::string, std::string> prepared_;  ///< SQL -> statement name
    std::vector<Queued> queued_;
};

}  // namespace pgshift
