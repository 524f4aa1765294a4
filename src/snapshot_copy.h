// The copier actor: copies the source table into the shadow under the slot's
// exported snapshot, so that the copy plus every transaction decoded from the
// slot's consistent point is exactly the source (docs "Replication Protocol",
// CREATE_REPLICATION_SLOT ... SNAPSHOT 'export'; SET TRANSACTION SNAPSHOT).
//
// Parallelism: N workers, each with a source connection that imports the
// snapshot (REPEATABLE READ READ ONLY) and a target connection. Chunks
// (copy_chunks.h: primary-key ranges, or ctid ranges without a key) are handed
// out from an atomic counter; each is one binary COPY ... TO STDOUT piped into
// COPY ... FROM STDIN on the partitioned shadow, in a target transaction that
// also marks the chunk done in pgshift.copy_chunks, so a chunk's rows and its
// mark commit together.
//
// Resume: after a crash the exported snapshot is gone. A new slot exports a
// new snapshot; the chunks committed under the old one are reconciled with
// the source as the new snapshot sees it (rows that differ are deleted and
// copied again, in one transaction per chunk under the new snapshot), and the
// other chunks are copied. The shadow then equals the source at the new slot's
// consistent point, and the stream starts there (docs/design.md).
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "config.h"
#include "copy_chunks.h"
#include "pg/connection.h"
#include "progress.h"

namespace pgshift {

struct CopyTask {
    std::string conninfo;
    std::string application_name = "pgshift";
    std::string job_name;
    std::string snapshot_name;
    QualifiedName source;
    QualifiedName target;
    std::vector<std::string> columns;  ///< non-generated columns, same order on both sides
    ChunkKind kind = ChunkKind::Ctid;
    std::vector<std::string> key_columns;  ///< primary key of the source (Key chunks)
    std::vector<CopyChunk> chunks;         ///< all chunks of the job
    std::vector<int> committed;            ///< chunk numbers committed by an earlier run
    int workers = 2;
};

/// Durable chunk plan of a job in pgshift.copy_chunks (created when missing).
struct ChunkLedger {
    ChunkKind kind = ChunkKind::Ctid;
    std::vector<CopyChunk> chunks;
    std::vector<int> committed;
    int64_t rows_committed = 0;
    int64_t bytes_committed = 0;
};

/// Replaces the job's chunk plan (all chunks pending).
void save_chunk_plan(pg::Connection& conn, const std::string& job, ChunkKind kind,
                     const std::vector<CopyChunk>& chunks);
/// The job's chunk plan; empty chunks when there is none.
ChunkLedger load_chunk_plan(pg::Connection& conn, const std::string& job);
/// Removes the job's chunk plan (once the copy is complete, or on a fresh start).
void drop_chunk_plan(pg::Connection& conn, const std::string& job);

/// Chunk boundaries of `source` for `chunks` chunks by its key columns: the
/// first key of each ntile of a TABLESAMPLE SYSTEM sample (whole table when
/// small), as text. Fewer boundaries when the sample holds fewer distinct keys.
std::vector<std::vector<std::string>> sample_key_boundaries(
    pg::Connection& conn, const QualifiedName& source, const std::vector<std::string>& key_columns,
    int64_t estimated_rows, int chunks);

class SnapshotCopier {
  public:
    SnapshotCopier(CopyTask task, Progress& progress)
        : task_(std::move(task)), progress_(progress) {}

    /// Runs the copy. `snapshot_imported` is called once every worker has
    /// imported the snapshot and every committed chunk is reconciled (the
    /// exporting connection may then be closed). Rows, bytes and chunks are
    /// added to `progress`; chunks wait while progress.paused() is set. Throws
    /// on the first worker error (after stopping the others) or JobStopped if
    /// the job is asked to stop.
    void run(const std::function<void()>& snapshot_imported);

  private:
    CopyTask task_;
    Progress& progress_;
};

}  // namespace pgshift
