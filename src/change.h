// What the decoder thread hands to the applier thread: one committed source
// transaction at a time, in commit order.
//
// A TxnBatch is immutable once pushed; ownership moves through the SPSC queue
// as a raw pointer (boost::lockfree::spsc_queue needs trivially copyable
// elements) and the consumer deletes it.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "decoder/pgoutput_messages.h"
#include "lsn.h"

namespace pgshift {

struct TxnBatch {
    uint32_t xid = 0;
    Lsn commit_lsn;
    Lsn end_lsn;              ///< recorded as replication origin progress when applied
    int64_t commit_time = 0;  ///< microseconds since 2000-01-01 UTC
    /// Relation, Type, Insert, Update, Delete, Truncate and transactional
    /// Message items, in the order the source produced them.
    std::vector<pgoutput::Message> changes;
    /// Set when the transaction carried the cutover barrier message
    /// (prefix "pgshift"); the applier publishes it once committed.
    std::optional<std::string> barrier_nonce;
    /// Name from the transaction's Origin message, if it had one (loop
    /// prevention on servers 14/15, where pgoutput cannot filter by origin).
    std::optional<std::string> origin;
    size_t bytes = 0;  ///< approximate memory held, for queue accounting
    /// A source transaction too large to hold in memory arrives as several
    /// chunks in order; every chunk but the last has last_chunk = false and an
    /// invalid end_lsn (commit_lsn, commit_time, xid and origin are set on all).
    /// The applier applies all chunks of one source transaction inside one
    /// target transaction and may commit only after the last chunk.
    bool last_chunk = true;
};

}  // namespace pgshift
