#include "apps/common/terms_csv.h"

#include <cmath>
#include <sstream>

#include "tensor/io/atomic_file.h"
#include "tensor/io/io_error.h"

namespace dd::app {

BoundTerms read_terms_csv(const std::string& path) {
  const std::vector<uint8_t> bytes = read_file_bytes(path);
  std::istringstream in(std::string(bytes.begin(), bytes.end()));
  std::string line;
  if (!std::getline(in, line) || line != "t,term,bits_per_dim")
    io_error(path, "the header 't,term,bits_per_dim' (apps/nll's nll-terms.csv)", "'" + line.substr(0, 60) + "'");
  BoundTerms terms;
  int64_t line_no = 1;
  while (std::getline(in, line)) {
    ++line_no;
    if (line.empty()) continue;
    const size_t a = line.find(','), b = a == std::string::npos ? a : line.find(',', a + 1);
    bool ok = b != std::string::npos && line.find(',', b + 1) == std::string::npos;
    long long t = 0;
    double v = 0;
    if (ok) {
      try {
        size_t used_t = 0, used_v = 0;
        const std::string ts = line.substr(0, a), vs = line.substr(b + 1);
        t = std::stoll(ts, &used_t);
        v = std::stod(vs, &used_v);
        ok = used_t == ts.size() && used_v == vs.size() && std::isfinite(v) && v >= 0;
      } catch (const std::exception&) {
        ok = false;
      }
    }
    if (!ok) io_error(path, "line " + std::to_string(line_no) + " as t,term,bits_per_dim with a finite value >= 0", "'" + line.substr(0, 60) + "'");
    if (t != static_cast<long long>(terms.t.size()))
      io_error(path, "t = " + std::to_string(terms.t.size()) + " on line " + std::to_string(line_no) + " (t = 0, 1, ... in order)",
               std::to_string(t));
    terms.t.push_back(static_cast<double>(t));
    terms.bits_per_dim.push_back(v);
  }
  if (terms.t.size() < 3) io_error(path, "the terms L_0..L_T of T >= 2 (at least 3 rows)", std::to_string(terms.t.size()) + " rows");
  return terms;
}

}  // namespace dd::app
