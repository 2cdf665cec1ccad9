#include "engine/draft.h"

#include <stdexcept>
#include <string>

namespace flashfix {

DraftMode parse_draft_mode(std::string_view name) {
  for (DraftMode m : {DraftMode::None, DraftMode::Mtp, DraftMode::Context, DraftMode::Auto})
    if (name == draft_mode_name(m)) return m;
  throw std::invalid_argument("unknown draft mode '" + std::string(name) + "' (none, mtp, context or auto)");
}

std::string_view draft_mode_name(DraftMode mode) {
  switch (mode) {
    case DraftMode::None: return "none";
    case DraftMode::Mtp: return "mtp";
    case DraftMode::Context: return "context";
    case DraftMode::Auto: return "auto";
  }
  return "?";
}

}  // namespace flashfix
