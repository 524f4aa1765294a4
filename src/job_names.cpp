#include "job_names.h"

#include <cstdio>

#include <xxhash.h>

namespace pgshift {

std::string suffixed_name(std::string_view base, std::string_view suffix) {
    if (base.size() + suffix.size() <= kMaxIdentifierBytes) {
        return std::string(base) + std::string(suffix);
    }
    char hash[16];
    std::snprintf(hash, sizeof hash, "_%08x",
                  static_cast<unsigned>(XXH32(base.data(), base.size(), 0)));
    size_t keep = kMaxIdentifierBytes - suffix.size() - 9;
    // Do not cut a UTF-8 sequence in half.
    while (keep > 0 && (static_cast<unsigned char>(base[keep]) & 0xC0) == 0x80)
        --keep;
    return std::string(base.substr(0, keep)) + hash + std::string(suffix);
}

JobNames JobNames::from(const JobConfig& cfg, const std::string& database) {
    JobNames n;
    n.source = cfg.table;
    n.shadow = {cfg.table.schema,
                cfg.shadow_name ? *cfg.shadow_name : suffixed_name(cfg.table.name, "__pgshift")};
    n.old = {cfg.table.schema, suffixed_name(cfg.table.name, "__pgshift_old")};
    char db_hash[16];
    std::snprintf(db_hash, sizeof db_hash, "_%08x",
                  static_cast<unsigned>(XXH32(database.data(), database.size(), 0)));
    n.slot = "pgshift_" + cfg.job_name + db_hash;
    n.publication = "pgshift_" + cfg.job_name;
    n.origin = n.slot;
    n.reverse_slot = n.slot + "_r";
    n.reverse_publication = n.publication + "_r";
    n.reverse_origin = n.reverse_slot;
    return n;
}

}  // namespace pgshift
