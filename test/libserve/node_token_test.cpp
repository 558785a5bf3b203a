// Join proofs between heads and nodes.
#include <cstdio>
#include <filesystem>
#include <fstream>

#include <doctest/doctest.h>

#include "libserve/future.hpp"
#include "libserve/node_token.hpp"

using namespace serve;

TEST_CASE("a proof made with the token matches, one made with another token does not") {
  auto challenge = make_challenge();
  CHECK(challenge.size() == 64);
  CHECK(challenge != make_challenge());
  auto proof = token_proof("s3cret", challenge);
  CHECK(proof_matches("s3cret", challenge, proof));
  CHECK_FALSE(proof_matches("other", challenge, proof));
  CHECK_FALSE(proof_matches("s3cret", make_challenge(), proof));
  CHECK_FALSE(proof_matches("s3cret", challenge, ""));
}

TEST_CASE("the proof is HMAC-SHA256 as RFC 4231 test case 2 gives it") {
  CHECK(token_proof("Jefe", "what do ya want for nothing?")
        == "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843");
}

TEST_CASE("a token file is read without surrounding white space; an empty one is refused") {
  auto dir = std::filesystem::temp_directory_path() / "actorserve_token_test";
  std::filesystem::create_directories(dir);
  std::ofstream(dir / "t") << "  abc def\n";
  std::ofstream(dir / "empty") << "\n\n";
  CHECK(read_token_file((dir / "t").string()) == "abc def");
  CHECK_THROWS_AS(read_token_file((dir / "empty").string()), serve_exception);
  CHECK_THROWS_AS(read_token_file((dir / "missing").string()), serve_exception);
  std::filesystem::remove_all(dir);
}
