// .dial files → their TextMate tokens (with scopes) as JSON, through the grammar VS Code would use.
//
//   node test/tokenize.mjs FILE...            → {"FILE": [{"line", "start", "end", "text", "scopes"}...], ...}
//   node test/tokenize.mjs --grammar G FILE   → the same with another grammar file
//
// Runs vscode-textmate with the vscode-oniguruma WASM regex engine, exactly as the editor does
// (devDependencies of this folder: `npm ci` here first). Lines are tokenised in order with the rule stack
// carried from one to the next, so multi-line strings and blocks are followed like in the editor.

import fs from "node:fs";
import path from "node:path";
import { createRequire } from "node:module";
import { fileURLToPath } from "node:url";

const require = createRequire(import.meta.url);
const here = path.dirname(fileURLToPath(import.meta.url));

function parseArgs(argv) {
  const args = { grammar: path.join(here, "..", "syntaxes", "dial.tmLanguage.json"), files: [] };
  for (let i = 0; i < argv.length; i++) {
    if (argv[i] === "--grammar") args.grammar = argv[++i];
    else args.files.push(argv[i]);
  }
  return args;
}

async function loadGrammar(grammarPath) {
  const vsctm = require("vscode-textmate");
  const oniguruma = require("vscode-oniguruma");
  const wasm = fs.readFileSync(require.resolve("vscode-oniguruma/release/onig.wasm"));
  await oniguruma.loadWASM(wasm.buffer.slice(wasm.byteOffset, wasm.byteOffset + wasm.byteLength));
  const registry = new vsctm.Registry({
    onigLib: Promise.resolve({
      createOnigScanner: (patterns) => new oniguruma.OnigScanner(patterns),
      createOnigString: (text) => new oniguruma.OnigString(text),
    }),
    loadGrammar: async (scopeName) =>
      scopeName === "source.dial"
        ? vsctm.parseRawGrammar(fs.readFileSync(grammarPath, "utf8"), grammarPath)
        : null,
  });
  return { grammar: await registry.loadGrammar("source.dial"), INITIAL: vsctm.INITIAL };
}

function tokenize(grammar, INITIAL, text) {
  const tokens = [];
  let stack = INITIAL;
  const lines = text.replace(/^\uFEFF/, "").split("\n");
  lines.forEach((raw, index) => {
    const line = raw.endsWith("\r") ? raw.slice(0, -1) : raw;
    const result = grammar.tokenizeLine(line, stack);
    for (const token of result.tokens) {
      const end = Math.min(token.endIndex, line.length);
      if (end <= token.startIndex) continue;
      tokens.push({ line: index + 1, start: token.startIndex, end, text: line.slice(token.startIndex, end),
                    scopes: token.scopes });
    }
    stack = result.ruleStack;
  });
  return tokens;
}

const args = parseArgs(process.argv.slice(2));
if (args.files.length === 0) {
  process.stderr.write("usage: node test/tokenize.mjs [--grammar FILE] SPEC.dial...\n");
  process.exit(2);
}
const { grammar, INITIAL } = await loadGrammar(args.grammar);
const out = {};
for (const file of args.files) out[file] = tokenize(grammar, INITIAL, fs.readFileSync(file, "utf8"));
process.stdout.write(JSON.stringify(out) + "\n");
