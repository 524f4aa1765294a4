#include "maintain.h"

#include <algorithm>
#include <limits>

namespace pgshift {

std::optional<std::pair<int64_t, int64_t>> unit_range(const PartitionInfo& p) {
    if (!p.bound || p.bound->is_default)
        return std::nullopt;
    std::optional<int64_t> from = p.from_units, to = p.to_units;
    if (p.bound->from == "MINVALUE")
        from = std::numeric_limits<int64_t>::min();
    if (p.bound->to == "MAXVALUE")
        to = std::numeric_limits<int64_t>::max();
    if (!from || !to)
        return std::nullopt;
    return std::make_pair(*from, *to);
}

bool overlaps_any(int64_t from, int64_t to, const std::vector<PartitionInfo>& parts) {
    for (const auto& p : parts) {
        auto r = unit_range(p);
        if (r && from < r->second && r->first < to)
            return true;
    }
    return false;
}

std::optional<std::string> retention_cutoff(const std::vector<PartitionBound>& slots,
                                            int retention) {
    if (retention <= 0 || slots.size() <= static_cast<size_t>(retention))
        return std::nullopt;
    return slots[slots.size() - 1 - static_cast<size_t>(retention)].from;
}

std::vector<const PartitionInfo*> expired_partitions(const std::vector<PartitionInfo>& parts,
                                                     int64_t cutoff_units) {
    std::vector<const PartitionInfo*> out;
    for (const auto& p : parts) {
        auto r = unit_range(p);
        if (r && r->second <= cutoff_units)
            out.push_back(&p);
    }
    std::sort(out.begin(), out.end(), [](const PartitionInfo* a, const PartitionInfo* b) {
        return unit_range(*a)->first < unit_range(*b)->first;
    });
    return out;
}

int backoff_ms(int attempt) {
    int ms = 100;
    for (int i = 0; i < attempt && ms < 5000; ++i)
        ms *= 2;
    return std::min(ms, 5000);
}

}  // namespace pgshift
