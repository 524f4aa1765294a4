// The one place where pgshift decides what a server version supports.
//
// Sources: docs "Logical Streaming Replication Parameters" (pgoutput options),
// src/include/replication/logicalproto.h (LOGICALREP_PROTO_*_VERSION_NUM),
// libpqwalreceiver.c (slot syntax switch at 150000) and pgoutput.c (origin
// option since 16; streaming since 14, a boolean there and in 15, an
// off/on/parallel enum from 16, where 'on' is still accepted). pgoutput raises
// an error on an option it does not know, so every option must be sent only
// to servers that have it.
#pragma once

#include <string>
#include <utility>
#include <vector>

namespace pgshift {

inline constexpr int kMinServerVersion = 140000;

struct ServerFeatures {
    int server_version = 0;           ///< PQserverVersion, e.g. 150020
    int proto_version = 1;            ///< highest pgoutput protocol the server speaks
    bool new_slot_syntax = false;     ///< CREATE_REPLICATION_SLOT ... (SNAPSHOT 'export'), 15+
    bool origin_option = false;       ///< START_REPLICATION (origin 'none'), 16+
    bool streaming_parallel = false;  ///< streaming 'parallel', 16+
    bool emit_message_flush = false;  ///< pg_logical_emit_message(..., flush), 17+

    /// Features of a server; throws std::runtime_error below 14.
    static ServerFeatures for_version(int server_version);

    /// The CREATE_REPLICATION_SLOT command for a logical pgoutput slot that
    /// exports its snapshot. slot_ident must already be quoted.
    std::string create_slot_command(const std::string& slot_ident) const;

    /// pgoutput options for START_REPLICATION, as (name, value) pairs.
    /// publication_names_literal is an already quoted literal of the
    /// comma-separated quoted publication names. skip_origins asks the server
    /// to drop origin-tagged transactions where it can (16+); on older servers
    /// the consumer filters by the Origin message instead.
    ///
    /// streaming asks for streaming 'on' (needs proto_version >= 2: pgoutput
    /// errors "requested proto_version=%d does not support streaming"). With
    /// it, a transaction larger than logical_decoding_work_mem is sent while
    /// in progress (S..E blocks, protocol.md A5.4) instead of being spilled on
    /// the server and sent as one burst at commit; the decoder spools it to
    /// local files. Never 'parallel': that changes the Stream Abort layout and
    /// is meant for parallel apply, which pgshift does not do.
    std::vector<std::pair<std::string, std::string>> start_options(
        const std::string& publication_names_literal, bool skip_origins,
        bool streaming = true) const;
};

}  // namespace pgshift
