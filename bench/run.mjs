#!/usr/bin/env node
// run.mjs - `make bench`: ember against llama.cpp on the same random-weight
// models, interleaved, and BENCHMARKS.md with the medians and ratios.
//
// Settings (environment; `make bench VAR=...` passes them through):
//   BENCH_REPS     repetitions (default 3); each runs every test once per engine
//   BENCH_MODELS   models, space- or comma-separated (default "q4_0 q8_0 q4_k_m moe_q4_k_m"): a weight
//                  type (BENCH_SHAPE in that type), moe_TYPE (BENCH_MOE_SHAPE in that type) or SHAPE:TYPE
//   BENCH_SHAPE    mkmodel shape of the plain entries (default llama-3.2-1b)
//   BENCH_MOE_SHAPE  mkmodel shape of the moe_ entries (default mixtral-mini: 8 experts, top-2)
//   BENCH_THREADS  threads for both engines (default: all cores)
//   BENCH_PP       prompt sizes (default 128,512)
//   BENCH_TG       generated tokens (default 64)
//   BENCH_BATCH    parallel sequences for batched generation (default 1,4,8)
//   BENCH_CONTEMPLATE  contemplation branch counts, e.g. 1,2,4,8,16 (default: none): ctN xB rows
//   BENCH_DIR      where the models are generated (default bench/models, kept between runs)
//   BENCH_OUT      report file (default BENCHMARKS.md)
//   BENCH_MAX_MIN  time budget in minutes (default 20): no repetition is started that would
//                  probably end later (the first always runs; the report says how many ran)
//   EMBER          the ember binary (default build/ember)
//
// Within a repetition, every model is run by both engines back to back, the
// engine going first alternating between repetitions, so slow drifts of a
// shared machine hit both sides alike: the ratios are what to read.
import {spawnSync, execSync} from "node:child_process";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import {fileURLToPath} from "node:url";

const here = path.dirname(fileURLToPath(import.meta.url));
const root = path.resolve(here, "..");
process.chdir(root);

const env = (k, d) => (process.env[k] !== undefined && process.env[k] !== "" ? process.env[k] : d);
const cfg = {
    reps: Number(env("BENCH_REPS", "3")),
    models: env("BENCH_MODELS", "q4_0 q8_0 q4_k_m moe_q4_k_m").split(/[\s,]+/).filter(Boolean),
    shape: env("BENCH_SHAPE", "llama-3.2-1b"),
    moeShape: env("BENCH_MOE_SHAPE", "mixtral-mini"),
    threads: Number(env("BENCH_THREADS", String(os.availableParallelism()))),
    pp: env("BENCH_PP", "128,512"),
    tg: env("BENCH_TG", "64"),
    batch: env("BENCH_BATCH", "1,4,8"),
    contemplate: env("BENCH_CONTEMPLATE", ""),
    dir: env("BENCH_DIR", "bench/models"),
    out: env("BENCH_OUT", "BENCHMARKS.md"),
    ember: env("EMBER", "build/ember"),
    maxMin: Number(env("BENCH_MAX_MIN", "20")),
};
if (!(cfg.reps >= 1) || !(cfg.threads >= 1)) {
    console.error("bench: BENCH_REPS and BENCH_THREADS must be positive integers");
    process.exit(2);
}
const t0 = Date.now();
const log = (msg) => console.error(`[bench ${((Date.now() - t0) / 1000).toFixed(0).padStart(4)} s] ${msg}`);

function run(cmd, args, {timeoutS = 1800, quiet = false} = {}) {
    const r = spawnSync(cmd, args, {encoding: "utf8", timeout: timeoutS * 1000, maxBuffer: 64 << 20});
    if (r.error) return {ok: false, out: "", err: String(r.error)};
    if (!quiet && r.stderr) process.stderr.write(r.stderr);
    return {ok: r.status === 0, out: r.stdout, err: r.stderr || ""};
}

// ---- models ----
fs.mkdirSync(cfg.dir, {recursive: true});
const models = [];
const notes = [];
// An entry: "TYPE", "moe_TYPE" or "SHAPE:TYPE" -> the shape and type mkmodel writes.
function entry(id) {
    const colon = id.indexOf(":");
    if (colon > 0) return {id, shape: id.slice(0, colon), type: id.slice(colon + 1)};
    if (id.startsWith("moe_")) return {id, shape: cfg.moeShape, type: id.slice(4)};
    return {id, shape: cfg.shape, type: id};
}
for (const {id, shape, type} of cfg.models.map(entry)) {
    if (!/^[A-Za-z0-9._-]+$/.test(shape) || !/^[A-Za-z0-9_]+$/.test(type)) {
        console.error(`bench: BENCH_MODELS entry '${id}' is not TYPE, moe_TYPE or SHAPE:TYPE`);
        process.exit(2);
    }
    const file = path.join(cfg.dir, `${shape}-${type}.gguf`);
    if (fs.existsSync(file)) {
        log(`reusing ${file} (delete it to regenerate)`);
    } else {
        log(`generating ${file}`);
        const r = run(cfg.ember, ["mkmodel", file, "--shape", shape, "--type", type, "--seed", "1",
                                  "-t", String(cfg.threads)], {quiet: true});
        process.stderr.write(r.err);
        if (!r.ok) {
            if (/not available/.test(r.err)) {
                const note = `${id}: skipped, this ember build cannot write it (${r.err.trim().replace(/^ember: /, "")})`;
                log(note);
                notes.push(note);
                continue;
            }
            console.error(`bench: ember mkmodel failed for ${id}`);
            process.exit(1);
        }
    }
    models.push({id, shape, type, file, size: fs.statSync(file).size});
}
if (!models.length) {
    console.error("bench: no model to run");
    process.exit(1);
}

// ---- runs ----
const common = ["-t", String(cfg.threads), "--pp", cfg.pp, "--tg", cfg.tg, "--batch", cfg.batch, "--reps", "1", "--json",
                ...(cfg.contemplate ? ["--contemplate", cfg.contemplate] : [])];
const engines = {
    ember: (m, seed) => run(cfg.ember, ["bench", "-m", m.file, ...common, "--seed", String(seed)]),
    "llama.cpp": (m, seed) =>
        run(process.execPath, [path.join(here, "llamacpp_bench.mjs"), "-m", m.file, ...common, "--seed", String(seed),
                               ...(m.n_vocab ? ["--vocab", String(m.n_vocab)] : [])]),
};
const results = {}; // results[id][engine][test] = [tps per rep]
const meta = {}; // meta[id][engine] = last JSON (without results)
const loadStart = os.loadavg();
let repsRun = 0, longestRep = 0, maxLoad = loadStart[0];
for (let rep = 0; rep < cfg.reps; rep++) {
    const repStart = Date.now();
    if (rep > 0 && (repStart - t0 + longestRep) / 60000 > cfg.maxMin) {
        const note = `stopped after ${rep} of ${cfg.reps} repetitions: another would pass BENCH_MAX_MIN=${cfg.maxMin} minutes`;
        log(note);
        notes.push(note);
        break;
    }
    for (const m of models) {
        const order = rep % 2 === 0 ? ["ember", "llama.cpp"] : ["llama.cpp", "ember"];
        for (const e of order) {
            const t = Date.now();
            const r = engines[e](m, rep + 1);
            let j;
            try {
                j = JSON.parse(r.out.trim().split("\n").pop());
            } catch {
                j = null;
            }
            if (!r.ok || !j) {
                console.error(`bench: ${e} failed on ${m.file} (rep ${rep + 1}):\n${r.err}`);
                process.exit(1);
            }
            maxLoad = Math.max(maxLoad, os.loadavg()[0]);
            if (e === "ember" && j.n_vocab) m.n_vocab = j.n_vocab;
            results[m.id] ??= {};
            results[m.id][e] ??= {};
            for (const x of j.results) (results[m.id][e][x.name] ??= []).push(x.tps[0]);
            meta[m.id] ??= {};
            meta[m.id][e] = {...j, results: undefined};
            log(`rep ${rep + 1}/${cfg.reps} ${m.id} ${e}: ` +
                j.results.map((x) => `${x.name} ${x.tps[0].toFixed(1)}`).join(", ") +
                ` t/s (${((Date.now() - t) / 1000).toFixed(0)} s)`);
        }
    }
    repsRun = rep + 1;
    longestRep = Math.max(longestRep, Date.now() - repStart);
}
const loadEnd = os.loadavg();

// ---- report ----
const median = (a) => {
    const s = [...a].sort((x, y) => x - y), n = s.length;
    return n % 2 ? s[(n - 1) / 2] : (s[n / 2 - 1] + s[n / 2]) / 2;
};
const rows = [];
for (const m of models) {
    const em = results[m.id].ember, lc = results[m.id]["llama.cpp"];
    for (const test of Object.keys(em)) {
        const a = median(em[test]), b = lc[test] ? median(lc[test]) : NaN;
        rows.push({model: `${m.shape} ${m.type.toUpperCase()}`, test, ember: a, llama: b, ratio: a / b,
                   emberAll: em[test], llamaAll: lc[test] || []});
    }
}
const fmt = (x) => (Number.isFinite(x) ? x.toFixed(2) : "-");
const table = [
    "| model | test | ember t/s | llama.cpp t/s | ember / llama.cpp |",
    "|---|---|---:|---:|---:|",
    ...rows.map((r) => `| ${r.model} | ${r.test} | ${fmt(r.ember)} | ${fmt(r.llama)} | ${fmt(r.ratio)} |`),
];
console.log("\n" + table.join("\n") + "\n");

function sh(cmd) {
    try {
        return execSync(cmd, {encoding: "utf8", stdio: ["ignore", "pipe", "ignore"]}).trim();
    } catch {
        return "";
    }
}
const lscpu = sh("lscpu");
const pick = (k) => (lscpu.match(new RegExp(`^${k}:\\s*(.*)$`, "m")) || [])[1] || "?";
const flags = pick("Flags").split(/\s+/).filter((f) => /^(avx|avx2|fma|f16c|avx512f|avx512bw|avx512_vnni|avx_vnni|amx_tile)$/.test(f));
const commit = sh("git rev-parse --short HEAD");
const dirty = sh("git status --porcelain --untracked-files=no") ? " + uncommitted changes" : "";
const setVars = Object.keys(process.env).filter((k) => /^BENCH_/.test(k) && process.env[k] !== "").sort();
const command = ["make bench", ...setVars.map((k) => `${k}=${/\s/.test(process.env[k]) ? `"${process.env[k]}"` : process.env[k]}`)].join(" ");
const anyLc = Object.values(meta)[0]["llama.cpp"];
const anyEm = Object.values(meta)[0].ember;
const mib = (b) => (b / 1048576).toFixed(0);
const SECTION = "## Speed against llama.cpp";
const md = [
    SECTION,
    "",
    `ember against llama.cpp on ${[...new Set(models.map((m) => m.shape))].join(" and ")}-shaped models with random ` +
        "weights (`ember mkmodel --seed 1`),",
    "same files for both, CPU only. Throughput in tokens per second, median of the repetitions; the last",
    "column is what counts: absolute numbers on a shared machine are noisy, but both engines ran",
    "interleaved (each repetition runs every model on both, the engine going first alternating), so",
    "drift hits both alike.",
    "",
    "- ppN: one decode call of N random tokens (prompt processing); tgN: N single-token decode calls",
    "  (generation, logits each step); tgN xB: B sequences generating together, one token of each per",
    "  call, aggregate tokens/s.",
    ...(cfg.contemplate
        ? ["- ctN xB: contemplation, B branches of N tokens over one 16-token random prompt (prefilled once,",
           "  shared by ember's forks; copied through a state file for llama.cpp, which node-llama-cpp offers no",
           "  seq_cp for), decoded together, early stop off; tokens/s over the whole span, prefill included."]
        : []),
    ...(maxLoad > os.availableParallelism() + 0.5
        ? [`- **Caution**: the 1-minute load average reached ${maxLoad.toFixed(1)} on ${os.availableParallelism()} CPUs ` +
           "during the run: other work competed for the cores, and spin-waiting thread pools (both engines') " +
           "degrade badly when a thread is descheduled, so these numbers mostly measure that contention. " +
           "Rerun on an idle machine."]
        : []),
    `- ${repsRun} repetition${repsRun > 1 ? "s" : ""}, ${cfg.threads} threads for both engines, warm-up decode before each run.`,
    "",
    ...table,
    "",
    "Models (tensor data; weights streamed per generated token = all but the token embeddings, and of a",
    "mixture of experts only the experts a token is routed to):",
    "",
    ...models.map((m) => {
        const j = meta[m.id].ember;
        const moe = j.n_expert ? `, ${j.n_expert} experts (${j.n_expert_used} used per token)` : "";
        const streamed = j.streamed_bytes_per_call ? `; ${mib(j.streamed_bytes_per_call)} MiB of weights streamed per ` +
                         `generated token${j.n_expert ? " (active experts only)" : ""}` : "";
        return `- ${path.basename(m.file)}: ${mib(m.size)} MiB file, ${j.desc}${moe}${streamed}`;
    }),
    ...notes.map((n) => `- ${n}`),
    "",
    "### How it was run",
    "",
    "```",
    command,
    "```",
    "",
    `- date: ${new Date().toISOString().replace(/\.\d+Z$/, "Z")}, total ${((Date.now() - t0) / 60000).toFixed(1)} min`,
    `- ember: ${commit}${dirty}, ${anyEm.kernels} kernels, \`ember bench\``,
    `- llama.cpp: release ${anyLc.llama_cpp_release} via node-llama-cpp ${anyLc.node_llama_cpp} ` +
        `(${anyLc.build}; flash attention ${anyLc.flash_attention}), \`bench/llamacpp_bench.mjs\``,
    `- llama.cpp CPU features: ${anyLc.system_info.trim()}`,
    `- machine: ${pick("Model name")}, ${pick("CPU\\(s\\)")} CPUs (${pick("Thread\\(s\\) per core")} thread(s) per core), ` +
        `L2 ${pick("L2 cache")}, L3 ${pick("L3 cache")}, ${(os.totalmem() / 2 ** 30).toFixed(0)} GiB RAM, ` +
        `flags ${flags.join(" ")}, ${pick("Hypervisor vendor")} guest, Linux ${os.release()}, node ${process.version}`,
    `- load average (1/5/15 min) at start ${loadStart.map((x) => x.toFixed(2)).join(" ")}, ` +
        `at end ${loadEnd.map((x) => x.toFixed(2)).join(" ")}`,
    "",
    "Every repetition (tokens/s):",
    "",
    "| model | test | ember | llama.cpp |",
    "|---|---|---|---|",
    ...rows.map((r) => `| ${r.model} | ${r.test} | ${r.emberAll.map((x) => x.toFixed(1)).join(", ")} | ` +
                       `${r.llamaAll.map((x) => x.toFixed(1)).join(", ")} |`),
    "",
];
// Only our section of the report is replaced (others, such as "## Load
// test" from bench/loadtest.mjs, are kept); a new one goes before the others.
const section = md.join("\n");
let doc = fs.existsSync(cfg.out) ? fs.readFileSync(cfg.out, "utf8") : "# Benchmarks\n";
const start = doc.startsWith(`${SECTION}\n`) ? 0 : doc.indexOf(`\n${SECTION}\n`) >= 0 ? doc.indexOf(`\n${SECTION}\n`) + 1 : -1;
if (start >= 0) {
    const rest = doc.slice(start + SECTION.length);
    const next = rest.search(/^## /m);
    doc = doc.slice(0, start) + section + (next >= 0 ? "\n" + rest.slice(next) : "");
} else {
    const next = doc.search(/^## /m); // before the first section, after any introduction
    doc = next >= 0 ? doc.slice(0, next) + section + "\n" + doc.slice(next) : doc.replace(/\n*$/, "\n\n") + section;
}
fs.writeFileSync(cfg.out, doc.replace(/\n*$/, "\n"));
fs.mkdirSync(path.join(here, "results"), {recursive: true});
fs.writeFileSync(path.join(here, "results", "latest.json"),
                 JSON.stringify({cfg, command, notes, rows, meta, loadStart, loadEnd, maxLoad}, null, 1));
log(`wrote the "${SECTION.slice(3)}" section of ${cfg.out} and bench/results/latest.json`);
