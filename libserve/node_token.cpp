#include "libserve/node_token.hpp"

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>

#include "libserve/future.hpp"
#include "libserve/model_location.hpp"

namespace serve {

namespace {

std::string to_hex(const unsigned char* data, size_t n) {
  static const char digits[] = "0123456789abcdef";
  std::string out(n * 2, '0');
  for (size_t i = 0; i < n; ++i) {
    out[2 * i] = digits[data[i] >> 4];
    out[2 * i + 1] = digits[data[i] & 15];
  }
  return out;
}

} // namespace

std::string make_challenge() {
  unsigned char bytes[32];
  if (RAND_bytes(bytes, sizeof bytes) != 1)
    throw serve_exception(errc::internal, "no random bytes for a join challenge");
  return to_hex(bytes, sizeof bytes);
}

std::string token_proof(const std::string& token, const std::string& challenge) {
  unsigned char mac[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  HMAC(EVP_sha256(), token.data(), static_cast<int>(token.size()),
       reinterpret_cast<const unsigned char*>(challenge.data()), challenge.size(), mac, &len);
  return to_hex(mac, len);
}

bool proof_matches(const std::string& token, const std::string& challenge,
                   const std::string& proof) {
  auto expected = token_proof(token, challenge);
  return proof.size() == expected.size()
         && CRYPTO_memcmp(proof.data(), expected.data(), expected.size()) == 0;
}

std::string read_token_file(const std::string& path) {
  auto text = read_whole_file(path, "token file");
  auto first = text.find_first_not_of(" \t\r\n");
  auto last = text.find_last_not_of(" \t\r\n");
  if (first == std::string::npos)
    throw serve_exception(errc::invalid_argument, "token file \"" + path + "\" is empty");
  return text.substr(first, last - first + 1);
}

} // namespace serve
