#include "verify.h"

#include <algorithm>

namespace pgshift {

namespace {

void walk(const nlohmann::json& node, const std::set<std::string>& partitions, PlanScan& out) {
    if (!node.is_object())
        return;
    if (auto it = node.find("Subplans Removed"); it != node.end() && it->is_number_integer())
        out.subplans_removed += it->get<int64_t>();
    if (auto it = node.find("Relation Name"); it != node.end() && it->is_string()) {
        std::string rel = it->get<std::string>();
        if (partitions.contains(rel)) {
            auto loops = node.find("Actual Loops");
            bool never = loops != node.end() && loops->is_number() && loops->get<double>() == 0;
            auto& list = never ? out.never_executed : out.scanned;
            if (std::find(list.begin(), list.end(), rel) == list.end())
                list.push_back(rel);
        }
    }
    if (auto it = node.find("Plans"); it != node.end() && it->is_array()) {
        for (const auto& child : *it)
            walk(child, partitions, out);
    }
}

}  // namespace

PlanScan analyze_plan(const nlohmann::json& explain, const std::set<std::string>& partitions) {
    PlanScan out;
    const nlohmann::json* top = &explain;
    if (top->is_array() && !top->empty())
        top = &(*top)[0];
    if (top->is_object() && top->contains("Plan"))
        walk((*top)["Plan"], partitions, out);
    // A partition read in one loop of a node and skipped in another still counts as read.
    std::erase_if(out.never_executed, [&](const std::string& p) {
        return std::find(out.scanned.begin(), out.scanned.end(), p) != out.scanned.end();
    });
    return out;
}

std::vector<std::optional<int64_t>> differing_chunks(const ChunkMap& left, const ChunkMap& right) {
    std::vector<std::optional<int64_t>> out;
    static const ChunkSum kEmpty{};
    std::set<std::optional<int64_t>> keys;
    for (const auto& [k, v] : left)
        keys.insert(k);
    for (const auto& [k, v] : right)
        keys.insert(k);
    for (const auto& k : keys) {
        auto l = left.find(k);
        auto r = right.find(k);
        const ChunkSum& a = l == left.end() ? kEmpty : l->second;
        const ChunkSum& b = r == right.end() ? kEmpty : r->second;
        if (!(a == b))
            out.push_back(k);
    }
    return out;
}

const char* to_string(RowProblem p) {
    switch (p) {
        case RowProblem::MissingInNew:
            return "missing in new table";
        case RowProblem::ExtraInNew:
            return "only in new table";
        default:
            return "differs";
    }
}

std::vector<std::pair<std::string, RowProblem>> classify_rows(
    const std::vector<std::string>& only_left, const std::vector<std::string>& only_right) {
    std::map<std::string, int> seen;  // bit 1: left, bit 2: right
    for (const auto& k : only_left)
        seen[k] |= 1;
    for (const auto& k : only_right)
        seen[k] |= 2;
    std::vector<std::pair<std::string, RowProblem>> out;
    for (const auto& [k, bits] : seen) {
        out.emplace_back(k, bits == 3   ? RowProblem::Differs
                            : bits == 1 ? RowProblem::MissingInNew
                                        : RowProblem::ExtraInNew);
    }
    return out;
}

}  // namespace pgshift
