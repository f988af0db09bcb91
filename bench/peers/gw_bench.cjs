// Graphile Worker 0.17 under the side-by-side workloads (see benchlib.py and docs/bench.md).
//
// Run with the bench-only Node folder (bench/peers/setup_node.sh):
//   NODE_PATH=.bench-node/node_modules node bench/peers/gw_bench.cjs \
//       --config perf|default --dsn URL --out FILE.json [--quick] [--round N]
//
// The method mirrors the Python harnesses line by line (benchlib.py): the same sizes and seeded
// future offsets (read from `python3 benchlib.py sizes`), the same clocks, the same JSON.
// Set-up as the Graphile Worker docs say: schema by `workerUtils.migrate()`, one task list with
// a no-op task, one `run()` (a worker pool in the driver's process and event loop, as
// `graphile-worker` does), jobs added through WorkerUtils.addJob / addJobs (graphile_worker.
// add_job / add_jobs in autocommit: the promise resolving means the commit was acknowledged).
//   perf     the configuration of the docs' "Performance" page: concurrentJobs 24,
//            maxPoolSize 25, localQueue { size: 500 }, completeJobBatchDelay 0,
//            failJobBatchDelay 0.
//   default  every option at its default: concurrentJobs 1, maxPoolSize 10, pollInterval
//            2000 ms, no local queue, no batched completion.
// Workload D runs the worker alone in a subprocess (this script with --worker-only).
"use strict";

const { spawn, spawnSync } = require("node:child_process");
const fs = require("node:fs");
const os = require("node:os");
const path = require("node:path");
const { performance } = require("node:perf_hooks");

const { run, makeWorkerUtils, Logger } = require("graphile-worker");
const pg = require("pg");

const HERE = __dirname;
const SCHEMA_KEYS = [
  "system",
  "version",
  "concurrency",
  "notes",
  "drain_eps",
  "due_now_ms",
  "future_late_ms",
  "rss_mb",
  "cpu_ms_per_1k",
];
const BATCH_INSERT = 1000;
const START_LOADAVG = os.loadavg();

const CONFIGS = {
  perf: {
    system: "Graphile Worker (perf config)",
    worker: {
      concurrentJobs: 24,
      maxPoolSize: 25,
      localQueue: { size: 500 },
      completeJobBatchDelay: 0,
      failJobBatchDelay: 0,
    },
    text:
      "1 worker pool (1 process), concurrentJobs=24, maxPoolSize=25, localQueue.size=500," +
      " completeJobBatchDelay=0, failJobBatchDelay=0 (the docs' Performance page), LISTEN/NOTIFY," +
      " pollInterval=2000 ms (default)",
  },
  default: {
    system: "Graphile Worker (default config)",
    worker: {},
    text:
      "1 worker pool (1 process), every option default: concurrentJobs=1, maxPoolSize=10," +
      " no local queue, no batched completion, LISTEN/NOTIFY, pollInterval=2000 ms",
  },
};

// wall clock in seconds with sub-millisecond resolution (Date.now() has 1 ms steps)
const now = () => (performance.timeOrigin + performance.now()) / 1000;
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const log = (msg) => {
  const t = new Date().toISOString().slice(11, 19);
  process.stderr.write(`[${t}] ${msg}\n`);
};

function parseArgs(argv) {
  const a = { quick: false, round: 1, workerOnly: false, config: "perf" };
  for (let i = 0; i < argv.length; i++) {
    const k = argv[i];
    if (k === "--quick") a.quick = true;
    else if (k === "--worker-only") a.workerOnly = true;
    else if (k === "--dsn") a.dsn = argv[++i];
    else if (k === "--out") a.out = argv[++i];
    else if (k === "--round") a.round = Number(argv[++i]);
    else if (k === "--config") a.config = argv[++i];
    else throw new Error(`unknown argument ${k}`);
  }
  if (!a.dsn || (!a.out && !a.workerOnly)) throw new Error("--dsn and --out are required");
  if (!CONFIGS[a.config]) throw new Error(`--config must be perf or default, got ${a.config}`);
  return a;
}

function loadSizes(quick) {
  const res = spawnSync("python3", [path.join(HERE, "benchlib.py"), "sizes", ...(quick ? ["--quick"] : [])], {
    encoding: "utf8",
  });
  if (res.status !== 0) throw new Error(`benchlib.py sizes failed: ${res.stderr}`);
  return JSON.parse(res.stdout);
}

// --- figures, as benchlib.percentile / summary_ms -------------------------------------------
function percentile(sorted, q) {
  if (sorted.length === 0) return NaN;
  if (sorted.length === 1) return sorted[0];
  const pos = (sorted.length - 1) * q;
  const lo = Math.floor(pos);
  const hi = Math.ceil(pos);
  return sorted[lo] + (sorted[hi] - sorted[lo]) * (pos - lo);
}

const round3 = (x) => Math.round(x * 1000) / 1000;

function summaryMs(valuesS, keys) {
  const ms = valuesS.map((v) => v * 1000).sort((x, y) => x - y);
  const out = {};
  for (const k of keys) {
    if (!ms.length) out[k] = null;
    else if (k === "max") out[k] = round3(ms[ms.length - 1]);
    else out[k] = round3(percentile(ms, Number(k.slice(1)) / 100));
  }
  out.n = ms.length;
  return out;
}

function median(xs) {
  const s = [...xs].sort((a, b) => a - b);
  const m = Math.floor(s.length / 2);
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
}

// --- CPU from /proc, as benchlib.CpuMeter --------------------------------------------------
let clkTck = 100;
try {
  clkTck = Number(spawnSync("getconf", ["CLK_TCK"], { encoding: "utf8" }).stdout.trim()) || 100;
} catch {
  /* keep 100 */
}

function procStat(pid) {
  const text = fs.readFileSync(`/proc/${pid}/stat`, "utf8");
  const rest = text.slice(text.lastIndexOf(")") + 1).trim().split(/\s+/);
  return [rest[1], rest[11], rest[12], rest[13], rest[14]].map(Number);
}

function clusterCpuS(postmaster, exclude) {
  const [, ut, st, cut, cst] = procStat(postmaster);
  let ticks = ut + st + cut + cst;
  for (const name of fs.readdirSync("/proc")) {
    if (!/^\d+$/.test(name) || exclude.has(Number(name))) continue;
    let s;
    try {
      s = procStat(name);
    } catch {
      continue; // exited meanwhile
    }
    if (s[0] === postmaster) ticks += s[1] + s[2];
  }
  return ticks / clkTck;
}

function selfCpuS() {
  const u = process.cpuUsage(); // microseconds, whole process
  return (u.user + u.system) / 1e6;
}

class CpuMeter {
  constructor(pollBackend) {
    this.exclude = new Set([pollBackend]);
    this.postmaster = procStat(pollBackend)[0];
  }
  start() {
    this.t0 = [selfCpuS(), clusterCpuS(this.postmaster, this.exclude)];
  }
  stop(jobs) {
    const w = selfCpuS() - this.t0[0];
    const p = clusterCpuS(this.postmaster, this.exclude) - this.t0[1];
    const k = Math.max(jobs, 1) / 1000;
    return {
      worker: Math.round((w * 1000 * 10) / k) / 10,
      pg: Math.round((p * 1000 * 10) / k) / 10,
      worker_s: round3(w),
      pg_s: round3(p),
      jobs,
    };
  }
}

function rssMb(pid) {
  const line = fs
    .readFileSync(`/proc/${pid}/status`, "utf8")
    .split("\n")
    .find((l) => l.startsWith("VmRSS:"));
  if (!line) throw new Error(`no VmRSS for pid ${pid}`);
  return Math.round((Number(line.split(/\s+/)[1]) / 1024) * 10) / 10;
}

// --- the worker ------------------------------------------------------------------------------
const started = new Map(); // job id (string) -> handler start (s)
const state = { target: -1, onAll: null, wake: null };

function signal() {
  if (state.wake) {
    const w = state.wake;
    state.wake = null;
    w();
  }
}

const quietLogger = new Logger(() => (level, message) => {
  if (level === "error" || level === "warning") process.stderr.write(`graphile-worker ${level}: ${message}\n`);
});

const taskList = {
  noop: async (_payload, helpers) => {
    const t = now();
    started.set(String(helpers.job.id), t);
    signal();
    if (started.size === state.target && state.onAll) state.onAll();
  },
};

function startWorker(dsn, cfgName) {
  return run({
    noHandleSignals: true,
    taskList,
    preset: {
      worker: { connectionString: dsn, logger: quietLogger, ...CONFIGS[cfgName].worker },
    },
  });
}

async function waitStarted(ids, limitS) {
  const deadline = performance.now() + limitS * 1000;
  let pending = ids.map(String);
  for (;;) {
    pending = pending.filter((i) => !started.has(i));
    if (!pending.length) return;
    const remaining = deadline - performance.now();
    if (remaining <= 0) throw new Error(`${pending.length} job(s) never started within ${limitS}s`);
    await new Promise((resolve) => {
      const t = setTimeout(resolve, remaining);
      state.wake = () => {
        clearTimeout(t);
        resolve();
      };
    });
  }
}

// --- database helpers ------------------------------------------------------------------------
async function q(client, text, params) {
  return (await client.query(text, params)).rows;
}

async function unfinished(client) {
  return Number((await q(client, "SELECT count(*)::int AS n FROM graphile_worker._private_jobs"))[0].n);
}

async function reset(client) {
  await q(client, "TRUNCATE graphile_worker._private_jobs, graphile_worker._private_job_queues");
  started.clear();
  state.target = -1;
  state.onAll = null;
}

async function checkpoint(client) {
  // statistics as in a database in service (autoanalyze), then a checkpoint
  await q(client, "ANALYZE graphile_worker._private_jobs");
  try {
    await q(client, "CHECKPOINT");
  } catch {
    /* not a superuser: skip */
  }
}

async function insertDueNow(utils, n) {
  for (let i = 0; i < n; i += BATCH_INSERT) {
    const k = Math.min(BATCH_INSERT, n - i);
    await utils.addJobs(Array.from({ length: k }, () => ({ identifier: "noop", payload: {} })));
  }
}

async function waitFinished(client, limitS, alive) {
  const deadline = performance.now() + limitS * 1000;
  while (performance.now() < deadline) {
    if (alive && !alive()) throw new Error("the worker subprocess exited");
    if ((await unfinished(client)) === 0) return now();
    await sleep(10);
  }
  throw new Error("jobs still unfinished");
}

// benchlib.measure_drain
async function measureDrain(t0, n, limitS, allStarted, client, cpu) {
  const deadline = performance.now() + Math.max(0, limitS - (now() - t0)) * 1000;
  let allStartedS = null;
  const got = await Promise.race([
    allStarted.then(() => true),
    sleep(Math.max(0, deadline - performance.now())).then(() => false),
  ]);
  if (got) allStartedS = now() - t0;
  let timedOut = false;
  let left;
  let end;
  for (;;) {
    left = await unfinished(client);
    end = now();
    if (left === 0) break;
    if (performance.now() >= deadline) {
      timedOut = true;
      break;
    }
    await sleep(10);
  }
  const seconds = end - t0;
  return {
    cpu: cpu.stop(n - left),
    eps: Math.round(((n - left) / seconds) * 10) / 10,
    seconds: round3(seconds),
    all_started_s: allStartedS === null ? null : round3(allStartedS),
    finished: n - left,
    timed_out: timedOut,
  };
}

async function drain(args, utils, client, sz, details) {
  const out = [];
  const pid = Number((await q(client, "SELECT pg_backend_pid() AS p"))[0].p);
  const cpu = new CpuMeter(pid);
  for (let r = 0; r < sz.drain_runs; r++) {
    await reset(client);
    await insertDueNow(utils, sz.drain_jobs);
    await checkpoint(client);
    state.target = sz.drain_jobs;
    const allStarted = new Promise((resolve) => {
      state.onAll = resolve;
    });
    cpu.start();
    const t0 = now();
    const runner = await startWorker(args.dsn, args.config);
    let d;
    try {
      d = await measureDrain(t0, sz.drain_jobs, sz.drain_timeout_s, allStarted, client, cpu);
    } finally {
      await runner.stop();
    }
    log(
      `gw-${args.config} drain run ${r + 1}: ${d.finished}/${sz.drain_jobs} in ${d.seconds.toFixed(2)}s` +
        ` (handler saw all after ${d.all_started_s === null ? "-" : d.all_started_s.toFixed(3)} s)`,
    );
    details.push(d);
    out.push(d.eps);
  }
  return out;
}

async function dueNow(utils, sz) {
  const lat = [];
  for (let i = 0; i < sz.warmup + sz.due_now; i++) {
    const job = await utils.addJob("noop", {});
    const committed = now();
    await waitStarted([job.id], sz.due_now_timeout_s);
    if (i >= sz.warmup) lat.push(started.get(String(job.id)) - committed);
    await sleep(sz.due_now_gap_s * 1000);
  }
  return lat;
}

async function future(utils, client, sz) {
  const base = now();
  const ids = [];
  for (const off of sz.future_offsets) {
    const job = await utils.addJob("noop", {}, { runAt: new Date((base + off) * 1000) });
    ids.push(String(job.id));
  }
  const inserted = now() - base;
  if (inserted >= sz.future_min_s) log(`warning: inserting the future jobs took ${inserted.toFixed(2)}s`);
  // the due time as the row stores it (microseconds), read before the first is due
  const rows = await q(
    client,
    "SELECT id::text AS id, extract(epoch FROM run_at)::float8 AS due FROM graphile_worker._private_jobs" +
      " WHERE id = ANY($1::bigint[])",
    [ids],
  );
  const due = new Map(rows.map((r) => [r.id, Number(r.due)]));
  if (due.size !== ids.length) throw new Error(`read ${due.size} of ${ids.length} due times`);
  await waitStarted(ids, sz.future_max_s + sz.future_grace_s);
  return ids.map((i) => started.get(i) - due.get(i));
}

async function rss(args, utils, client, sz) {
  await reset(client);
  await insertDueNow(utils, sz.rss_jobs); // the worker drains them as soon as it is up
  const errPath = path.join(os.tmpdir(), `gw-bench-worker-${process.pid}.err`);
  const errFd = fs.openSync(errPath, "w");
  const child = spawn(process.execPath, [__filename, "--worker-only", "--config", args.config, "--dsn", args.dsn], {
    stdio: ["ignore", "ignore", errFd],
    env: process.env,
  });
  let exited = false;
  child.on("exit", () => {
    exited = true;
  });
  try {
    await waitFinished(client, sz.drain_timeout_s, () => !exited);
    await sleep(sz.rss_idle_s * 1000);
    return rssMb(child.pid);
  } finally {
    if (!exited) {
      child.kill("SIGTERM");
      const done = await Promise.race([
        new Promise((r) => child.on("exit", () => r(true))),
        sleep(15000).then(() => false),
      ]);
      if (!done) child.kill("SIGKILL");
    }
    fs.closeSync(errFd);
    const err = fs.readFileSync(errPath, "utf8").trim();
    fs.rmSync(errPath, { force: true });
    if (err) log(`worker subprocess stderr: ${err.slice(-600)}`);
  }
}

async function workerOnly(args) {
  const runner = await startWorker(args.dsn, args.config);
  const stop = () => runner.stop().then(() => process.exit(0));
  process.on("SIGTERM", stop);
  process.on("SIGINT", stop);
  await runner.promise;
}

function writeResult(file, result) {
  const missing = SCHEMA_KEYS.filter((k) => !(k in result));
  if (missing.length) throw new Error(`result lacks ${missing}`);
  const ordered = {};
  for (const k of SCHEMA_KEYS) ordered[k] = result[k];
  for (const [k, v] of Object.entries(result)) if (!(k in ordered)) ordered[k] = v;
  if (!("loadavg_1m_start_end" in ordered)) ordered.loadavg_1m_start_end = [START_LOADAVG[0], os.loadavg()[0]];
  fs.writeFileSync(`${file}.tmp`, JSON.stringify(ordered, null, 2) + "\n");
  fs.renameSync(`${file}.tmp`, file);
  process.stderr.write(`wrote ${file}\n`);
}

async function main() {
  const args = parseArgs(process.argv.slice(2));
  if (args.workerOnly) return workerOnly(args);
  const sz = loadSizes(args.quick);
  const version = require("graphile-worker/package.json").version;
  const utils = await makeWorkerUtils({ connectionString: args.dsn, logger: quietLogger });
  const client = new pg.Client({ connectionString: args.dsn });
  await client.connect();
  const details = [];
  let drainEps;
  let b;
  let c;
  let rssValue;
  try {
    if (args.round <= 1) log("gw: migrate (graphile_worker schema)");
    await utils.migrate(); // idempotent; installs the schema in round 1
    log(`gw-${args.config}: A drain`);
    drainEps = await drain(args, utils, client, sz, details);
    await reset(client);
    const runner = await startWorker(args.dsn, args.config);
    try {
      await sleep(500); // let the pool LISTEN
      log(`gw-${args.config}: B due-now latency`);
      b = await dueNow(utils, sz);
      log(`gw-${args.config}: C future lateness`);
      c = await future(utils, client, sz);
    } finally {
      await runner.stop();
    }
    log(`gw-${args.config}: D worker RSS`);
    rssValue = await rss(args, utils, client, sz);
    await reset(client);
  } finally {
    await client.end();
    await utils.release();
  }
  const cpuRuns = details.map((d) => d.cpu);
  const late = details.map((d, i) => (d.timed_out ? i + 1 : null)).filter((x) => x !== null);
  const cfg = CONFIGS[args.config];
  writeResult(args.out, {
    system: cfg.system,
    version,
    concurrency: cfg.text,
    notes:
      `Node.js ${process.version}; run() in the driver's process and event loop (as` +
      " `graphile-worker`), taskList with one no-op task; jobs via WorkerUtils.addJob/addJobs" +
      " (graphile_worker.add_job/add_jobs, autocommit); finished = no row left in" +
      " graphile_worker._private_jobs (completed jobs are deleted). B: latency = handler start -" +
      ` resolution of addJob (commit acknowledged), ${sz.warmup} warm-up iterations dropped.` +
      " C: addJob(..., {runAt}), lateness = handler start - run_at as stored. D: the worker alone" +
      ` in a subprocess, VmRSS after draining ${sz.rss_jobs} jobs and ${sz.rss_idle_s} s idle.` +
      (late.length
        ? ` DRAIN TIMED OUT in run(s) [${late}]: the rate there counts only the jobs finished within the limit.`
        : ""),
    drain_eps: drainEps,
    drain_detail: details,
    due_now_ms: summaryMs(b, ["p50", "p90", "p99", "max"]),
    future_late_ms: summaryMs(c, ["p50", "p99", "max"]),
    rss_mb: rssValue,
    cpu_ms_per_1k: cpuRuns.length
      ? { worker: median(cpuRuns.map((x) => x.worker)), pg: median(cpuRuns.map((x) => x.pg)) }
      : null,
    round: args.round,
    quick: args.quick,
    drain_jobs: sz.drain_jobs,
  });
}

main().then(
  () => process.exit(0),
  (err) => {
    process.stderr.write(`gw_bench: ${err && err.stack ? err.stack : err}\n`);
    process.exit(1);
  },
);
