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
// usage: solcjs-chunked.js SOLC_JS INPUT OUTPUT [solcjs args...]
"use strict";
const fs = require("fs");
const os = require("os");
const path = require("path");
const { spawnSync } = require("child_process");

const [solcjs, inputPath, outputPath, ...solcArgs] = process.argv.slice(2);
const input = JSON.parse(fs.readFileSync(inputPath, "utf8"));
const tmp = fs.mkdtempSync(path.join(os.tmpdir(), "solc-chunk-"));
let runs = 0;

function runSolc(selection) {
  const part = { ...input, settings: { ...input.settings, outputSelection: selection } };
  const inFile = path.join(tmp, `in-${runs}.json`);
  const outFile = path.join(tmp, `out-${runs}.json`);
  runs += 1;
  fs.writeFileSync(inFile, JSON.stringify(part));
  const fdIn = fs.openSync(inFile, "r");
  const fdOut = fs.openSync(outFile, "w");
  const r = spawnSync(process.execPath, [solcjs, "--standard-json", ...solcArgs], {
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
