// docs/derivations.md cannot rot silently: every relative link in it must name a file that exists,
// every `function` written right after such a link must occur in that file, and every check name it
// cites (`eq7.mean_square`, `seed.000.betatilde`, ...) must be a check that derivations/ runs, and
// the other way round. Run from the repository root (as `make test` does).
#include <doctest/doctest.h>

#include <cctype>
#include <filesystem>
#include <map>
#include <fstream>
#include <regex>
#include <set>
#include <sstream>
#include <string>
#include <vector>

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
// Every check of derivations/, run once for all the test cases.
const std::vector<dd::derivations::CheckRecord>& all_checks() {
  static const std::vector<dd::derivations::CheckRecord> records = dd::derivations::run_checks("", false, nullptr);
  return records;
}
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
  for (const dd::derivations::CheckRecord& r : all_checks()) {
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
  for (const dd::derivations::CheckRecord& r : all_checks())
    in_code[r.name] = dd::derivations::to_string(r.label);
  CHECK(in_code.size() >= 60);
  for (const auto& [name, label] : in_code) {
    CHECK_MESSAGE(in_doc.count(name), "the index of checks has no row for " << name << " (./apps/derivations --index)");
    if (in_doc.count(name)) CHECK_MESSAGE(in_doc[name] == label, name << " is " << label << " in the code, " << in_doc[name] << " in the doc");
  }
  for (const auto& [name, label] : in_doc) CHECK_MESSAGE(in_code.count(name), "the index lists " << name << ", not a check");
}

namespace {
// GitHub's anchor of a heading: lowercase, spaces to hyphens, punctuation other than - and _ dropped
// (bytes of non-ASCII letters, such as Chinese, are kept).
std::string anchor_of(const std::string& heading) {
  std::string a;
  for (unsigned char ch : heading) {
    if (ch >= 0x80 || std::isalnum(ch) || ch == '-' || ch == '_')
      a += static_cast<char>(ch < 0x80 ? std::tolower(ch) : ch);
    else if (ch == ' ')
      a += '-';
  }
  return a;
}
std::set<std::string> anchors(const std::string& doc) {
  std::set<std::string> out;
  const std::regex heading(R"((^|\n)#{1,6} ([^\n]+))");
  for (auto it = std::sregex_iterator(doc.begin(), doc.end(), heading); it != std::sregex_iterator(); ++it)
    out.insert(anchor_of((*it)[2].str()));
  return out;
}
std::vector<std::string> cells(const std::string& row) {
  std::vector<std::string> out;
  std::string cur;
  bool math = false;
  for (size_t i = 1; i < row.size(); ++i) {  // row starts with '|'
    if (row[i] == '$') math = !math;
    if (row[i] == '|' && !math && row[i - 1] != '\\') {
      out.push_back(cur);
      cur.clear();
    } else {
      cur += row[i];
    }
  }
  return out;
}
}  // namespace

TEST_CASE("every #anchor link of docs/derivations.md names one of its headings") {
  const std::string doc = read_text(kDoc);
  const std::set<std::string> known = anchors(doc);
  REQUIRE(known.size() > 30);
  const std::regex link(R"(\]\(#([^)\s]+)\))");
  int n = 0;
  for (auto it = std::sregex_iterator(doc.begin(), doc.end(), link); it != std::sregex_iterator(); ++it, ++n)
    CHECK_MESSAGE(known.count((*it)[1].str()), "link to #" << (*it)[1].str() << ", which is no heading of the doc");
  CHECK(n >= 60);
}

TEST_CASE("the seed map: every row names a note, a section of the doc, a function its file contains and a check") {
  const std::string doc = read_text(kDoc);
  const size_t at = doc.find("## Seed map");
  REQUIRE_MESSAGE(at != std::string::npos, "docs/derivations.md has no '## Seed map' section");
  const size_t end = doc.find("\n## ", at + 4);
  const std::string map = doc.substr(at, end == std::string::npos ? std::string::npos : end - at);
  const std::set<std::string> known = anchors(doc);
  std::set<std::string> checks;
  for (const dd::derivations::CheckRecord& r : all_checks()) checks.insert(r.name);
  std::map<std::string, int> rows_per_note;
  const std::regex note(R"(^\s*(00[0-4]_[0-9a-f]{16}\.txt)\s*$)"), anchor_link(R"(\]\(#([^)\s]+)\))"),
      code(R"(\[[^\]]*\]\(\.\./([^)\s]+)\)\s*`([A-Za-z_][A-Za-z0-9_]*)`)"), check(R"(^\s*`([^`]+)`\s*$)");
  std::istringstream lines(map);
  std::string line;
  while (std::getline(lines, line)) {
    if (line.rfind("| 00", 0) != 0) continue;
    const std::vector<std::string> c = cells(line);
    REQUIRE_MESSAGE(c.size() == 6, "seed map row with " << c.size() << " cells: " << line);
    std::smatch m;
    REQUIRE_MESSAGE(std::regex_match(c[0], m, note), "not a seed note's file name: " << c[0]);
    ++rows_per_note[m[1].str()];
    CHECK_MESSAGE(!c[1].empty(), "a row without the note's section: " << line);
    CHECK_MESSAGE((std::regex_search(c[3], m, anchor_link) && known.count(m[1].str())),
                  "the doc section of this row is no heading of the doc: " << c[3]);
    if (std::regex_search(c[4], m, code)) {
      const fs::path file = fs::path("docs") / ".." / m[1].str();
      CHECK_MESSAGE(fs::exists(file), "the row names " << m[1].str() << ", which does not exist");
      if (fs::exists(file))
        CHECK_MESSAGE(read_text(file).find(m[2].str()) != std::string::npos, m[1].str() << " does not contain " << m[2].str());
    } else {
      FAIL_CHECK("no [file](../path) `function` in the code cell: " << c[4]);
    }
    CHECK_MESSAGE((std::regex_match(c[5], m, check) && checks.count(m[1].str())), "no check of derivations/ in: " << c[5]);
  }
  for (const char* n : {"000_8099d25de213de40.txt", "001_4234f85a0e2f54ce.txt", "002_06254da405a707c7.txt",
                        "003_c04ae12409e982b5.txt", "004_e668264e9d81e76a.txt"})
    CHECK_MESSAGE(rows_per_note[n] >= 5, n << " has " << rows_per_note[n] << " rows in the seed map");
}

TEST_CASE("every section of docs/derivations.md opens with a Chinese summary (中文)") {
  const std::string doc = read_text(kDoc);
  const std::regex heading(R"(\n## ([^\n]+)\n+([^\n]*))");
  int n = 0;
  for (auto it = std::sregex_iterator(doc.begin(), doc.end(), heading); it != std::sregex_iterator(); ++it) {
    const std::string title = (*it)[1].str();
    if (title.rfind("Glossary", 0) == 0 || title == "Index of checks") continue;
    ++n;
    CHECK_MESSAGE((*it)[2].str().rfind("> 中文", 0) == 0, "section '" << title << "' does not open with '> 中文...'");
  }
  CHECK(n >= 30);
}

TEST_CASE("docs/derivations.md's math survives GitHub's $-syntax: no \\-punctuation commands, no bare | in tables") {
  // GitHub runs Markdown's backslash escapes over $...$ before MathJax sees it: \, \{ \| \\ lose
  // their backslash. Use \thinspace, \lbrace, \Vert instead; in a table a | also ends the cell.
  const std::string doc = read_text(kDoc);
  std::istringstream lines(doc);
  std::string line;
  bool code = false;
  int spans = 0;
  const std::regex math(R"(\$\$(.+?)\$\$|\$(.+?)\$)"), punct(R"(\\[^A-Za-z])");
  while (std::getline(lines, line)) {
    if (line.rfind("```", 0) == 0) code = !code;
    if (code) continue;
    for (auto it = std::sregex_iterator(line.begin(), line.end(), math); it != std::sregex_iterator(); ++it) {
      const std::string body = (*it)[1].matched ? (*it)[1].str() : (*it)[2].str();
      ++spans;
      CHECK_MESSAGE(!std::regex_search(body, punct), "math with a backslash-punctuation command: $" << body << "$");
      if (line.rfind("|", 0) == 0) CHECK_MESSAGE(body.find('|') == std::string::npos, "a | inside math in a table: " << body);
    }
  }
  CHECK(spans > 300);
}
