/**
 * Scheduler CPU cost per step (issue 7, item 8: goal < 100 µs at 256 running sequences, well
 * under 1% of an H100 decode step of a 7B model). `benchScheduler()` fills a Scheduler with
 * `numSeqs` requests, prefills them, then times `schedule()` + `postprocess()` over decode steps
 * (no forward: the sampled tokens are a constant). It lives in runtime/ so that
 * `npm run bench -- scheduler` can call it from dist/.
 */
import { Scheduler } from './scheduler.js';

export interface SchedulerBenchOptions {
  numSeqs?: number;
  promptLen?: number;
  blockSize?: number;
  steps?: number;
  warmupSteps?: number;
}

export interface SchedulerBenchResult {
  numSeqs: number;
  promptLen: number;
  blockSize: number;
  steps: number;
  /** Mean µs of schedule() + postprocess() per decode step, and its two halves. */
  usPerStep: number;
  usSchedule: number;
  usPostprocess: number;
  /** Median µs per step over blocks of 50 steps (less sensitive to GC pauses). */
  usPerStepMedian: number;
}

export function benchScheduler(opts: SchedulerBenchOptions = {}): SchedulerBenchResult {
  const numSeqs = opts.numSeqs ?? 256, promptLen = opts.promptLen ?? 512, blockSize = opts.blockSize ?? 16;
  const steps = opts.steps ?? 2000, warmup = opts.warmupSteps ?? 300;
  const maxTokens = warmup + steps + Math.ceil((numSeqs * promptLen) / 8192) + 16; // nobody finishes while timed
  const numBlocks = numSeqs * Math.ceil((promptLen + maxTokens) / blockSize) + 16;
  const s = new Scheduler({ maxBatchedTokens: 8192, maxSeqs: numSeqs, blockSize, numBlocks });
  for (let i = 0; i < numSeqs; i++) {
    const prompt = new Int32Array(promptLen);
    for (let j = 0; j < promptLen; j++) prompt[j] = (i * 7919 + j * 104729) % 32000; // distinct prompts: no prefix hits
    s.add({ id: i, prompt, maxTokens, stopTokenIds: [2] });
  }
  const sampled = new Int32Array(8192).fill(1);
  const step = (): number => s.postprocess(sampled.subarray(0, s.schedule()!.batch.logitIndices.length)).length;
  while (s.numWaiting > 0) step();
  for (let i = 0; i < warmup; i++) step();
  let tSched = 0, tPost = 0;
  const blocks: number[] = [];
  let blockStart = performance.now();
  for (let i = 0; i < steps; i++) {
    const t0 = performance.now();
    const st = s.schedule()!;
    const t1 = performance.now();
    s.postprocess(sampled.subarray(0, st.batch.logitIndices.length));
    const t2 = performance.now();
    tSched += t1 - t0;
    tPost += t2 - t1;
    if (st.seqs.length !== numSeqs) throw new Error(`benchScheduler: step ran ${st.seqs.length} sequences, expected ${numSeqs}`);
    if ((i + 1) % 50 === 0) { blocks.push((t2 - blockStart) / 50); blockStart = performance.now(); }
  }
  blocks.sort((a, b) => a - b);
  const us = (ms: number): number => +(ms * 1000).toFixed(2);
  return {
    numSeqs, promptLen, blockSize, steps,
    usPerStep: us((tSched + tPost) / steps), usSchedule: us(tSched / steps), usPostprocess: us(tPost / steps),
    usPerStepMedian: us(blocks[blocks.length >> 1] ?? 0),
  };
}
