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

namespace {

/// Seconds of an interval as PostgreSQL compares them (month = 30 days).
int64_t comparable_seconds(const PartitionInterval& iv) {
    constexpr int64_t kDay = 86400;
    switch (iv.unit) {
        case TimeUnit::Minute:
            return iv.count * 60;
        case TimeUnit::Hour:
            return iv.count * 3600;
        case TimeUnit::Day:
            return iv.count * kDay;
        case TimeUnit::Week:
            return iv.count * 7 * kDay;
        case TimeUnit::Month:
            return iv.count * 30 * kDay;
        case TimeUnit::Year:
            return iv.count * 360 * kDay;
    }
    return 0;
}

}  // namespace

std::optional<std::string> partman_interval_problem(const PartitionInterval& iv) {
    if (!iv.is_integer && comparable_seconds(iv) == 90 * 86400) {
        return "pg_partman 4.x treats a native set with a 3-month interval as quarterly "
               "(partitions named <table>_pYYYYqQ, ordered by that name), which pgshift's "
               "<table>_pYYYY_MM partitions are not";
    }
    return std::nullopt;
}

std::string partman_datetime_string(const PartitionInterval& iv) {
    constexpr int64_t kDay = 86400;
    int64_t s = comparable_seconds(iv);
    std::string fmt = "YYYY";
    if (s < 360 * kDay)
        fmt += "_MM";
    if (s < 30 * kDay)
        fmt += "_DD";
    if (s < kDay)
        fmt += "_HH24MI";
    if (s < 60)
        fmt += "SS";
    return fmt;
}

std::optional<std::string> partman_retention(const PartitionInterval& iv, int retention) {
    if (retention <= 0)
        return std::nullopt;
    if (iv.is_integer)
        return std::to_string(iv.count * retention);
    PartitionInterval total = iv;
    total.count = iv.count * retention;
    return total.pg_interval();
}

int backoff_ms(int attempt) {
    int ms = 100;
    for (int i = 0; i < attempt && ms < 5000; ++i)
        ms *= 2;
    return std::min(ms, 5000);
}

}  // namespace pgshift
