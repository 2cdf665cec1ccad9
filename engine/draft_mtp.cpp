// MTP drafting: the model's nextn heads. No backend runs the heads yet, so a model with them says so
// plainly: an explicit --draft mtp fails at Engine::open, auto drafts from the context only.
#include <stdexcept>
#include <string>

#include "engine/draft.h"

namespace flashfix {

bool mtp_supported(const Backend& backend, std::string* why_not) {
  if (why_not)
    *why_not = backend.model().config().n_nextn == 0
                   ? "the model has no MTP (nextn) heads"
                   : "MTP drafting is not supported by the " + std::string(backend.name()) + " backend yet";
  return false;
}

std::unique_ptr<DraftSource> make_mtp_draft(const DraftSetup& setup) {
  std::string why;
  mtp_supported(setup.backend, &why);
  throw std::invalid_argument(why);
}

}  // namespace flashfix
