// The shared token nodes and heads prove to each other, without sending it: the node gives a
// one-time random challenge, the head answers HMAC-SHA256(token, challenge). With TLS off the
// traffic itself is not encrypted (see README "Several machines").
//
// Thread-safe (no shared state).
#pragma once

#include <string>

namespace serve {

/// 32 random bytes as hex (OpenSSL's RAND_bytes). Throws serve_exception(internal) when the
/// system has no randomness to give.
std::string make_challenge();

/// HMAC-SHA256(token, challenge) as lower-case hex.
std::string token_proof(const std::string& token, const std::string& challenge);

/// Whether `proof` is token_proof(token, challenge); compares in constant time.
bool proof_matches(const std::string& token, const std::string& challenge,
                   const std::string& proof);

/// The token in `path`: its contents with surrounding white space removed. Throws
/// serve_exception naming the file when it cannot be read (not_found) or is empty
/// (invalid_argument).
std::string read_token_file(const std::string& path);

} // namespace serve
