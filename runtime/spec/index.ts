/** Speculative decoding: proposers and the SpecDecoder the engine calls (see spec-decoder.ts). */
import { loadArtifact } from '../artifact.js';
import { ReferenceBackend } from '../backends/reference.js';
import { DraftModelProposer, NgramProposer, type Proposer } from './proposer.js';
import type { SpecOptions } from './spec-decoder.js';

export * from './proposer.js';
export * from './spec-decoder.js';

/** A draft-model proposer on its own reference backend from a compiled artifact folder. */
export function loadDraftProposer(dir: string, opts: { numBlocks?: number; maxTokens?: number } = {}): DraftModelProposer {
  const { plan, weights } = loadArtifact(dir);
  return new DraftModelProposer(new ReferenceBackend(plan, weights, { numBlocks: opts.numBlocks, maxTokens: opts.maxTokens ?? 256 }));
}

/** SpecOptions from CLI/server settings: a draft artifact folder, or n-gram lookup with n tokens. */
export function specOptions(o: { draftDir?: string; ngram?: number; k?: number; maxBatchTokens?: number }): SpecOptions | undefined {
  if (o.draftDir !== undefined && o.ngram !== undefined) throw new Error('speculative decoding: give a draft model or an n-gram size, not both');
  let proposer: Proposer;
  if (o.draftDir !== undefined) proposer = loadDraftProposer(o.draftDir);
  else if (o.ngram !== undefined) proposer = new NgramProposer(o.ngram, o.k ?? 4);
  else return undefined;
  return { proposer, maxK: o.k ?? 4, ...(o.maxBatchTokens !== undefined ? { maxBatchTokens: o.maxBatchTokens } : {}) };
}
