#!/usr/bin/env node
// llamacpp_bench.mjs - the llama.cpp side of `make bench`: the same tests as
// `ember bench`, run through node-llama-cpp's prebuilt CPU binaries.
//
//   node bench/llamacpp_bench.mjs -m FILE [-t N] [--pp 128,512] [--tg 64]
//        [--batch 1,4,8] [--reps R] [--seed S] [--json]
//
//   ppN     one evaluation of N random tokens in one sequence (a single
//           llama_decode: batchSize >= N), tokens / s
//   tgN     N single-token evaluations of one sequence, each producing the
//           next token's logits (greedy sample), tokens / s
//   tgN xB  B sequences of one context each evaluating one token per step;
//           node-llama-cpp gathers the B requests of a step into one
//           llama_decode. Aggregate tokens / s.
// Each test runs --reps times after one untimed warm-up; the JSON has the
// same shape as `ember bench --json`.
import {getLlama, LlamaLogLevel} from "node-llama-cpp";
import path from "node:path";
import {fileURLToPath} from "node:url";
import fs from "node:fs";

function usage(msg) {
    if (msg) console.error(`llamacpp_bench: ${msg}`);
    console.error("usage: node bench/llamacpp_bench.mjs -m FILE [-t N] [--pp 128,512] [--tg 64] [--batch 1,4,8] " +
                  "[--reps R] [--seed S] [--flash-attention auto|on|off] [--json]");
    process.exit(2);
}

function intArg(flag, v, lo, hi) {
    if (v === undefined || !/^[0-9]+$/.test(v)) usage(`${flag}: '${v}' is not an integer`);
    const n = Number(v);
    if (n < lo || n > hi) usage(`${flag}: ${n} is out of range [${lo}, ${hi}]`);
    return n;
}

function listArg(flag, v, hi) {
    if (v === undefined) usage(`${flag} needs a value`);
    return v.split(",").map((s) => intArg(flag, s, 0, hi)).filter((n) => n > 0);
}

const opt = {model: null, threads: 0, pp: [128, 512], tg: 64, batch: [1, 4, 8], reps: 3, seed: 1, json: false,
             flash: "auto", vocab: 0};
const argv = process.argv.slice(2);
for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    const val = () => argv[++i];
    if (a === "-m" || a === "--model") opt.model = val();
    else if (a === "-t" || a === "--threads") opt.threads = intArg(a, val(), 1, 256);
    else if (a === "--pp") opt.pp = listArg(a, val(), 65536);
    else if (a === "--tg") opt.tg = intArg(a, val(), 0, 65536);
    else if (a === "--batch") opt.batch = listArg(a, val(), 256);
    else if (a === "--reps") opt.reps = intArg(a, val(), 1, 1000);
    else if (a === "--seed") opt.seed = intArg(a, val(), 0, 2 ** 31);
    else if (a === "--vocab") opt.vocab = intArg(a, val(), 1, 1 << 24);
    else if (a === "--flash-attention") {
        opt.flash = val();
        if (!["auto", "on", "off"].includes(opt.flash)) usage("--flash-attention: expected auto, on or off");
    } else if (a === "--json") opt.json = true;
    else if (a === "-h" || a === "--help") usage();
    else usage(`unknown option '${a}'`);
}
if (!opt.model) usage("no model (-m FILE)");
if (!fs.existsSync(opt.model)) usage(`${opt.model}: no such file`);
if (!opt.threads) opt.threads = (await import("node:os")).availableParallelism();
if (!opt.tg) opt.batch = [];

const tests = [];
for (const n of opt.pp) tests.push({name: `pp${n}`, kind: "pp", n_tokens: n, n_seqs: 1});
if (opt.tg) tests.push({name: `tg${opt.tg}`, kind: "tg", n_tokens: opt.tg, n_seqs: 1});
for (const b of opt.batch) tests.push({name: `tg${opt.tg} x${b}`, kind: "batch", n_tokens: opt.tg, n_seqs: b});
if (!tests.length) usage("nothing to run");

const maxPP = Math.max(0, ...opt.pp), maxB = Math.max(1, ...opt.batch);
// llama.cpp's unified KV cache is shared by all sequences: room for the
// longest prompt and for maxB sequences of tg tokens.
const contextSize = Math.max(maxPP, opt.tg * maxB, opt.tg) + 64;

// CPU only: gpu false selects the prebuilt "linux-x64" binary (which picks
// the best libggml-cpu-*.so for this CPU at run time); build "never" and
// skipDownload keep it offline; maxThreads 0 makes `threads` exact.
const llama = await getLlama({gpu: false, build: "never", skipDownload: true, usePrebuiltBinaries: true,
                              maxThreads: 0, progressLogs: false, logLevel: LlamaLogLevel.error});
const t0 = performance.now();
const model = await llama.loadModel({modelPath: opt.model, gpuLayers: 0});
const nVocab = opt.vocab || model.fileInfo?.metadata?.llama?.vocab_size ||
               model.fileInfo?.metadata?.tokenizer?.ggml?.tokens?.length;
if (!nVocab) usage("cannot tell the vocabulary size (give --vocab N)");
const context = await model.createContext({
    contextSize, batchSize: Math.max(maxPP, maxB, 16), sequences: maxB, threads: opt.threads,
    flashAttention: opt.flash === "auto" ? "auto" : opt.flash === "on", performanceTracking: false,
});
const loadMs = performance.now() - t0;
const seqs = [];
for (let i = 0; i < maxB; i++) seqs.push(context.getSequence());

let rng = BigInt(opt.seed);
function nextToken() { // splitmix64, as ember bench
    rng = (rng + 0x9E3779B97F4A7C15n) & 0xFFFFFFFFFFFFFFFFn;
    let z = rng;
    z = ((z ^ (z >> 30n)) * 0xBF58476D1CE4E5B9n) & 0xFFFFFFFFFFFFFFFFn;
    z = ((z ^ (z >> 27n)) * 0x94D049BB133111EBn) & 0xFFFFFFFFFFFFFFFFn;
    z = z ^ (z >> 31n);
    return Number(z % BigInt(nVocab));
}
const greedy = {generateNext: {token: true, options: {temperature: 0}}};

async function runTest(t) {
    for (let s = 0; s < t.n_seqs; s++) await seqs[s].clearHistory();
    if (t.kind === "pp") {
        const toks = Array.from({length: t.n_tokens}, nextToken);
        const start = performance.now();
        await seqs[0].evaluateWithoutGeneratingNewTokens(toks);
        return t.n_tokens * 1e3 / (performance.now() - start);
    }
    let total = 0;
    for (let step = 0; step < t.n_tokens; step++) {
        const toks = Array.from({length: t.n_seqs}, nextToken);
        const start = performance.now();
        await Promise.all(toks.map((tok, s) => seqs[s].controlledEvaluate([[tok, greedy]])));
        total += performance.now() - start;
    }
    return t.n_tokens * t.n_seqs * 1e3 / total;
}

await runTest({kind: "pp", n_tokens: Math.min(16, Math.max(maxPP, 1)), n_seqs: 1});
if (opt.tg) await runTest({kind: "tg", n_tokens: 2, n_seqs: 1});
for (const t of tests) t.tps = [];
for (let r = 0; r < opt.reps; r++)
    for (const t of tests) t.tps.push(await runTest(t));
for (const t of tests) {
    const s = [...t.tps].sort((a, b) => a - b), n = s.length;
    t.median_tps = n % 2 ? s[(n - 1) / 2] : (s[n / 2 - 1] + s[n / 2]) / 2;
    t.mean_tps = s.reduce((a, b) => a + b, 0) / n;
    t.stdev_tps = n > 1 ? Math.sqrt(s.reduce((a, b) => a + (b - t.mean_tps) ** 2, 0) / (n - 1)) : 0;
}

const here = path.dirname(fileURLToPath(import.meta.url));
const out = {
    engine: "llama.cpp",
    node_llama_cpp: JSON.parse(fs.readFileSync(path.join(here, "node_modules/node-llama-cpp/package.json"), "utf8")).version,
    llama_cpp_release: llama.llamaCppRelease.release,
    build: `${llama.buildType}, gpu ${llama.gpu}`,
    system_info: llama.systemInfo,
    model: opt.model,
    threads: opt.threads,
    flash_attention: opt.flash,
    size_bytes: model.size,
    load_ms: loadMs,
    reps: opt.reps,
    results: tests.map((t) => ({name: t.name, kind: t.kind, n_tokens: t.n_tokens, n_seqs: t.n_seqs,
                                median_tps: t.median_tps, mean_tps: t.mean_tps, stdev_tps: t.stdev_tps, tps: t.tps})),
};
if (opt.json) {
    console.log(JSON.stringify(out));
} else {
    console.log(`model: ${opt.model} (llama.cpp ${out.llama_cpp_release} via node-llama-cpp ${out.node_llama_cpp}, ` +
                `${out.build}), ${opt.threads} threads, ${opt.reps} reps`);
    console.log(`| ${"test".padEnd(12)} | t/s (median) |  +- stdev |`);
    console.log("|--------------|-------------:|----------:|");
    for (const t of tests)
        console.log(`| ${t.name.padEnd(12)} | ${t.median_tps.toFixed(2).padStart(12)} | ${t.stdev_tps.toFixed(2).padStart(9)} |`);
}
await context.dispose();
await model.dispose();
await llama.dispose();
