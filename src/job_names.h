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
    std::string slot;      ///< logical replication slot (forward stream)
    std::string publication;
    std::string origin;  ///< replication origin recording applied progress

    static JobNames from(const JobConfig& cfg);
};

}  // namespace pgshift
