// Names of everything a job creates, derived from the config in one place so
// that run, status, abort and the tests agree on them.
#pragma once

#include <string>
#include <string_view>

#include "config.h"

namespace pgshift {

inline constexpr size_t kMaxIdentifierBytes = 63;  // NAMEDATALEN - 1

/// base + suffix, shortened to fit in 63 bytes: when too long, base is cut
/// and an 8-hex-digit hash of the full base is inserted so distinct long
/// names stay distinct.
std::string suffixed_name(std::string_view base, std::string_view suffix);

struct JobNames {
    QualifiedName source;  ///< the user's table
    QualifiedName shadow;  ///< partitioned copy, renamed to `source` at cutover
    QualifiedName old;     ///< what the source is renamed to at cutover
    std::string slot;      ///< logical replication slot (forward stream); cluster-wide name
    std::string publication;
    std::string origin;  ///< replication origin recording applied progress; cluster-wide name
    /// The reverse stream (new table -> old table after cutover): its own slot,
    /// publication (publish_via_partition_root) and origin.
    std::string reverse_slot;
    std::string reverse_publication;
    std::string reverse_origin;

    /// Slots and origins are cluster-wide objects while jobs are per database,
    /// so their names carry a hash of the database name: the same job name in
    /// two databases of one cluster never collides.
    static JobNames from(const JobConfig& cfg, const std::string& database);
};

}  // namespace pgshift
