#include "lsn_mapping.h"

#include <algorithm>

namespace pgshift {

void LsnMapping::on_commit(Lsn remote_end) {
    unmapped_ = std::max(unmapped_, remote_end);
}

void LsnMapping::on_skip(Lsn remote_end) {
    if (unmapped_.valid())
        unmapped_ = std::max(unmapped_, remote_end);
    else if (!pairs_.empty())
        pairs_.back().remote_end = std::max(pairs_.back().remote_end, remote_end);
    else
        durable_ = std::max(durable_, remote_end);
}

Lsn LsnMapping::on_wal_positions(Lsn local_insert, Lsn local_flush) {
    if (unmapped_.valid()) {
        if (!pairs_.empty() && pairs_.back().local_end >= local_insert)
            pairs_.back().remote_end = std::max(pairs_.back().remote_end, unmapped_);
        else
            pairs_.push_back({unmapped_, local_insert});
        unmapped_ = Lsn();
    }
    while (!pairs_.empty() && pairs_.front().local_end <= local_flush) {
        durable_ = std::max(durable_, pairs_.front().remote_end);
        pairs_.pop_front();
    }
    return durable_;
}

}  // namespace pgshift
