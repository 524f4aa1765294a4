// relid -> last Relation message received, with a diff of every re-sent one.
//
// Why a diff: DDL is never replicated. The only trace a schema change leaves
// in the pgoutput stream is a new Relation message before the next change
// that uses the new shape. pgoutput also re-sends a Relation after *any*
// relcache invalidation (CREATE INDEX, GRANT, ANALYZE ...), after every
// reconnect and once per streamed transaction, so most re-sent Relations are
// identical and must be accepted silently (protocol.md A5.2).
//
// Columns are compared by *name* and type, never by position alone: dropped
// and generated columns are absent from the message and ADD COLUMN appends,
// so TupleData index i only means "Relation column i" (protocol.md A3).
//
// Classification (the caller decides what to do; during a migration anything
// Incompatible is fatal):
//   None         identical column list (names, types, typmods, key flags), same
//                replica identity and name; also the first Relation for a relid.
//   Compatible   only appended columns, changed replica-identity key flags or
//                relreplident, or a renamed/moved table (the relid is the identity).
//   Incompatible a column disappeared (dropped, or renamed: a vanished column
//                whose position is taken by a new column of the same type), a
//                column changed type oid or typmod, or surviving columns changed
//                their relative order (a drop + re-add of the same name).
// The cache always stores the newest message, whatever the classification.
#pragma once

#include <cstdint>
#include <string>
#include <unordered_map>

#include "decoder/pgoutput_messages.h"

namespace pgshift {

enum class SchemaChange { None, Compatible, Incompatible };

struct RelationDiff {
    SchemaChange kind = SchemaChange::None;
    /// Human-readable, "; "-separated list of every difference found, each
    /// naming the table as "schema"."table" and the column, e.g.
    /// `column "payload" of "public"."events" changed type from 3802 to 25`.
    /// Empty when kind is None.
    std::string description;
};

/// Returns `"nspname"."relname"` (an empty nspname is pg_catalog).
std::string qualified_relation_name(const pgoutput::RelationMsg& rel);

class RelationCache {
  public:
    /// Stores `rel` (replacing any cached entry for rel.relid) and returns how
    /// it differs from the previously cached definition.
    RelationDiff update(const pgoutput::RelationMsg& rel);

    /// The cached Relation for relid, or nullptr. The pointer stays valid until
    /// the next update() of the same relid or clear().
    const pgoutput::RelationMsg* find(uint32_t relid) const;

    size_t size() const { return relations_.size(); }
    void clear() { relations_.clear(); }

    /// Pure comparison used by update(); exposed for tests and diagnostics.
    static RelationDiff diff(const pgoutput::RelationMsg& cached,
                             const pgoutput::RelationMsg& fresh);

  private:
    std::unordered_map<uint32_t, pgoutput::RelationMsg> relations_;
};

}  // namespace pgshift
