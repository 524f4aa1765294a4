// The copier actor: copies the source table into the shadow under the slot's
// exported snapshot, so that the copy plus every transaction decoded from the
// slot's consistent point is exactly the source (docs "Replication Protocol",
// CREATE_REPLICATION_SLOT ... SNAPSHOT 'export'; SET TRANSACTION SNAPSHOT).
//
// Parallelism: N workers, each with a source connection that imports the
// snapshot (REPEATABLE READ READ ONLY) and a target connection. The heap is
// cut into ctid block ranges (TID range scans, PostgreSQL 14+), handed out
// from an atomic counter; each chunk is one binary COPY ... TO STDOUT piped
// into COPY ... FROM STDIN on the partitioned shadow, which routes every row
// to its partition. The last chunk has no upper bound, so rows on pages added
// after the relation size was read are still covered.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "config.h"
#include "progress.h"

namespace pgshift {

struct CopyTask {
    std::string conninfo;
    std::string application_name = "pgshift";
    std::string snapshot_name;
    QualifiedName source;
    QualifiedName target;
    std::vector<std::string> columns;  ///< non-generated columns, same order on both sides
    int64_t heap_pages = 0;            ///< source size in 8 kB pages when the copy starts
    int workers = 2;
};

/// Block ranges [first, last) of each chunk; the last range ends at -1 (open).
std::vector<std::pair<int64_t, int64_t>> plan_chunks(int64_t heap_pages, int workers);

class SnapshotCopier {
  public:
    SnapshotCopier(CopyTask task, Progress& progress)
        : task_(std::move(task)), progress_(progress) {}

    /// Runs the copy. `snapshot_imported` is called once every worker has
    /// imported the snapshot (the exporting connection may then be closed).
    /// Rows copied are added to progress.rows_copied. Throws on the first
    /// worker error (after stopping the others) or JobStopped if the job is
    /// asked to stop.
    void run(const std::function<void()>& snapshot_imported);

  private:
    CopyTask task_;
    Progress& progress_;
};

}  // namespace pgshift
