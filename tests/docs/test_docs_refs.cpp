// The README and the reference pages cannot rot silently: every relative link names a file that
// exists, every `path` they write into the repository's folders exists, and every code name that
// docs/equations.md and docs/conventions.md attribute to the code (`q_sample`, `posterior_mean_coef1`,
// `LossType::Simple`, ...) occurs in the sources. Run from the repository root (as `make test` does).
#include <doctest/doctest.h>

#include <filesystem>
#include <fstream>
#include <regex>
#include <set>
#include <sstream>
#include <string>
#include <vector>

namespace fs = std::filesystem;

namespace {

std::string read_text(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  std::ostringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

const std::vector<fs::path> kPages = {"README.md", "docs/equations.md", "docs/conventions.md", "docs/performance.md",
                                      "docs/metrics.md"};
const std::vector<fs::path> kNamePages = {"docs/equations.md", "docs/conventions.md"};
const std::set<std::string> kRepoFolders = {"apps", "ddpm", "nn", "autograd", "tensor", "tests", "tools", "docs", "scripts"};

// Every source text a code name may live in: the library, programs, tests, tools and scripts.
const std::string& all_sources() {
  static const std::string text = [] {
    std::string all;
    for (const char* dir : {"tensor", "autograd", "nn", "ddpm", "apps", "tests", "tools", "scripts"}) {
      if (!fs::exists(dir)) continue;
      for (const auto& e : fs::recursive_directory_iterator(dir)) {
        const std::string ext = e.path().extension().string();
        if (e.is_regular_file() && (ext == ".h" || ext == ".cpp" || ext == ".py" || ext == ".sh"))
          all += read_text(e.path()) + "\n";
      }
    }
    return all;
  }();
  return text;
}

// `text` spans of a markdown page, outside fenced code blocks.
std::vector<std::string> inline_code(const std::string& page) {
  std::vector<std::string> spans;
  bool fenced = false;
  std::istringstream lines(page);
  const std::regex span("`([^`\n]+)`");
  for (std::string line; std::getline(lines, line);) {
    if (line.rfind("```", 0) == 0 || line.find("   ```") == 0) {
      fenced = !fenced;
      continue;
    }
    if (fenced) continue;
    for (auto it = std::sregex_iterator(line.begin(), line.end(), span); it != std::sregex_iterator(); ++it)
      spans.push_back((*it)[1].str());
  }
  return spans;
}

}  // namespace

TEST_CASE("README and docs pages: every relative link and every repository path they name exists") {
  const std::regex link(R"(\[[^\]]*\]\(([^)\s]+)\))");
  const std::regex path_like(R"(^[A-Za-z0-9_.-]+(/[A-Za-z0-9_.*-]+)*/?$)");
  int links = 0, paths = 0;
  for (const fs::path& page : kPages) {
    REQUIRE_MESSAGE(fs::exists(page), "run from the repository root: " << page << " not found");
    const std::string text = read_text(page);
    for (auto it = std::sregex_iterator(text.begin(), text.end(), link); it != std::sregex_iterator(); ++it) {
      std::string target = (*it)[1].str();
      if (target.rfind("http", 0) == 0 || target[0] == '#') continue;
      target = target.substr(0, target.find('#'));
      ++links;
      CHECK_MESSAGE(fs::exists(page.parent_path() / target), page << " links to " << target << ", which does not exist");
    }
    for (const std::string& span : inline_code(text)) {
      if (!std::regex_match(span, path_like) || span.find('/') == std::string::npos) continue;
      if (!kRepoFolders.count(span.substr(0, span.find('/')))) continue;  // runs/..., data/...: made by a run
      if (span.find('*') != std::string::npos) continue;                  // a pattern such as ops_*.cpp
      ++paths;
      CHECK_MESSAGE(fs::exists(span), page << " names `" << span << "`, which does not exist");
    }
  }
  MESSAGE(links << " links, " << paths << " paths checked");
  CHECK(links >= 10);  // the parse found them (a format change would otherwise pass vacuously)
  CHECK(paths >= 30);
}

TEST_CASE("docs/equations.md and docs/conventions.md: every code name they cite occurs in the sources") {
  // A code name: an identifier with an underscore or a capital (plain words are prose), or A::B.
  const std::regex ident(R"(^[A-Za-z_][A-Za-z0-9_]*(::[A-Za-z_][A-Za-z0-9_]*)?$)");
  const std::regex code_like(R"([_A-Z])");
  int names = 0;
  for (const fs::path& page : kNamePages) {
    REQUIRE_MESSAGE(fs::exists(page), "run from the repository root: " << page << " not found");
    for (const std::string& span : inline_code(read_text(page))) {
      if (!std::regex_match(span, ident) || !std::regex_search(span, code_like)) continue;
      std::vector<std::string> parts;
      for (size_t start = 0;;) {
        const size_t sep = span.find("::", start);
        parts.push_back(span.substr(start, sep == std::string::npos ? std::string::npos : sep - start));
        if (sep == std::string::npos) break;
        start = sep + 2;
      }
      ++names;
      for (const std::string& part : parts)
        CHECK_MESSAGE(all_sources().find(part) != std::string::npos,
                      page << " cites `" << span << "`, but no source file contains " << part);
    }
  }
  MESSAGE(names << " code names checked");
  CHECK(names >= 30);
}
