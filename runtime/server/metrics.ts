/**
 * Prometheus metrics of one server (its own prom-client Registry, so two servers in one process
 * do not share counters). Names follow vLLM's, with the lfc_ prefix.
 */
import { Counter, Gauge, Histogram, Registry } from 'prom-client';
import type { Engine } from '../engine.js';

export class ServerMetrics {
  readonly registry = new Registry();
  readonly ttft: Histogram;
  readonly itl: Histogram;
  readonly promptTokens: Counter;
  readonly generationTokens: Counter;
  readonly requests: Counter<'endpoint' | 'status'>;

  constructor(engine: Engine) {
    const registers = [this.registry];
    const sched = engine.scheduler;
    new Gauge({ name: 'lfc_requests_running', help: 'Requests in the running batch.', registers, collect() { this.set(sched.numRunning); } });
    new Gauge({ name: 'lfc_requests_waiting', help: 'Requests waiting to be scheduled.', registers, collect() { this.set(sched.numWaiting); } });
    new Gauge({
      name: 'lfc_kv_cache_usage_ratio', help: 'Fraction of KV cache blocks in use (1 = full).', registers,
      collect() { this.set(1 - sched.kv.numFreeBlocks / sched.kv.numBlocks); },
    });
    this.ttft = new Histogram({
      name: 'lfc_time_to_first_token_seconds', help: 'Time from request arrival to its first generated token.', registers,
      buckets: [0.001, 0.005, 0.01, 0.02, 0.04, 0.06, 0.08, 0.1, 0.25, 0.5, 0.75, 1, 2.5, 5, 7.5, 10, 20, 40],
    });
    this.itl = new Histogram({
      name: 'lfc_inter_token_latency_seconds', help: 'Time between consecutive generated tokens of a request.', registers,
      buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.15, 0.2, 0.3, 0.4, 0.5, 0.75, 1, 2.5, 5],
    });
    this.promptTokens = new Counter({ name: 'lfc_prompt_tokens_total', help: 'Prompt tokens processed.', registers });
    this.generationTokens = new Counter({ name: 'lfc_generation_tokens_total', help: 'Tokens generated.', registers });
    const spec = engine.spec;
    if (spec) { // speculative decoding, vLLM's spec_decode names
      const m = spec.metrics;
      const total = (name: string, help: string, get: () => number) => new Counter({ name, help, registers, collect() { this.reset(); this.inc(get()); } });
      total('lfc_spec_decode_num_draft_tokens_total', 'Draft tokens proposed and verified.', () => m.numDraftTokens);
      total('lfc_spec_decode_num_accepted_tokens_total', 'Draft tokens accepted.', () => m.numAcceptedTokens);
      total('lfc_spec_decode_num_emitted_tokens_total', 'Tokens emitted by verification rows (accepted + corrected or bonus).', () => m.numEmittedTokens);
      total('lfc_spec_decode_num_drafts_total', 'Verification rows (steps of one request with drafts).', () => m.numSpecRows);
      new Gauge({ name: 'lfc_spec_decode_draft_acceptance_rate', help: 'Accepted / proposed draft tokens.', registers, collect() { this.set(m.numDraftTokens ? m.numAcceptedTokens / m.numDraftTokens : 0); } });
      new Gauge({
        name: 'lfc_spec_decode_acceptance_rate_per_position', help: 'Acceptance rate of the j-th draft token (given the ones before were accepted).', labelNames: ['position'], registers,
        collect() { m.proposedPerPos.forEach((n, j) => this.set({ position: String(j) }, n ? m.acceptedPerPos[j] / n : 0)); },
      });
    }
    this.requests = new Counter({ name: 'lfc_requests_total', help: 'HTTP requests to /v1 endpoints by status code.', labelNames: ['endpoint', 'status'], registers });
  }
}
