// kvctl's entry point; everything else lives in kvctl.cc (see kvctl.h).
#include <cstdlib>
#include <iostream>
#include <string>
#include <vector>

#include "client/kvctl/kvctl.h"

int main(int argc, char** argv) {
  std::vector<std::string> args(argv + 1, argv + argc);
  kvd::kvctl::Io io{std::cin, std::cout, std::cerr,
                    [](const char* name) -> const char* { return std::getenv(name); }};
  const int code = kvd::kvctl::Run(args, io);
  std::cout.flush();
  return code;
}
