#include "read_pacer.h"

#include <algorithm>

namespace pgshift {

using std::chrono::microseconds;

microseconds ReadPacer::nap() const {
    return link_ == Link::Tcp && catching_up_ ? catch_up_nap_ : kBaseNap;
}

void ReadPacer::on_transaction(int64_t commit_time, int64_t send_time) {
    catching_up_ = send_time - commit_time >= kCatchUpLag.count();
}

void ReadPacer::after_nap(microseconds taken, size_t queued, size_t buffer) {
    // Only a catch-up nap says something about the catch-up nap's length.
    if (link_ != Link::Tcp || !catching_up_ || taken != catch_up_nap_ || buffer == 0)
        return;
    if (queued > buffer / 4)
        catch_up_nap_ = std::max(kBaseNap, catch_up_nap_ / 2);
    else if (queued < buffer / 8)
        catch_up_nap_ = std::min(kMaxNap, catch_up_nap_ * 2);
}

}  // namespace pgshift
