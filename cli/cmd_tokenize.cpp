// flashfix tokenize: text on stdin -> token ids on stdout, for checking the tokenizer against llama.cpp.
#include <cstdio>
#include <stdexcept>
#include <string>

#include "cli/args.h"
#include "cli/command.h"
#include "engine/gguf.h"
#include "engine/tokenizer.h"

namespace flashfix::cli {

static int run_tokenize(const std::vector<std::string>& argv) {
  Args args(argv, {{"--model", true}, {"--special", false}, {"--bos", false}});
  if (args.help()) {
    std::printf(
        "usage: flashfix tokenize --model M.gguf [--special] [--bos] < text\n\n"
        "Prints the token ids of the text on stdin, separated by spaces.\n"
        "  --model M.gguf  model (or vocabulary-only) GGUF whose tokenizer to use\n"
        "  --special       parse control tokens written in the text (e.g. <|im_end|>)\n"
        "  --bos           add BOS/EOS as the model asks (tokenizer.ggml.add_bos_token)\n");
    return 0;
  }
  if (!args.positional().empty()) throw UsageError("unexpected argument '" + args.positional().front() + "'");
  const auto file = GgufFile::open(args.require("--model"));
  const auto tok = Tokenizer::from_gguf(*file);
  std::string text;
  char buf[1 << 16];
  for (size_t got; (got = std::fread(buf, 1, sizeof buf, stdin)) > 0;) text.append(buf, got);
  if (std::ferror(stdin)) throw std::runtime_error("cannot read stdin");
  std::string out;
  for (int32_t id : tok->encode(text, args.has("--special"), args.has("--bos")))
    out += (out.empty() ? "" : " ") + std::to_string(id);
  out += '\n';
  std::fwrite(out.data(), 1, out.size(), stdout);
  return 0;
}

static const CommandRegistration reg{"tokenize", "print the token ids of stdin's text (--model M.gguf)", &run_tokenize};

}  // namespace flashfix::cli
