#!/usr/bin/env node
// Runs solcjs in --standard-json mode on INPUT and writes the output JSON to OUTPUT.
//
// Why: solcjs is a 32-bit WebAssembly build; code generation for a large set of contracts in
// one process (forge's clean build of every test contract) runs out of WebAssembly memory
// ("RuntimeError: memory access out of bounds"). So when a run fails, the output selection is
// split in halves and each half is compiled in a fresh process with the SAME full source set
// (so source ids and every contract's bytecode are exactly what one run would give), and the
// outputs are merged. Small inputs take the single-run path.
//
// Each solcjs process reads its input from a file (solcjs cannot read a non-blocking stdin)
// and writes to a file (node truncates piped stdout at 64 KiB when it exits); `>>>` notice
// lines that solcjs prints before the JSON are dropped.
//
// The solcjs CLI hands its input to the compiler on the WebAssembly STACK (emscripten `ccall`
// with a string argument reserves 4 bytes per character there; the stack is 5 MiB), so an input
// above ~1.3 million characters (forge's full build of contracts and tests is about that)
// crashes it with the same "memory access out of bounds" before compiling anything. Inputs
// above HEAP_INPUT_CHARS are therefore passed on the heap instead (`_malloc`, then
// `_solidity_compile`): same compiler, same output; no import callback, which forge and
// keeper/compile.py never need since they send every source.
//
// usage: solcjs-chunked.js SOLC_JS INPUT OUTPUT [solcjs args...]
//        solcjs-chunked.js --heap SOLJSON INPUT OUTPUT   (one compile, input on the heap)
"use strict";
const fs = require("fs");
const os = require("os");
const path = require("path");
const { spawnSync } = require("child_process");

const HEAP_INPUT_CHARS = 1000000;

if (process.argv[2] === "--heap") {
  const [soljsonPath, inFile, outFile] = process.argv.slice(3);
  const solc = require(soljsonPath);
  const text = fs.readFileSync(inFile, "utf8");
  const size = solc.lengthBytesUTF8(text) + 1;
  const ptr = solc._malloc(size);
  solc.stringToUTF8(text, ptr, size);
  fs.writeFileSync(outFile, solc.UTF8ToString(solc._solidity_compile(ptr, 0, 0)));
  solc._free(ptr);
  process.exit(0);
}

const [solcjs, inputPath, outputPath, ...solcArgs] = process.argv.slice(2);
const input = JSON.parse(fs.readFileSync(inputPath, "utf8"));
const tmp = fs.mkdtempSync(path.join(os.tmpdir(), "solc-chunk-"));
let runs = 0;

function runSolc(selection) {
  const part = { ...input, settings: { ...input.settings, outputSelection: selection } };
  const inFile = path.join(tmp, `in-${runs}.json`);
  const outFile = path.join(tmp, `out-${runs}.json`);
  runs += 1;
  const json = JSON.stringify(part);
  fs.writeFileSync(inFile, json);
  const fdIn = fs.openSync(inFile, "r");
  const fdOut = fs.openSync(outFile, "w");
  const argv =
    json.length > HEAP_INPUT_CHARS
      ? [__filename, "--heap", path.join(path.dirname(solcjs), "soljson.js"), inFile, outFile]
      : [solcjs, "--standard-json", ...solcArgs];
  const r = spawnSync(process.execPath, argv, {
    stdio: [fdIn, fdOut, "pipe"],
    maxBuffer: 64 * 1024 * 1024,
  });
  fs.closeSync(fdIn);
  fs.closeSync(fdOut);
  const text = fs
    .readFileSync(outFile, "utf8")
    .split("\n")
    .filter((l) => !l.startsWith(">>>"))
    .join("\n")
    .trim();
  if (r.status === 0 && text.startsWith("{")) return JSON.parse(text);
  return { failed: true, stderr: String(r.stderr || "") };
}

function selectionKeys(selection) {
  // "*" as a file key means every source: expand it so that it can be split.
  if (!Object.prototype.hasOwnProperty.call(selection, "*")) return Object.keys(selection);
  const wildcard = selection["*"];
  const expanded = {};
  for (const f of Object.keys(input.sources)) expanded[f] = selection[f] || wildcard;
  Object.keys(selection).forEach((k) => k !== "*" && (expanded[k] = selection[k]));
  input.settings.outputSelection = expanded;
  return Object.keys(expanded);
}

function compile(keys) {
  const all = input.settings.outputSelection;
  const selection = {};
  keys.forEach((k) => (selection[k] = all[k]));
  const out = runSolc(selection);
  if (!out.failed) return out;
  if (keys.length <= 1) {
    process.stderr.write(out.stderr);
    throw new Error(`solcjs failed on ${keys.join(", ") || "the input"}`);
  }
  const half = Math.ceil(keys.length / 2);
  return merge(compile(keys.slice(0, half)), compile(keys.slice(half)));
}

function merge(a, b) {
  const out = { ...a, contracts: { ...(a.contracts || {}) }, sources: { ...(a.sources || {}) } };
  for (const [file, cs] of Object.entries(b.contracts || {})) {
    out.contracts[file] = { ...(out.contracts[file] || {}), ...cs };
  }
  for (const [file, s] of Object.entries(b.sources || {})) {
    const have = out.sources[file];
    if (!have || Object.keys(s).length > Object.keys(have).length) out.sources[file] = s;
  }
  const seen = new Set((a.errors || []).map((e) => e.formattedMessage));
  const errors = [...(a.errors || [])];
  for (const e of b.errors || []) if (!seen.has(e.formattedMessage)) errors.push(e);
  if (errors.length) out.errors = errors;
  return out;
}

try {
  const keys = selectionKeys(input.settings.outputSelection || {});
  const out = compile(keys);
  fs.writeFileSync(outputPath, JSON.stringify(out));
} catch (e) {
  process.stderr.write(`solc shim: ${e.message}\n`);
  process.exitCode = 1;
} finally {
  fs.rmSync(tmp, { recursive: true, force: true });
}
