// docs/derivations.md cannot rot silently: every relative link in it must name a file that exists,
// every `function` written right after such a link must occur in that file, and every check name it
// cites (`eq7.mean_square`, `seed.000.betatilde`, ...) must be a check that derivations/ runs, and
// the other way round. Run from the repository root (as `make test` does).
#include <doctest/doctest.h>

#include <filesystem>
#include <map>
#include <fstream>
#include <regex>
#include <set>
#include <sstream>
#include <string>

#include "derivations/derivations.h"

namespace fs = std::filesystem;

namespace {
std::string read_text(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  std::ostringstream ss;
  ss << in.rdbuf();
  return ss.str();
}
const fs::path kDoc = "docs/derivations.md";
const std::regex kCheckName(R"(^(eq\d+|seed|bpd|alg\d|bound|view|lemma)\.[A-Za-z0-9_.]+$)");
}  // namespace

TEST_CASE("docs/derivations.md: every linked file exists and contains the functions named after the link") {
  REQUIRE_MESSAGE(fs::exists(kDoc), "run from the repository root: " << kDoc << " not found");
  const std::string doc = read_text(kDoc);
  // [text](target): relative targets only (no scheme, no pure #anchor)
  const std::regex link(R"(\[[^\]]*\]\(([^)\s]+)\))");
  const std::regex name_at_start(R"(^[\s,]*(?:and\s+)?`([A-Za-z_][A-Za-z0-9_]*)`)");
  int links = 0, names = 0;
  for (auto it = std::sregex_iterator(doc.begin(), doc.end(), link); it != std::sregex_iterator(); ++it) {
    std::string target = (*it)[1].str();
    if (target.rfind("http", 0) == 0 || target[0] == '#') continue;
    target = target.substr(0, target.find('#'));
    const fs::path file = kDoc.parent_path() / target;
    ++links;
    CHECK_MESSAGE(fs::exists(file), "docs/derivations.md links to " << target << ", which does not exist");
    if (!fs::exists(file)) continue;
    const std::string text = read_text(file);
    // the `names` right after the link: `a`, `b` and `c`
    std::string rest = doc.substr(static_cast<size_t>(it->position() + it->length()), 400);
    std::smatch m;
    while (std::regex_search(rest, m, name_at_start)) {
      ++names;
      CHECK_MESSAGE(text.find(m[1].str()) != std::string::npos,
                    "docs/derivations.md names `" << m[1].str() << "` in " << target << ", which does not contain it");
      rest = m.suffix().str();
    }
  }
  MESSAGE(links << " links, " << names << " function names checked");
  CHECK(links >= 20);  // the parse found the doc's links (a format change would otherwise pass vacuously)
  CHECK(names >= 30);
}

TEST_CASE("docs/derivations.md and derivations/ cite the same checks, and every equation has one") {
  REQUIRE_MESSAGE(fs::exists(kDoc), "run from the repository root: " << kDoc << " not found");
  const std::string doc = read_text(kDoc);
  std::set<std::string> in_doc, in_app;
  const std::regex backticked("`([^`\\s]+)`");
  for (auto it = std::sregex_iterator(doc.begin(), doc.end(), backticked); it != std::sregex_iterator(); ++it)
    if (std::regex_match((*it)[1].str(), kCheckName)) in_doc.insert((*it)[1].str());
  for (const dd::derivations::CheckRecord& r : dd::derivations::run_checks("", false, nullptr)) {
    CHECK_MESSAGE(std::regex_match(r.name, kCheckName), "check " << r.name << " does not look like a check name");
    CHECK_MESSAGE(r.ok, "check " << r.name << " fails");
    in_app.insert(r.name);
  }
  CHECK(in_app.size() >= 50);
  for (const std::string& n : in_doc) CHECK_MESSAGE(in_app.count(n), "the doc cites `" << n << "`, not a check of the app");
  for (const std::string& n : in_app) CHECK_MESSAGE(in_doc.count(n), "the app's check " << n << " is not in the doc");
  for (int eq = 1; eq <= 14; ++eq) {
    bool found = false;
    for (const std::string& n : in_doc) found = found || n.rfind("eq" + std::to_string(eq) + ".", 0) == 0;
    CHECK_MESSAGE(found, "no check cited for eq. (" << eq << ")");
  }
  for (const char* group : {"bpd.", "alg1.", "alg2.", "seed.000.", "seed.001.", "seed.002.", "seed.003.", "seed.004."}) {
    bool found = false;
    for (const std::string& n : in_doc) found = found || n.rfind(group, 0) == 0;
    CHECK_MESSAGE(found, "no check cited for " << group);
  }
}

TEST_CASE("the doc's index of checks lists every check with the label the code gives it, and nothing else") {
  REQUIRE_MESSAGE(fs::exists(kDoc), "run from the repository root: " << kDoc << " not found");
  const std::string doc = read_text(kDoc);
  const size_t at = doc.find("## Index of checks");
  REQUIRE_MESSAGE(at != std::string::npos, "docs/derivations.md has no '## Index of checks' section");
  const std::string index = doc.substr(at);
  std::map<std::string, std::string> in_doc;
  const std::regex row(R"(\n\| `([^`]+)` \| (independent|consistency) \|)");
  for (auto it = std::sregex_iterator(index.begin(), index.end(), row); it != std::sregex_iterator(); ++it)
    in_doc[(*it)[1].str()] = (*it)[2].str();
  std::map<std::string, std::string> in_code;
  for (const dd::derivations::CheckRecord& r : dd::derivations::run_checks("", false, nullptr))
    in_code[r.name] = dd::derivations::to_string(r.label);
  CHECK(in_code.size() >= 60);
  for (const auto& [name, label] : in_code) {
    CHECK_MESSAGE(in_doc.count(name), "the index of checks has no row for " << name << " (./apps/derivations --index)");
    if (in_doc.count(name)) CHECK_MESSAGE(in_doc[name] == label, name << " is " << label << " in the code, " << in_doc[name] << " in the doc");
  }
  for (const auto& [name, label] : in_doc) CHECK_MESSAGE(in_code.count(name), "the index lists " << name << ", not a check");
}
