/** Options of the CUDA backend (runtime/backends/cuda): what `load()` of a generated module takes. */
export interface CudaBackendOptions {
  /** CUDA device ordinal (default 0). */
  device?: number;
  /** KV cache blocks (default: enough for 4 sequences at the model's max positions). */
  numBlocks?: number;
  /** Tokens one forward may carry (default: the artifact's compiled limit, lfc compile --max-tokens). */
  maxTokens?: number;
  /** Sequences one forward may carry (default: the artifact's compiled limit, --max-seqs). */
  maxSeqs?: number;
  /** Load libmodel-emu.so (the CPU emulator build, `lfc compile --target emu`) instead of libmodel.so. */
  emulator?: boolean;
  /** Capture decode steps as CUDA graphs per batch-size bucket (default true). */
  cudaGraphs?: boolean;
}
