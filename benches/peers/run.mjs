// Peer comparison: runs stepstream's bench workloads (benches/workloads/*.json) on the npm
// package aws-local-stepfunctions and prints executions/s and transitions/s per workload.
//
//   node benches/peers/run.mjs [--seconds 5] [--workload NAME] [--json-io]
//
// STEPSTREAM_WORKLOADS_DIR names another folder of workload files (the same variable as
// stepstream's own bench and compare.sh), so workloads kept elsewhere run the same way.
//
// --json-io times what stepstream's P1 iteration does: the request as JSON text in
// (JSON.parse), the output as JSON text out (JSON.stringify). Without it the library is
// handed the parsed input and returns an object, as P3 is defined.
//
// See README.md beside this file for what is measured and why it is a fair comparison.
import { readFileSync, readdirSync } from 'node:fs';
import { pathToFileURL } from 'node:url';
import { performance } from 'node:perf_hooks';
import { StateMachine } from 'aws-local-stepfunctions';

// aws-local-stepfunctions 3.0.0 declares node >= 22 and calls Promise.withResolvers (new in
// Node 22) once per Task state. On Node 20 every Task would fail with a TypeError that
// Retry/Catch then treat as a task error, so supply the standard behaviour when it is missing.
Promise.withResolvers ??= function withResolvers() {
  let resolve, reject;
  const promise = new this((res, rej) => { resolve = res; reject = rej; });
  return { promise, resolve, reject };
};

const PEER = 'aws-local-stepfunctions';
const PEER_VERSION = JSON.parse(
  readFileSync(new URL(`./node_modules/${PEER}/package.json`, import.meta.url), 'utf8'),
).version;
const WORKLOADS_DIR = process.env.STEPSTREAM_WORKLOADS_DIR
  ? pathToFileURL(`${process.env.STEPSTREAM_WORKLOADS_DIR.replace(/\/+$/, '')}/`)
  : new URL('../workloads/', import.meta.url);
const WARMUP_MS = 1000;

function parseArgs(argv) {
  const args = { seconds: 5, workload: null, jsonIo: false };
  for (let i = 0; i < argv.length; i++) {
    const [flag, value] = [argv[i], argv[i + 1]];
    if (flag === '--seconds' && Number(value) > 0) { args.seconds = Number(value); i++; }
    else if (flag === '--workload' && value) { args.workload = value; i++; }
    else if (flag === '--json-io') args.jsonIo = true;
    else throw new Error(`usage: node run.mjs [--seconds N] [--workload NAME] [--json-io] (bad argument ${flag})`);
  }
  return args;
}

// The library turns a thrown error into the state's error output as
// { Error: err.name, Cause: err.message } and matches Retry/Catch ErrorEquals against
// err.name (StateExecutor.shouldRetry / catchError in its build), so a task failure is an
// Error whose name is the ASL error name and whose message is the cause text.
class TaskError extends Error {
  constructor(name, cause) {
    super(cause);
    this.name = name;
  }
}

// A task spec (bench README) becomes fn(input, priorCalls), where priorCalls is how many times
// the same Resource was already called in this execution.
function compileSpec(spec) {
  let m;
  if (spec === 'identity') return (input) => input;
  if ((m = /^merge (.*)$/s.exec(spec))) {
    const patch = JSON.parse(m[1]);
    return (input) => ({ ...input, ...patch });
  }
  if ((m = /^fail-first (\d+) (\S+) then (.*)$/s.exec(spec))) {
    const [n, name, rest] = [Number(m[1]), m[2], compileSpec(m[3])];
    return (input, prior) => {
      if (prior < n) throw new TaskError(name, `transient failure on attempt ${prior + 1}`);
      return rest(input, prior);
    };
  }
  if ((m = /^fail (\S+)(?: (.*))?$/s.exec(spec))) {
    const [name, cause] = [m[1], m[2] ?? ''];
    return () => { throw new TaskError(name, cause); };
  }
  throw new Error(`unknown task spec: ${spec}`);
}

// Overrides in aws-local-stepfunctions are keyed by state NAME and reach nested Map/Parallel
// machines too, so collect every state of the definition, nested ones included.
function collectStates(states, out = []) {
  for (const [name, state] of Object.entries(states)) {
    out.push([name, state]);
    for (const branch of state.Branches ?? []) collectStates(branch.States, out);
    const processor = state.ItemProcessor ?? state.Iterator;
    if (processor) collectStates(processor.States, out);
  }
  return out;
}

function prepare(workload, jsonIo) {
  const states = collectStates(workload.definition.States);
  const taskStates = []; // [stateName, resource, fn]
  const retryIntervalOverrides = {};
  const waitTimeOverrides = {};
  const seen = new Map();
  for (const [name, state] of states) {
    if (seen.has(name) && seen.get(name) !== state.Resource) {
      throw new Error(`state name ${name} is used twice with different resources; overrides are keyed by name`);
    }
    seen.set(name, state.Resource);
    // Instant retries: a number (ms) for a state applies to all its retriers, and 0 makes the
    // library skip the timer entirely (its sleep() returns at once for 0) and skip jitter.
    if (state.Retry) retryIntervalOverrides[name] = 0;
    if (state.Type === 'Wait') waitTimeOverrides[name] = 0; // none in today's workloads
    if (state.Type === 'Task') {
      const spec = workload.tasks[state.Resource];
      if (spec === undefined) throw new Error(`no task spec for Resource ${state.Resource}`);
      taskStates.push([name, state.Resource, compileSpec(spec)]);
    }
  }
  // Validation (asl-validator) runs in the constructor: do it once, outside the timed loop.
  const machine = new StateMachine(workload.definition);
  // Fresh handlers per execution, so the per-Resource call counter belongs to that execution
  // alone (nested Map/Parallel runs receive the same override object, hence the same counter).
  const runOptions = () => {
    const calls = new Map();
    const handlers = {};
    for (const [name, resource, fn] of taskStates) {
      handlers[name] = async (input) => {
        const prior = calls.get(resource) ?? 0;
        calls.set(resource, prior + 1);
        return fn(input, prior);
      };
    }
    return { overrides: { taskResourceLocalHandlers: handlers, retryIntervalOverrides, waitTimeOverrides } };
  };
  if (jsonIo) {
    const request = JSON.stringify(workload.input);
    return async () => JSON.stringify(await machine.run(JSON.parse(request), runOptions()).result);
  }
  return () => machine.run(workload.input, runOptions()).result;
}

// JSON equality: numbers by value, object key order ignored.
function jsonEqual(a, b) {
  if (a === b) return true;
  if (typeof a !== 'object' || typeof b !== 'object' || a === null || b === null) return false;
  if (Array.isArray(a) !== Array.isArray(b)) return false;
  const ka = Object.keys(a), kb = Object.keys(b);
  return ka.length === kb.length && ka.every((k) => Object.hasOwn(b, k) && jsonEqual(a[k], b[k]));
}

async function check(workload, execute, when, jsonIo) {
  let output;
  try {
    output = await execute();
    if (jsonIo) output = JSON.parse(output);
  } catch (e) {
    const cause = e.cause ?? e; // ExecutionError wraps the state's error in .cause
    throw new Error(`${when} execution failed: ${cause.name}: ${cause.message}`);
  }
  if (!jsonEqual(output, workload.expected_output)) {
    throw new Error(`${when} output differs from expected_output\n  got:      ${JSON.stringify(output)}\n  expected: ${JSON.stringify(workload.expected_output)}`);
  }
}

// One execution at a time: each run is awaited before the next starts.
async function runFor(execute, ms) {
  let n = 0;
  const start = performance.now();
  let elapsed = 0;
  while (elapsed < ms) {
    await execute();
    n++;
    elapsed = performance.now() - start;
  }
  return { n, elapsed };
}

async function main() {
  const args = parseArgs(process.argv.slice(2));
  if (PEER_VERSION !== '3.0.0') console.error(`warning: ${PEER} is ${PEER_VERSION}, not the pinned 3.0.0`);
  let files = readdirSync(WORKLOADS_DIR).filter((f) => f.endsWith('.json')).sort();
  if (args.workload) {
    files = files.filter((f) => f === `${args.workload}.json`);
    if (files.length === 0) throw new Error(`no workload named ${args.workload} in ${WORKLOADS_DIR.pathname}`);
  }
  const summary = {};
  let failed = false;
  for (const file of files) {
    const workload = JSON.parse(readFileSync(new URL(file, WORKLOADS_DIR), 'utf8'));
    const name = workload.name;
    try {
      const execute = prepare(workload, args.jsonIo);
      await check(workload, execute, 'first', args.jsonIo);
      await runFor(execute, WARMUP_MS);
      const { n, elapsed } = await runFor(execute, args.seconds * 1000);
      // Checked again after the timed runs: catches state leaking from one execution to the next.
      await check(workload, execute, 'last', args.jsonIo);
      const execPerSec = (n * 1000) / elapsed;
      const transPerSec = execPerSec * workload.state_transitions;
      summary[name] = Math.round(execPerSec * 10) / 10;
      console.log(`peer ${PEER} ${PEER_VERSION}${args.jsonIo ? ' (JSON in/out)' : ''} ${name} ${execPerSec.toFixed(1)} exec/s ${Math.round(transPerSec)} transitions/s (${n} executions)`);
    } catch (e) {
      failed = true;
      summary[name] = null;
      console.error(`peer ${PEER} ${PEER_VERSION} ${name} ABORTED: ${e.message}`);
    }
  }
  console.log(`PEER_JSON ${JSON.stringify(summary)}`);
  if (failed) process.exitCode = 1;
}

main().catch((e) => {
  console.error(e.message);
  process.exit(2);
});
