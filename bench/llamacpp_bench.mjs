#!/usr/bin/env node
// llamacpp_bench.mjs - the llama.cpp side of `make bench`: the same tests as
// `ember bench`, run through node-llama-cpp's prebuilt CPU binaries.
//
//   node bench/llamacpp_bench.mjs -m FILE [-t N] [--pp 128,512] [--tg 64]
//        [--batch 1,4,8] [--contemplate 1,2,4,8,16] [--reps R] [--seed S] [--json]
//
//   ppN     one evaluation of N random tokens in one sequence (a single
//           llama_decode: batchSize >= N), tokens / s
//   tgN     N single-token evaluations of one sequence, each producing the
//           next token's logits (greedy sample), tokens / s
//   tgN xB  B sequences of one context each evaluating one token per step;
//           node-llama-cpp gathers the B requests of a step into one
//           llama_decode. Aggregate tokens / s.
//   ctN xB  contemplation, as `ember bench --contemplate` (ember_contemplate
//           with B branches of N tokens, early stop off): a 16-token random
//           prompt evaluated once in sequence 0; the last prompt position's
//           sampling distribution gives every branch its first token (branch
//           0 through llama.cpp's sampler, the others drawn in JS from the
//           same candidates); the prompt's KV is copied to sequences 1..B-1
//           (node-llama-cpp 3.21.1 exposes no llama_memory_seq_cp, so the
//           copy goes through llama_state_seq save/load of a state file);
//           then the B branches decode together, one token of each per
//           llama_decode, sampling like ember's defaults (temperature 0.8,
//           top-k 40, top-p 0.95, min-p 0.05), until N tokens or an
//           end-of-generation token. Tokens generated / s over the whole
//           span, the prompt's prefill and the KV copies included (ember
//           times the whole ember_contemplate call).
// Each test runs --reps times after one untimed warm-up; the JSON has the
// same shape as `ember bench --json`.
import {getLlama, LlamaLogLevel} from "node-llama-cpp";
import path from "node:path";
import {fileURLToPath} from "node:url";
import fs from "node:fs";
import os from "node:os";

function usage(msg) {
    if (msg) console.error(`llamacpp_bench: ${msg}`);
    console.error("usage: node bench/llamacpp_bench.mjs -m FILE [-t N] [--pp 128,512] [--tg 64] [--batch 1,4,8] " +
                  "[--contemplate LIST] [--reps R] [--seed S] [--flash-attention auto|on|off] [--json]");
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

const opt = {model: null, threads: 0, pp: [128, 512], tg: 64, batch: [1, 4, 8], contemplate: [], reps: 3, seed: 1,
             json: false, flash: "auto", vocab: 0};
const argv = process.argv.slice(2);
for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    const val = () => argv[++i];
    if (a === "-m" || a === "--model") opt.model = val();
    else if (a === "-t" || a === "--threads") opt.threads = intArg(a, val(), 1, 256);
    else if (a === "--pp") opt.pp = listArg(a, val(), 65536);
    else if (a === "--tg") opt.tg = intArg(a, val(), 0, 65536);
    else if (a === "--batch") opt.batch = listArg(a, val(), 256);
    else if (a === "--contemplate") opt.contemplate = listArg(a, val(), 64);
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
if (!opt.threads) opt.threads = os.availableParallelism();
if (!opt.tg) opt.batch = opt.contemplate = [];
const CT_PROMPT = 16; // as ember bench

const tests = [];
for (const n of opt.pp) tests.push({name: `pp${n}`, kind: "pp", n_tokens: n, n_seqs: 1});
if (opt.tg) tests.push({name: `tg${opt.tg}`, kind: "tg", n_tokens: opt.tg, n_seqs: 1});
for (const b of opt.batch) tests.push({name: `tg${opt.tg} x${b}`, kind: "batch", n_tokens: opt.tg, n_seqs: b});
for (const b of opt.contemplate)
    tests.push({name: `ct${opt.tg} x${b}`, kind: "contemplate", n_tokens: opt.tg, n_seqs: b});
if (!tests.length) usage("nothing to run");

const maxPP = Math.max(0, ...opt.pp), maxB = Math.max(1, ...opt.batch), maxCt = Math.max(0, ...opt.contemplate);
const nSeqs = Math.max(maxB, maxCt);
// contextSize is per sequence (node-llama-cpp allocates contextSize x
// sequences cells): room for the longest prompt, for maxB sequences of tg
// tokens, and for a branch (prompt + tg tokens).
const contextSize = Math.max(maxPP, opt.tg * maxB, opt.tg, maxCt ? CT_PROMPT + opt.tg : 0) + 64;

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
    contextSize, batchSize: Math.max(maxPP, nSeqs, 16), sequences: nSeqs, threads: opt.threads,
    flashAttention: opt.flash === "auto" ? "auto" : opt.flash === "on", performanceTracking: false,
});
const loadMs = performance.now() - t0;
const seqs = [];
for (let i = 0; i < nSeqs; i++) seqs.push(context.getSequence());

let rng = BigInt(opt.seed);
function nextU64() { // splitmix64, as ember bench
    rng = (rng + 0x9E3779B97F4A7C15n) & 0xFFFFFFFFFFFFFFFFn;
    let z = rng;
    z = ((z ^ (z >> 30n)) * 0xBF58476D1CE4E5B9n) & 0xFFFFFFFFFFFFFFFFn;
    z = ((z ^ (z >> 27n)) * 0x94D049BB133111EBn) & 0xFFFFFFFFFFFFFFFFn;
    return z ^ (z >> 31n);
}
const nextToken = () => Number(nextU64() % BigInt(nVocab));
const greedy = {generateNext: {token: true, options: {temperature: 0}}};

// Contemplation (see the top): the prompt's state goes through this file.
const stateDir = maxCt > 1 ? fs.mkdtempSync(path.join(os.tmpdir(), "llamacpp-bench-")) : null;
const stateFile = stateDir && path.join(stateDir, "prompt.state");
if (stateDir) process.on("exit", () => fs.rmSync(stateDir, {recursive: true, force: true}));
// ember's default sampling (ember_sampler_defaults); a seed per branch and step
const sampling = (seed, branch, step) => ({temperature: 0.8, topK: 40, topP: 0.95, minP: 0.05,
                                           seed: Number((seed + BigInt(branch) * 1000003n + BigInt(step)) & 0xFFFFFFFFn)});
function drawFrom(probs, seed, branch) { // one token from a Map token -> probability
    let u = Number(((seed * 31n + BigInt(branch) * 0x9E3779B97F4A7C15n) >> 11n) & ((1n << 53n) - 1n)) / 2 ** 53;
    let last = null;
    for (const [tok, p] of probs) {
        last = tok;
        if ((u -= p) < 0) return tok;
    }
    return last;
}

async function runContemplate(t) {
    const N = t.n_seqs, prompt = Array.from({length: CT_PROMPT}, nextToken), seed = nextU64();
    const start = performance.now();
    const out = await seqs[0].controlledEvaluate([...prompt.slice(0, -1), [prompt[CT_PROMPT - 1], {
        generateNext: {token: true, probabilities: N > 1, options: sampling(seed, 0, 0)}}]]);
    const first = out[CT_PROMPT - 1]?.next;
    if (first?.token == null) throw new Error("no token sampled after the prompt");
    if (N > 1) {
        const c0 = performance.now();
        await seqs[0].saveStateToFile(stateFile);
        for (let i = 1; i < N; i++) await seqs[i].loadStateFromFile(stateFile, {acceptRisk: true});
        (t.kv_copy_ms ??= []).push(performance.now() - c0);
    }
    const last = [], n = [], done = [];
    let generated = 0;
    const take = (i, tok) => {
        last[i] = tok;
        n[i] = (n[i] ?? 0) + 1;
        generated++;
        done[i] = tok == null || model.isEogToken(tok) || n[i] >= t.n_tokens;
    };
    for (let i = 0; i < N; i++) take(i, i === 0 ? first.token : drawFrom(first.probabilities, seed, i));
    for (let step = 1; ; step++) {
        const run = [...Array(N).keys()].filter((i) => !done[i]);
        if (!run.length) break;
        const outs = await Promise.all(run.map((i) => seqs[i].controlledEvaluate([[last[i], {
            generateNext: {token: true, options: sampling(seed, i, step)}}]])));
        run.forEach((i, k) => take(i, outs[k][0]?.next?.token ?? null));
    }
    return generated * 1e3 / (performance.now() - start);
}

async function runTest(t) {
    for (let s = 0; s < t.n_seqs; s++) await seqs[s].clearHistory();
    if (t.kind === "contemplate") return runContemplate(t);
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

// the same warm-up (and random tokens) as ember bench
await runTest({kind: "pp", n_tokens: Math.min(16, Math.max(maxPP, maxB, maxCt ? CT_PROMPT : 0)), n_seqs: 1});
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
    ...(maxCt ? {contemplate_prompt_kv: maxCt > 1 ? "evaluated once, copied to the other sequences via a state file"
                                                  : "evaluated once"} : {}),
    size_bytes: model.size,
    load_ms: loadMs,
    reps: opt.reps,
    results: tests.map((t) => ({name: t.name, kind: t.kind, n_tokens: t.n_tokens, n_seqs: t.n_seqs,
                                median_tps: t.median_tps, mean_tps: t.mean_tps, stdev_tps: t.stdev_tps, tps: t.tps,
                                ...(t.kv_copy_ms ? {kv_copy_ms: t.kv_copy_ms} : {})})),
};
if (opt.json) {
    console.log(JSON.stringify(out));
} else {
    console.log(`model: ${opt.model} (llama.cpp ${out.llama_cpp_release} via node-llama-cpp ${out.node_llama_cpp}, ` +
                `${out.build}), ${opt.threads} threads, ${opt.reps} reps`);
    if (maxCt)
        console.log(`ctN xB: tokens generated / s including the ${CT_PROMPT}-token prompt's prefill (evaluated once; ` +
                    "copied to the other branches through a llama_state_seq file, as node-llama-cpp has no seq_cp)");
    console.log(`| ${"test".padEnd(12)} | t/s (median) |  +- stdev |`);
    console.log("|--------------|-------------:|----------:|");
    for (const t of tests)
        console.log(`| ${t.name.padEnd(12)} | ${t.median_tps.toFixed(2).padStart(12)} | ${t.stdev_tps.toFixed(2).padStart(9)} |`);
    for (const t of tests.filter((x) => x.kv_copy_ms))
        console.log(`${t.name}: copying the prompt's KV to ${t.n_seqs - 1} sequences took at most ` +
                    `${Math.max(...t.kv_copy_ms).toFixed(1)} ms (included)`);
}
await context.dispose();
await model.dispose();
await llama.dispose();
