#include "swap_spec.h"

#include <nlohmann/json.hpp>

namespace pgshift {

SwapSpec SwapSpec::from(const TableInfo& source, const ShadowPlan& plan) {
    SwapSpec s;
    s.index_renames = plan.index_renames;
    s.sequences = source.sequences;
    s.identity_always_columns = plan.identity_always_columns;
    if (const auto* pk = source.primary_key())
        s.forward_key = pk->key_columns;
    s.reverse_key = plan.key_columns;
    s.object_sql = plan.swap_sql;
    s.after_commit_sql = plan.after_commit_sql;
    s.rollback_object_sql = plan.rollback_sql;
    s.rollback_after_commit_sql = plan.rollback_after_commit_sql;
    return s;
}

std::string SwapSpec::to_json() const {
    nlohmann::json j;
    j["index_renames"] = nlohmann::json::array();
    for (const auto& r : index_renames) {
        j["index_renames"].push_back({{"shadow", r.shadow_name}, {"original", r.original_name}});
    }
    j["sequences"] = nlohmann::json::array();
    for (const auto& q : sequences) {
        j["sequences"].push_back(
            {{"column", q.column}, {"sequence", q.sequence}, {"identity", q.identity}});
    }
    j["identity_always_columns"] = identity_always_columns;
    j["forward_key"] = forward_key;
    j["reverse_key"] = reverse_key;
    j["object_sql"] = object_sql;
    j["after_commit_sql"] = after_commit_sql;
    j["rollback_object_sql"] = rollback_object_sql;
    j["rollback_after_commit_sql"] = rollback_after_commit_sql;
    return j.dump();
}

SwapSpec SwapSpec::from_json(const std::string& text) {
    try {
        auto j = nlohmann::json::parse(text);
        SwapSpec s;
        for (const auto& r : j.at("index_renames")) {
            s.index_renames.push_back({r.at("shadow"), r.at("original")});
        }
        for (const auto& q : j.at("sequences")) {
            s.sequences.push_back({q.at("column"), q.at("sequence"), q.at("identity")});
        }
        s.identity_always_columns = j.at("identity_always_columns").get<std::vector<std::string>>();
        s.forward_key = j.at("forward_key").get<std::vector<std::string>>();
        s.reverse_key = j.at("reverse_key").get<std::vector<std::string>>();
        s.object_sql = j.value("object_sql", std::vector<std::string>{});
        s.after_commit_sql = j.value("after_commit_sql", std::vector<std::string>{});
        s.rollback_object_sql = j.value("rollback_object_sql", std::vector<std::string>{});
        s.rollback_after_commit_sql =
            j.value("rollback_after_commit_sql", std::vector<std::string>{});
        return s;
    } catch (const nlohmann::json::exception& e) {
        throw std::runtime_error(std::string("pgshift.jobs.swap_spec is malformed: ") + e.what());
    }
}

}  // namespace pgshift
