// Bounds-checked big-endian reading and writing of wire-protocol bytes.
//
// The PostgreSQL frontend/backend and replication protocols send every
// integer in network byte order (big-endian) and strings NUL-terminated
// (src/backend/libpq/pqformat.c: pq_getmsgint / pq_getmsgstring). ByteReader
// is the equivalent of pq_getmsg*: every read checks the remaining length
// first and throws ProtocolError carrying the byte offset where it failed, so
// malformed or truncated input can never cause an out-of-bounds read. The
// error paths are out of line and marked cold so the happy path stays small.
//
// ByteWriter is the pq_send* counterpart, used to build client messages and
// to re-encode decoded messages in tests and fuzzing.
#pragma once

#include <bit>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <limits>
#include <stdexcept>
#include <string>
#include <string_view>

namespace pgshift {

/// Malformed protocol input. what() always includes the byte offset.
class ProtocolError : public std::runtime_error {
  public:
    ProtocolError(const std::string& message, size_t offset)
        : std::runtime_error(message + " (at byte offset " + std::to_string(offset) + ")"),
          offset_(offset) {}

    /// Byte offset in the message being decoded where the problem was found.
    size_t offset() const { return offset_; }

  private:
    size_t offset_;
};

namespace detail {

template <typename U>
inline U load_be(const char* p) {
    U v;
    std::memcpy(&v, p, sizeof v);
    if constexpr (std::endian::native == std::endian::little) {
        if constexpr (sizeof(U) == 2) {
            v = __builtin_bswap16(v);
        } else if constexpr (sizeof(U) == 4) {
            v = __builtin_bswap32(v);
        } else if constexpr (sizeof(U) == 8) {
            v = __builtin_bswap64(v);
        }
    }
    return v;
}

template <typename U>
inline void store_be(char* p, U v) {
    if constexpr (std::endian::native == std::endian::little) {
        if constexpr (sizeof(U) == 2) {
            v = __builtin_bswap16(v);
        } else if constexpr (sizeof(U) == 4) {
            v = __builtin_bswap32(v);
        } else if constexpr (sizeof(U) == 8) {
            v = __builtin_bswap64(v);
        }
    }
    std::memcpy(p, &v, sizeof v);
}

}  // namespace detail

/// Sequential reader over one protocol message. Does not own the bytes.
///
/// `context` names the message being read (e.g. "pgoutput Update"); each read
/// takes an optional field name. Both appear in error messages.
class ByteReader {
  public:
    explicit ByteReader(std::string_view data, const char* context = nullptr)
        : data_(data), context_(context) {}

    void set_context(const char* context) { context_ = context; }
    const char* context() const { return context_; }

    size_t offset() const { return pos_; }
    size_t remaining() const { return data_.size() - pos_; }
    size_t size() const { return data_.size(); }
    std::string_view data() const { return data_; }

    uint8_t u8(const char* field = nullptr) {
        need(1, field);
        return static_cast<uint8_t>(data_[pos_++]);
    }
    int16_t i16(const char* field = nullptr) { return static_cast<int16_t>(u16(field)); }
    uint16_t u16(const char* field = nullptr) { return read<uint16_t>(field); }
    int32_t i32(const char* field = nullptr) { return static_cast<int32_t>(u32(field)); }
    uint32_t u32(const char* field = nullptr) { return read<uint32_t>(field); }
    int64_t i64(const char* field = nullptr) { return static_cast<int64_t>(u64(field)); }
    uint64_t u64(const char* field = nullptr) { return read<uint64_t>(field); }

    /// A NUL-terminated string; the NUL is consumed but not returned.
    std::string_view cstring(const char* field = nullptr) {
        if (remaining() == 0)
            fail_unterminated(field);
        const char* begin = data_.data() + pos_;
        const void* nul = std::memchr(begin, '\0', remaining());
        if (nul == nullptr)
            fail_unterminated(field);
        size_t len = static_cast<size_t>(static_cast<const char*>(nul) - begin);
        std::string_view s(begin, len);
        pos_ += len + 1;
        return s;
    }

    /// The next n raw bytes.
    std::string_view bytes(size_t n, const char* field = nullptr) {
        need(n, field);
        std::string_view s(data_.data() + pos_, n);
        pos_ += n;
        return s;
    }

    /// Throws unless every byte has been consumed.
    void expect_end() const {
        if (pos_ != data_.size())
            fail_trailing();
    }

    /// Throws ProtocolError at the current offset (or `at`), prefixed with the
    /// context name.
    [[noreturn]] [[gnu::cold]] void fail(const std::string& message) const {
        fail_at(message, pos_);
    }
    [[noreturn]] [[gnu::cold]] void fail_at(const std::string& message, size_t at) const {
        throw ProtocolError(prefix() + message, at);
    }

  private:
    template <typename U>
    U read(const char* field) {
        need(sizeof(U), field);
        U v = detail::load_be<U>(data_.data() + pos_);
        pos_ += sizeof(U);
        return v;
    }

    void need(size_t n, const char* field) const {
        if (n > remaining())
            fail_truncated(n, field);
    }

    std::string prefix() const {
        return context_ != nullptr ? std::string(context_) + ": " : std::string();
    }

    [[noreturn]] [[gnu::cold]] void fail_truncated(size_t n, const char* field) const {
        std::string m = "truncated message reading ";
        m += field != nullptr ? field : "value";
        m += " (need " + std::to_string(n) + " bytes, " + std::to_string(remaining()) +
             " remaining)";
        fail(m);
    }
    [[noreturn]] [[gnu::cold]] void fail_unterminated(const char* field) const {
        std::string m = "missing NUL terminator for string ";
        m += field != nullptr ? field : "value";
        fail(m);
    }
    [[noreturn]] [[gnu::cold]] void fail_trailing() const {
        fail(std::to_string(remaining()) + " trailing bytes after end of message");
    }

    std::string_view data_;
    size_t pos_ = 0;
    const char* context_ = nullptr;
};

/// Appends big-endian values to a std::string; the inverse of ByteReader.
class ByteWriter {
  public:
    ByteWriter() = default;
    explicit ByteWriter(size_t reserve) { buf_.reserve(reserve); }

    void reserve(size_t n) { buf_.reserve(n); }
    size_t size() const { return buf_.size(); }
    const std::string& str() const& { return buf_; }
    std::string take() { return std::move(buf_); }

    void put_u8(uint8_t v) { buf_.push_back(static_cast<char>(v)); }
    void put_i16(int16_t v) { put_u16(static_cast<uint16_t>(v)); }
    void put_u16(uint16_t v) { write(v); }
    void put_i32(int32_t v) { put_u32(static_cast<uint32_t>(v)); }
    void put_u32(uint32_t v) { write(v); }
    void put_i64(int64_t v) { put_u64(static_cast<uint64_t>(v)); }
    void put_u64(uint64_t v) { write(v); }

    /// Writes s followed by a NUL. Throws std::invalid_argument if s contains
    /// a NUL, since such a string could not be read back.
    void put_cstring(std::string_view s) {
        if (s.find('\0') != std::string_view::npos) {
            throw std::invalid_argument("ByteWriter::put_cstring: string contains a NUL byte");
        }
        buf_.append(s);
        buf_.push_back('\0');
    }

    void put_bytes(std::string_view s) { buf_.append(s); }

  private:
    template <typename U>
    void write(U v) {
        char tmp[sizeof(U)];
        detail::store_be<U>(tmp, v);
        buf_.append(tmp, sizeof tmp);
    }

    std::string buf_;
};

}  // namespace pgshift
