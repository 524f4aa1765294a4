// Pure pieces of the snapshot copy: how the source is cut into chunks, the
// WHERE clause of each chunk, how the after-copy index statements are split
// into per-partition builds, and the progress line. No I/O, so every rule is
// unit-tested (tests/unit/test_copy_chunks.cpp).
//
// Chunks are key ranges of the source's primary key when it has one: the
// boundaries are sampled from the table, the first range has no lower bound
// and the last none above, so the ranges cover every key whatever the sample
// was (rows inserted later, keys outside the sample). Without a primary key
// they are ctid block ranges (TID range scans, PostgreSQL 14+). A key range is
// stable across processes, so a copy interrupted by a crash keeps the ranges
// it committed (docs/design.md, "Resuming a copy"); a ctid range is not (rows
// move on UPDATE), so such a copy starts over.
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace pgshift {

enum class ChunkKind { Key, Ctid };

/// One unit of copy work. For Key chunks `lower`/`upper` hold the key columns'
/// values as text (nullopt = unbounded); for Ctid chunks one element each, the
/// first block (inclusive) and the last block (exclusive).
struct CopyChunk {
    int number = 0;
    std::optional<std::vector<std::string>> lower;
    std::optional<std::vector<std::string>> upper;
    bool operator==(const CopyChunk&) const = default;
};

/// Number of chunks for a table of `rows` rows (estimate) at `chunk_rows` rows
/// per chunk: at least 1, at least 2 per worker when the table has rows, at
/// most 10000.
int chunk_count(int64_t rows, int64_t chunk_rows, int workers);

/// Key chunks from sorted, distinct boundary keys (each the key's column
/// values as text): n boundaries give n + 1 chunks, numbered from 0.
std::vector<CopyChunk> key_chunks(const std::vector<std::vector<std::string>>& boundaries);

/// The committed chunks as few key ranges as possible for reconciliation:
/// runs of consecutive chunk numbers merged, at most `max_per_range` chunks
/// per range (each range is one anti-join that scans the shadow, which has
/// no index yet). A merged range keeps the number of its first chunk.
std::vector<CopyChunk> merge_committed(const std::vector<CopyChunk>& chunks,
                                       const std::vector<int>& committed, int max_per_range);

/// Ctid chunks of `pages_per_chunk` blocks over `heap_pages` blocks; the last
/// chunk is open-ended, so pages added after the size was read are covered.
std::vector<CopyChunk> ctid_chunks(int64_t heap_pages, int64_t pages_per_chunk);

/// Boolean SQL selecting a chunk's rows. `quoted_columns` are the key columns
/// already quoted (Key) and unused for Ctid; `quote_literal` escapes a value.
/// Key: "(a, b) >= ('1', 'x') AND (a, b) < ('9', 'y')" (the untyped literals
/// take each column's type); an unbounded chunk is "true".
std::string chunk_predicate(ChunkKind kind, const std::vector<std::string>& quoted_columns,
                            const CopyChunk& chunk,
                            const std::function<std::string(std::string_view)>& quote_literal);

/// An index statement of the shadow's after-copy DDL turned into the same
/// index on one partition. `parallel_sql` builds it on the partition (run in
/// parallel with the other partitions' builds); the original statement on the
/// partitioned table then attaches the partition's index instead of building
/// one (CREATE INDEX: "each partition is first checked to determine whether
/// an equivalent index already exists"; DefineIndex in indexcmds.c).
struct LeafIndexBuild {
    std::string parallel_sql;
    std::string leaf_index_name;  ///< unquoted; a constraint name for PRIMARY KEY / UNIQUE
    bool constraint = false;
};

/// For `CREATE [UNIQUE] INDEX "n" ON <shadow> USING ...` and
/// `ALTER TABLE <shadow> ADD CONSTRAINT "n" PRIMARY KEY|UNIQUE ...` (the forms
/// shadow_ddl.cpp writes; `shadow_quoted` as QualifiedName::quoted()), the
/// build on the partition `leaf` (schema `leaf_schema`); nullopt for every
/// other statement. The partition's index is named like PostgreSQL names
/// them, <leaf>_pkey, <leaf>_key<ordinal>, <leaf>_idx<ordinal> (ordinal: the
/// statement's position), so that a resumed index phase finds what a killed
/// one built: indexes use IF NOT EXISTS, constraints are looked up by name.
std::optional<LeafIndexBuild> leaf_index_build(const std::string& statement,
                                               const std::string& shadow_quoted,
                                               const std::string& leaf_schema,
                                               const std::string& leaf, size_t ordinal);

/// `leaf` + "_" + `suffix`, the leaf part cut at a UTF-8 character boundary
/// so that the name fits in NAMEDATALEN - 1 = 63 bytes.
std::string leaf_index_name(const std::string& leaf, const std::string& suffix);

/// Figures of a running copy, for the progress line, the log and `status`.
struct CopyStats {
    int64_t rows = 0;
    int64_t rows_estimated = 0;
    int64_t bytes = 0;      ///< binary COPY bytes moved
    double elapsed_s = 0;   ///< since the copy started
    double rows_per_s = 0;  ///< over the last few seconds
    int chunks_done = 0;
    int chunks_total = 0;
    double snapshot_age_s = 0;  ///< age of the oldest copy transaction (the snapshot it holds)
    int64_t xmin_age = 0;       ///< age(backend_xmin) of the copy sessions, in transactions
    std::string paused;         ///< why chunks are paused; empty when running
};

/// The figures as the JSON object kept in pgshift.jobs.copy_progress and
/// shown by `status --json` (docs/status.md), and back.
std::string copy_stats_json(const CopyStats& s);
CopyStats copy_stats_from_json(const std::string& json);

/// Seconds left at the current rate; nullopt when unknown.
std::optional<double> eta_seconds(const CopyStats& s);

/// "1.2M", "350k", "999": short counts for the progress line.
std::string short_count(int64_t n);

/// "1h02m", "3m05s", "12s": durations for the progress line.
std::string short_duration(double seconds);

/// One line: "copy 45% 2.3M/~5.0M rows, 612 MB, 410k rows/s, ETA 6s, chunks 9/20,
/// snapshot 12s old, xmin age 35" plus ", PAUSED: <why>".
std::string progress_line(const CopyStats& s);

/// A `width`-character bar "[#####.....]" for the fraction done (clamped to 0..1).
std::string progress_bar(double fraction, int width);

}  // namespace pgshift
