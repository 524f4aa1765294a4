#include "decoder/relation_cache.h"

#include <string_view>
#include <unordered_set>
#include <vector>

namespace pgshift {

namespace {

std::string quote_ident(std::string_view name) {
    std::string out;
    out.reserve(name.size() + 2);
    out.push_back('"');
    for (char c : name) {
        if (c == '"') {
            out.push_back('"');
        }
        out.push_back(c);
    }
    out.push_back('"');
    return out;
}

std::string replident_str(char c) {
    return std::string("'") + c + "'";
}

/// Accumulates findings; the overall kind is the most severe one.
class DiffBuilder {
  public:
    void add(SchemaChange kind, std::string text) {
        if (kind > diff_.kind) {
            diff_.kind = kind;
        }
        if (!diff_.description.empty()) {
            diff_.description += "; ";
        }
        diff_.description += text;
    }
    RelationDiff take() { return std::move(diff_); }

  private:
    RelationDiff diff_;
};

const pgoutput::RelationColumn* find_column(const pgoutput::RelationMsg& rel, std::string_view name,
                                            size_t* index = nullptr) {
    for (size_t i = 0; i < rel.columns.size(); ++i) {
        if (rel.columns[i].name == name) {
            if (index != nullptr) {
                *index = i;
            }
            return &rel.columns[i];
        }
    }
    return nullptr;
}

}  // namespace

std::string qualified_relation_name(const pgoutput::RelationMsg& rel) {
    return quote_ident(rel.nspname.empty() ? std::string_view("pg_catalog") : rel.nspname) + "." +
           quote_ident(rel.relname);
}

RelationDiff RelationCache::diff(const pgoutput::RelationMsg& cached,
                                 const pgoutput::RelationMsg& fresh) {
    DiffBuilder out;
    // Findings name the table as the server now calls it.
    const std::string table = qualified_relation_name(fresh);
    auto col = [&](std::string_view name) {
        return "column " + quote_ident(name) + " of " + table;
    };

    if (cached.nspname != fresh.nspname || cached.relname != fresh.relname) {
        out.add(SchemaChange::Compatible, "relation " + qualified_relation_name(cached) +
                                              " (relid " + std::to_string(fresh.relid) +
                                              ") is now named " + table);
    }
    if (cached.replident != fresh.replident) {
        out.add(SchemaChange::Compatible, "replica identity of " + table + " changed from " +
                                              replident_str(cached.replident) + " to " +
                                              replident_str(fresh.replident));
    }

    // New columns explained as the new name of a vanished column.
    std::unordered_set<std::string> renamed_to;
    for (size_t i = 0; i < cached.columns.size(); ++i) {
        const pgoutput::RelationColumn& old_col = cached.columns[i];
        const pgoutput::RelationColumn* new_col = find_column(fresh, old_col.name);
        if (new_col == nullptr) {
            // RENAME COLUMN keeps the attnum, so the new name sits at the same
            // position with the same type and did not exist before.
            if (i < fresh.columns.size()) {
                const pgoutput::RelationColumn& candidate = fresh.columns[i];
                if (candidate.type_oid == old_col.type_oid &&
                    find_column(cached, candidate.name) == nullptr) {
                    renamed_to.insert(candidate.name);
                    out.add(SchemaChange::Incompatible,
                            col(old_col.name) + " was renamed to " + quote_ident(candidate.name));
                    continue;
                }
            }
            out.add(SchemaChange::Incompatible, col(old_col.name) + " was dropped");
            continue;
        }
        if (new_col->type_oid != old_col.type_oid) {
            out.add(SchemaChange::Incompatible, col(old_col.name) + " changed type from " +
                                                    std::to_string(old_col.type_oid) + " to " +
                                                    std::to_string(new_col->type_oid));
        } else if (new_col->type_mod != old_col.type_mod) {
            out.add(SchemaChange::Incompatible, col(old_col.name) + " changed type modifier from " +
                                                    std::to_string(old_col.type_mod) + " to " +
                                                    std::to_string(new_col->type_mod));
        }
        if (new_col->is_key() != old_col.is_key()) {
            out.add(SchemaChange::Compatible,
                    col(old_col.name) + (new_col->is_key()
                                             ? " is now part of the replica identity key"
                                             : " is no longer part of the replica identity key"));
        } else if (new_col->flags != old_col.flags) {
            out.add(SchemaChange::Compatible, col(old_col.name) + " changed flags from " +
                                                  std::to_string(old_col.flags) + " to " +
                                                  std::to_string(new_col->flags));
        }
    }

    // Columns present in both must keep their relative order: a drop and
    // re-add of the same name moves it to the end and loses its data.
    std::vector<std::string_view> old_order;
    std::vector<std::string_view> new_order;
    for (const auto& c : cached.columns) {
        if (find_column(fresh, c.name) != nullptr) {
            old_order.push_back(c.name);
        }
    }
    for (const auto& c : fresh.columns) {
        if (find_column(cached, c.name) != nullptr) {
            new_order.push_back(c.name);
        }
    }
    if (old_order != new_order) {
        for (size_t i = 0; i < old_order.size(); ++i) {
            if (old_order[i] != new_order[i]) {
                size_t old_pos = 0;
                size_t new_pos = 0;
                find_column(cached, old_order[i], &old_pos);
                find_column(fresh, old_order[i], &new_pos);
                out.add(SchemaChange::Incompatible,
                        col(old_order[i]) + " moved from position " + std::to_string(old_pos + 1) +
                            " to " + std::to_string(new_pos + 1) + " (dropped and re-added?)");
                break;
            }
        }
    }

    for (const auto& c : fresh.columns) {
        if (find_column(cached, c.name) == nullptr && renamed_to.count(c.name) == 0) {
            out.add(SchemaChange::Compatible,
                    col(c.name) + " was added (type " + std::to_string(c.type_oid) + ")");
        }
    }
    return out.take();
}

RelationDiff RelationCache::update(const pgoutput::RelationMsg& rel) {
    auto it = relations_.find(rel.relid);
    if (it == relations_.end()) {
        relations_.emplace(rel.relid, rel);
        return {};
    }
    RelationDiff result = diff(it->second, rel);
    it->second = rel;
    return result;
}

const pgoutput::RelationMsg* RelationCache::find(uint32_t relid) const {
    auto it = relations_.find(relid);
    return it == relations_.end() ? nullptr : &it->second;
}

}  // namespace pgshift
